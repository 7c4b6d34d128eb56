"""Video clips to sharded TFRecords (prepare), and shards to tf.data input (make_dataset).

Importing this package does not import TensorFlow: prepare's decoding workers import only
`pipeline.frames`, and `make_dataset` is loaded on first use.
"""


def __getattr__(name: str):
    if name == "make_dataset":
        from pipeline.input import make_dataset

        return make_dataset
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
