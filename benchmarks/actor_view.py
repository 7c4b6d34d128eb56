"""What the actor view costs: convnet_gru (bg_diff+flow, the improved recipe) training and
classifying with view "actor" against the same model seeing whole frames ("frame"), in one run.

    python benchmarks/actor_view.py --size=full    # 10 x 240 x 320 (prepare's default size), batch 8
    python benchmarks/actor_view.py --size=small   # CI: 10 x 64 x 80, batch 8

Both models are fed the same in-memory batch (a moving block on noise, with partner and flow
images), so the figures are the models' own work, not the input pipeline's. Prints clips/s of
training, seconds per clip of a forward pass (batch 1), and each as a ratio actor / frame.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import common  # noqa: F401  (sets sys.path)
import keras
import numpy as np
import tensorflow as tf

from models import recipes, trainer
from pipeline.clip_spec import PREPARED

SIZES = {"full": dict(height=240, width=320, batch=8, steps=12), "small": dict(height=64, width=80, batch=8, steps=6)}


def batch(rng: np.random.Generator, size: int, height: int, width: int) -> np.ndarray:
    """uint8 [size, 10, H, W, 12]: noise, a bright block crossing the frame, its partner, flow images."""
    frames = rng.integers(20, 60, (size, 10, height, width, 3), dtype=np.uint8)
    for t in range(10):
        left = int((0.1 + 0.08 * t) * width)
        frames[:, t, height // 3:height // 3 + height // 3, left:left + width // 12] = 200
    flow = np.full_like(frames[..., :2], 128).repeat(3, axis=-1)
    return np.concatenate([frames, frames, flow], axis=-1)


def train_rate(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * len(x) / (time.perf_counter() - start)


def forward_seconds(model: keras.Model, clip: np.ndarray, repeats: int = 10) -> float:
    call = tf.function(lambda c: model(c, training=False))
    call(clip)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(clip).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    size = common.size_arg()
    s = SIZES[size]
    clip = dataclasses.replace(PREPARED, height=s["height"], width=s["width"])
    rng = np.random.default_rng(0)
    x = batch(rng, s["batch"], s["height"], s["width"])
    y = rng.integers(0, 12, s["batch"]).astype(np.int32)
    rates, seconds, params = {}, {}, {}
    for _ in range(2):  # alternate, keep the best of each
        for view in ("frame", "actor"):
            keras.utils.set_random_seed(0)
            recipe = recipes.get("improved", model="convnet_gru", view=view)
            model = trainer.build("convnet_gru", clip, 12, recipe)
            trainer.compile_model(model, recipe, s["steps"], jit_compile=False)
            params[view] = model.count_params()
            rates[view] = max(rates.get(view, 0.0), train_rate(model, x, y, s["steps"]))
            seconds[view] = min(seconds.get(view, float("inf")), forward_seconds(model, x[:1]))
    common.report({
        "size": size, "cpus": os.cpu_count(), "model": "convnet_gru", "frame_input": "bg_diff+flow",
        "clip": [10, s["height"], s["width"], clip.channels], "batch": s["batch"], "params": params,
        "train_clips_per_second": rates, "forward_seconds_per_clip": seconds,
        "train_speed_ratio_actor_to_frame": rates["actor"] / rates["frame"],
        "forward_time_ratio_actor_to_frame": seconds["actor"] / seconds["frame"],
    })


if __name__ == "__main__":
    main()
