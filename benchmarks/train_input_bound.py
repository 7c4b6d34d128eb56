"""Is training input-bound? A CNN model fed by make_dataset against the same model fed one
in-memory batch repeated (no input work at all).

    python benchmarks/train_input_bound.py --size=full    # cnn_gru, 10 x 240 x 320, batch 16
    python benchmarks/train_input_bound.py --size=small   # CI: 10 x 60 x 80, batch 8

Goal: make_dataset / in-memory >= 0.95.
"""

from __future__ import annotations

import os
import tempfile
import time

import common  # noqa: F401  (sets sys.path)
import keras
import tensorflow as tf

from models import build_model
from models import recipes
from models.trainer import compile_model
from pipeline import make_dataset

SIZES = {"full": dict(clips=256, height=240, width=320, batch=16, steps=24), "small": dict(clips=64, height=60, width=80, batch=8, steps=8)}


def train_rate(model, ds, steps: int, batch: int) -> float:
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    size = common.size_arg()
    s = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        common.write_shards(tmp, s["clips"], height=s["height"], width=s["width"])
        fed = make_dataset(tmp, "train", s["batch"], training=True, seed=0)
        memory = tf.data.Dataset.from_tensors(next(iter(fed))).repeat()
        rates = {}
        for _ in range(2):  # alternate, keep the best of each
            for name, ds in (("in_memory", memory), ("make_dataset", fed)):
                keras.utils.set_random_seed(0)
                model = build_model("cnn_gru", height=s["height"], width=s["width"])
                compile_model(model, recipes.get("paper"), s["steps"], jit_compile=False)
                rates[name] = max(rates.get(name, 0.0), train_rate(model, ds, s["steps"], s["batch"]))
    common.report({
        "size": size, "cpus": os.cpu_count(), "model": "cnn_gru", "clip": [10, s["height"], s["width"]], "batch": s["batch"],
        "in_memory_clips_per_second": rates["in_memory"], "make_dataset_clips_per_second": rates["make_dataset"],
        "ratio": rates["make_dataset"] / rates["in_memory"], "goal": 0.95,
    })


if __name__ == "__main__":
    main()
