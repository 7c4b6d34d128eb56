"""Shared fixtures: small generated video trees and prepared shards, made once per session."""

import os
import subprocess
import sys

import pytest

from pipeline import index
from pipeline.sources import synthetic
from tests import videos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(num_frames=4, height=24, width=32)


def run_module(module: str, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m module args` from the repo root, capturing output."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def run_train(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python train.py args` from the repo root, capturing output."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def add_broken_videos(root: str) -> list[str]:
    """Broken files inside class folders; returns their sources (relative paths)."""
    folder = os.path.join(root, synthetic.CLASS_NAMES[0])
    made = {
        "zero.mp4": lambda p: open(p, "wb").close(),
        "text.mp4": lambda p: open(p, "w").write("not a video\n"),
        "random.avi": lambda p: open(p, "wb").write(os.urandom(20_000)),
        "cut.mp4": lambda p: videos.truncate(videos.write_h264(p, videos.flat_frames(30, noise=6)), 0.5),
    }
    for name, make in made.items():
        make(os.path.join(folder, name))
    return sorted(f"{synthetic.CLASS_NAMES[0]}/{n}" for n in made)


@pytest.fixture(scope="session")
def video_tree(tmp_path_factory) -> str:
    """36 generated clips (3 per class, 3 actors) plus 4 broken files."""
    root = str(tmp_path_factory.mktemp("videos"))
    synthetic.generate(root, clips_per_class=3, num_actors=3, seed=1)
    add_broken_videos(root)
    return root


def cached_clips(clips_dir: str) -> int:
    """Clips a prepare run has finished in its cache (a record or a skip reason each)."""
    return len([n for n in os.listdir(clips_dir) if n.endswith((".rec", ".skip"))]) if os.path.isdir(clips_dir) else 0


def split_tree(root: str, seed: int = 0, group_regex: str = "") -> tuple[list[str], dict]:
    names, vids = index.resolve_labels(index.index_tree(root), None)
    vids = index.assign_groups(vids, group_regex or None)
    return names, index.split_videos(vids, (0.7, 0.15, 0.15), seed)


def pixel(example: int, frame: int) -> int:
    """The flat pixel value of `frame` of `example` in `make_shards` data."""
    return (example * 12 + frame * 3) % 250  # unique for 20 examples of up to 4 frames


def make_shards(out_dir: str, sizes: dict, num_classes: int = 3, num_frames: int = 3, height: int = 16, width: int = 16,
                shards_per_split: int = 2, num_folds: int = 0, flow: bool = False):
    """Shards written straight from numpy clips: example i of a split has label i % num_classes and
    frame t flat at pixel(i, t), so a reader bug shows as a wrong number. Returns the manifest.
    With num_folds, `sizes` names the folds (fold0 ...). With flow, each step stores prepare's
    four images: the frame, its successor (frame t + 1, the last one itself) and flat flow images
    (x at 128 + t: a small rightward motion, y at 128: none)."""
    import numpy as np

    from pipeline import frames as frames_lib
    from pipeline import manifest as manifest_lib
    from pipeline import records
    from pipeline.clip_spec import ClipSpec
    from pipeline.writing import shards

    os.makedirs(out_dir, exist_ok=True)
    names = [f"class{c}" for c in range(num_classes)]
    splits = {}
    for split, n in sizes.items():
        recs, examples = [], []
        for i in range(n):
            clip = np.stack([np.full((height, width, 3), pixel(i, t), np.uint8) for t in range(num_frames)])
            source = f"{names[i % num_classes]}/{split}{i:03d}.mp4"
            jpegs, indices = frames_lib.encode_jpeg(clip, 95), list(range(num_frames))
            if flow:
                jpegs, indices = _with_flow(clip, jpegs, frames_lib)
            recs.append(records.encode(jpegs, indices, num_frames, i % num_classes, names[i % num_classes], source))
            examples.append(manifest_lib.Example(source, i % num_classes))
        splits[split] = shards.write_split(out_dir, split, recs, examples, shards_per_split)
    manifest = manifest_lib.Manifest(
        label_names=tuple(names), clip=ClipSpec(num_frames, height, width, 95, with_next=flow, flow=flow), splits=splits, fingerprint="test",
        num_folds=num_folds,
    )
    manifest_lib.save(out_dir, manifest)
    return manifest


def _with_flow(clip, jpegs: list[bytes], frames_lib) -> tuple[list[bytes], list[int]]:
    """make_shards' images and frame indices for clips stored with flow (P = 4 per step)."""
    import numpy as np

    t_count, height, width = clip.shape[:3]
    stored, indices = [], []
    for t in range(t_count):
        nxt = min(t + 1, t_count - 1)
        grey = [np.full((height, width), 128 + t, np.uint8), np.full((height, width), 128, np.uint8)]
        stored += [jpegs[t], jpegs[nxt], *frames_lib.encode_jpeg(grey, 95)]
        indices += [t, nxt, t, t]
    return stored, indices
