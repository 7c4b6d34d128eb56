"""make_dataset(training=True) against a bare tf.data loop over the same shards and cores.

    python benchmarks/input_speed.py --size=full    # 512 clips of 10 x 240 x 320, 8 shards
    python benchmarks/input_speed.py --size=small   # CI: 64 clips of 10 x 60 x 80

The bare loop is the ceiling: read the shards in parallel, parse, decode the JPEGs, batch,
prefetch, nothing else (no shuffling, no count check). Goal: ours / bare >= 0.8.
"""

from __future__ import annotations

import os
import tempfile

import common  # noqa: F401  (sets sys.path)
import tensorflow as tf

from pipeline import make_dataset, records

SIZES = {"full": dict(clips=512, height=240, width=320, batch=32, batches=40), "small": dict(clips=64, height=60, width=80, batch=8, batches=10)}


def bare(files, t, h, w, batch):
    def decode(serialized):
        parsed = tf.io.parse_single_example(serialized, records.feature_spec(t))
        return records.decode_frames(parsed[records.FRAMES], t, h, w), parsed[records.LABEL]

    ds = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE).repeat()
    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(tf.data.AUTOTUNE)


def main() -> None:
    size = common.size_arg()
    s = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        m = common.write_shards(tmp, s["clips"], height=s["height"], width=s["width"])
        files = [os.path.join(tmp, x.file) for x in m.split("train").shards]
        rates = {}
        for _ in range(2):  # alternate, twice each, keep the best of each: the machine is noisy
            for name, ds in (("bare", bare(files, 10, s["height"], s["width"], s["batch"])),
                             ("make_dataset", make_dataset(tmp, "train", s["batch"], training=True, seed=0))):
                rates[name] = max(rates.get(name, 0.0), common.clips_per_second(ds, s["batches"], s["batch"]))
        common.report({
            "size": size, "cpus": os.cpu_count(), "clip": [10, s["height"], s["width"]], "batch": s["batch"],
            "bare_clips_per_second": rates["bare"], "make_dataset_clips_per_second": rates["make_dataset"],
            "ratio": rates["make_dataset"] / rates["bare"], "goal": 0.8,
        })


if __name__ == "__main__":
    main()
