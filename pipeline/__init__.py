"""Video clips to sharded TFRecords (prepare), and shards to tf.data input (make_dataset).

Grouped by lifecycle, since their import rules differ:
- the commands, `python -m pipeline.<name>`: prepare, verify, predict, synthetic, download;
- shared by every stage: clip_spec, manifest, records, frames, sampler, flow, index, storage,
  lock, progress, cli, export_asset;
- writing/: prepare's plan, clip cache, engines and shard writer (no TensorFlow at import time);
- input/: tf.data input and augmentation (TensorFlow);
- inference/: an export's runtimes, windows over long videos and streams, timelines;
- sources/: the download, the built-in generated clips, night copies of real videos.

Importing this package does not import TensorFlow: prepare's decoding workers import only
`pipeline.frames`, and `make_dataset` is loaded on first use.
"""


def __getattr__(name: str):
    if name == "make_dataset":
        from pipeline.input.dataset import make_dataset

        return make_dataset
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
