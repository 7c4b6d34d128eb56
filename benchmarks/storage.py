"""Shard bytes per clip against raw pixels, and the JPEG quality's effect on accuracy.

    python benchmarks/storage.py --size=full    # qualities 30 60 90; hard data, 60 clips/class, cnn_gru
    python benchmarks/storage.py --size=small   # CI: qualities 50 90; 8 clips/class; 3 epochs

Bytes: built-in-style night clips rendered at 10 x 240 x 320 (raw: 2,304,000 bytes a clip).
Accuracy: the hard built-in videos (`synthetic --hard`: strong sensor noise, which JPEG smooths
away at low quality, and small dim actors), prepared at 60 x 80 per quality, split by actor, one
model trained with the default recipe on each. The easy built-in data gave 1.000 at every quality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import common

from pipeline.sources import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAW = 10 * 240 * 320 * 3
SIZES = {
    "full": dict(qualities=(30, 60, 90), clips_per_class=60, num_actors=16, model="cnn_gru", epochs=40, byte_clips=64),
    "small": dict(qualities=(50, 90), clips_per_class=8, num_actors=8, model="cnn_gru", epochs=3, byte_clips=8),
}


def bytes_per_clip(quality: int, clips: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        m = common.write_shards(tmp, clips, num_shards=1, distinct=clips, jpeg_quality=quality)
        return sum(s.num_bytes for s in m.split("train").shards) / clips


def accuracy(videos: str, quality: int, model: str, epochs: int, work: str) -> dict[str, float]:
    """Test accuracy and top-3 of `model` trained on the videos prepared at this JPEG quality."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    shards, models = os.path.join(work, f"q{quality}"), os.path.join(work, f"m{quality}")
    run = lambda *args: subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)  # noqa: E731
    run("-m", "pipeline.prepare", f"--data_dir={videos}", f"--output_dir={shards}", "--height=60", "--width=80",
        f"--jpeg_quality={quality}", f"--group_regex={synthetic.GROUP_REGEX}", "--candidates=1", "--noflow")
    run("train.py", f"--data_dir={shards}", f"--model={model}", f"--model_dir={models}", f"--epochs={epochs}",
        "--batch_size=16", "--deterministic")
    with open(os.path.join(models, model, "metrics.json")) as f:
        m = json.load(f)
    return {"test_accuracy": m["test_accuracy"], "test_top3_accuracy": m["test_top3_accuracy"], "num_test_examples": m["num_test_examples"]}


def main() -> None:
    size = common.size_arg()
    s = SIZES[size]
    out = {"size": size, "raw_bytes_per_clip": RAW, "model": s["model"], "epochs": s["epochs"], "per_quality": {}}
    with tempfile.TemporaryDirectory() as work:
        videos = os.path.join(work, "videos")
        synthetic.generate(videos, clips_per_class=s["clips_per_class"], num_actors=s["num_actors"], seed=0, hard=True)
        for q in s["qualities"]:
            b = bytes_per_clip(q, s["byte_clips"])
            out["per_quality"][q] = {"bytes_per_clip": b, "raw_over_shard": RAW / b, **accuracy(videos, q, s["model"], s["epochs"], work)}
    common.report(out)


if __name__ == "__main__":
    main()
