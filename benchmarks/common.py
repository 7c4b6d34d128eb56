"""What the benchmarks share: realistic shards made quickly, timing, JSON output."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from pipeline import frames as frames_lib  # noqa: E402
from pipeline import manifest as manifest_lib  # noqa: E402
from pipeline import records  # noqa: E402
from pipeline.clip_spec import ClipSpec  # noqa: E402
from pipeline.sources import synthetic  # noqa: E402
from pipeline.writing import shards  # noqa: E402


def night_clip(rng: np.random.Generator, num_frames: int, height: int, width: int) -> np.ndarray:
    """A built-in-style night clip rendered at the target size: uint8 [T, H, W, 3] RGB."""
    spec = synthetic.VideoSpec(
        synthetic.CLASS_NAMES[int(rng.integers(12))], int(rng.integers(6)), 0, width, height, 30, num_frames / 30,
        "mp4", "mp4v", int(rng.integers(2**31)),
    )
    bgr = synthetic.render(spec)[:num_frames]
    return np.stack([f[:, :, ::-1] for f in bgr])


def write_shards(out_dir: str, num_clips: int, num_frames: int = 10, height: int = 240, width: int = 320,
                 num_shards: int = 8, distinct: int = 32, jpeg_quality: int = 90) -> manifest_lib.Manifest:
    """A train split of `num_clips` records (made from `distinct` rendered clips) and a manifest
    (the same split stands as validation and test)."""
    rng = np.random.default_rng(0)
    encoded = [frames_lib.encode_jpeg(night_clip(rng, num_frames, height, width), jpeg_quality) for _ in range(distinct)]
    recs = [records.encode(encoded[i % distinct], range(num_frames), num_frames, i % 12, synthetic.CLASS_NAMES[i % 12], f"c{i}.mp4")
            for i in range(num_clips)]
    os.makedirs(out_dir, exist_ok=True)
    examples = [manifest_lib.Example(f"c{i}.mp4", i % 12) for i in range(num_clips)]
    split = shards.write_split(out_dir, "train", recs, examples, num_shards)
    manifest = manifest_lib.Manifest(
        label_names=tuple(synthetic.CLASS_NAMES), clip=ClipSpec(num_frames, height, width, jpeg_quality),
        splits={"train": split, "validation": split, "test": split}, fingerprint="benchmark",
    )
    manifest_lib.save(out_dir, manifest)
    return manifest


def clips_per_second(dataset, batches: int, batch_size: int, warmup: int = 3) -> float:
    it = iter(dataset)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def size_arg(default: str = "full") -> str:
    for arg in sys.argv[1:]:
        if arg.startswith("--size="):
            return arg.split("=", 1)[1]
    return default


def report(figures: dict[str, Any]) -> None:
    print(json.dumps(figures, indent=1))
