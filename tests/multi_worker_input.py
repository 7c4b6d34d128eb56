"""Run as one worker of a cluster (TF_CONFIG): print, as JSON, the clip ids its replica draws in
one epoch of the training input that train.py uses. Data from tests.conftest.make_shards."""

import json
import sys

import tensorflow as tf

from models import strategy as strategy_lib, trainer
from pipeline import manifest as manifest_lib
from tests.conftest import pixel


def main(data_dir: str, batch_size: int) -> None:
    strategy = strategy_lib.make_strategy("multi_worker")
    manifest = manifest_lib.load(data_dir)
    # paper: no augmentation, so a clip's first pixel still names it. deterministic: otherwise
    # parallel decode may finish a clip of the next epoch before the last of this one.
    config = trainer.TrainConfig(data_dir=data_dir, model_dir="unused", batch_size=batch_size, recipe="paper", deterministic=True)
    train_ds, _ = trainer.input_datasets(config, strategy, manifest)
    n = manifest.split("train").num_examples
    first_pixels = {pixel(i, 0): i for i in range(n)}
    iterator = iter(train_ds)
    ids = []
    for _ in range(n // batch_size):  # one epoch, as the trainer counts it
        frames, _ = next(iterator)
        for local in strategy.experimental_local_results(frames):
            ids += [first_pixels[int(v)] for v in local[:, 0, 0, 0, 0].numpy()]
    strategy_lib.barrier(strategy)
    print(json.dumps(ids))


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main(sys.argv[1], int(sys.argv[2]))
