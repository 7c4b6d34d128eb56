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
from pipeline import records, shards, synthetic  # noqa: E402


def night_clip(rng: np.random.Generator, num_frames: int, height: int, width: int) -> np.ndarray:
    """A built-in-style night clip rendered at the target size: uint8 [T, H, W, 3] RGB."""
    spec = synthetic.ClipSpec(
        synthetic.CLASS_NAMES[int(rng.integers(12))], int(rng.integers(6)), 0, width, height, 30, num_frames / 30,
        "mp4", "mp4v", int(rng.integers(2**31)),
    )
    bgr = synthetic.render(spec)[:num_frames]
    return np.stack([f[:, :, ::-1] for f in bgr])


def write_shards(out_dir: str, num_clips: int, num_frames: int = 10, height: int = 240, width: int = 320,
                 num_shards: int = 8, distinct: int = 32, jpeg_quality: int = 90) -> dict[str, Any]:
    """A train split of `num_clips` records (made from `distinct` rendered clips) and a manifest."""
    rng = np.random.default_rng(0)
    encoded = [frames_lib.encode_jpeg(night_clip(rng, num_frames, height, width), jpeg_quality) for _ in range(distinct)]
    recs = [records.encode(encoded[i % distinct], range(num_frames), num_frames, i % 12, synthetic.CLASS_NAMES[i % 12], f"c{i}.mp4")
            for i in range(num_clips)]
    os.makedirs(out_dir, exist_ok=True)
    infos = []
    bounds = shards.shard_boundaries(num_clips, num_shards)
    for k, (a, b) in enumerate(bounds):
        infos.append(shards.write_shard(os.path.join(out_dir, shards.shard_file_name("train", k, len(bounds))), recs[a:b]).__dict__)
    examples = [{"source": f"c{i}.mp4", "label": i % 12} for i in range(num_clips)]
    split = {"num_examples": num_clips, "shards": infos, "examples": examples}
    manifest = {
        "format_version": manifest_lib.FORMAT_VERSION, "fingerprint": "benchmark", "label_names": list(synthetic.CLASS_NAMES),
        "num_frames": num_frames, "height": height, "width": width, "settings": {"jpeg_quality": jpeg_quality},
        "splits": {"train": split, "validation": split, "test": split}, "skipped": [],
    }
    manifest_lib.write(out_dir, manifest)
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
