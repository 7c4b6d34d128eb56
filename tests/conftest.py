"""Shared fixtures: small generated video trees and prepared shards, made once per session."""

import os
import subprocess
import sys

import pytest

from pipeline import index, synthetic
from tests import videos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(num_frames=4, height=24, width=32)


def run_module(module: str, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m module args` from the repo root, capturing output."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )


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


def split_tree(root: str, seed: int = 0, group_regex: str = "") -> tuple[list[str], dict]:
    names, vids = index.resolve_labels(index.index_tree(root), None)
    vids = index.assign_groups(vids, group_regex or None)
    return names, index.split_videos(vids, (0.7, 0.15, 0.15), seed)
