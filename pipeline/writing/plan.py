"""prepare's plan, with no I/O: which clip is which task, in which split and order; the run's
fingerprint; and how each split's records are cut into shards.

The plan depends only on the inputs and settings (never on the worker count, the engine or
timing), which is what makes prepare's output byte-identical across runs. Everything here is a
pure function of its arguments, so it is tested without videos or files (tests/test_plan.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Mapping, Sequence

from pipeline.clip_spec import ClipSpec
from pipeline.index import Video
from pipeline.writing import shards


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that decides the bytes of the output (the worker count does not)."""

    clip: ClipSpec = ClipSpec()
    shard_size_mb: float = 64.0
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    num_folds: int = 0  # > 0: folds by group (cross-validation) instead of split_fractions
    seed: int = 0
    group_regex: str = ""
    video_timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.shard_size_mb <= 0 or self.video_timeout <= 0:
            raise ValueError("shard_size_mb and video_timeout must be positive")

    @property
    def shard_bytes(self) -> int:
        return int(self.shard_size_mb * 2**20)


@dataclasses.dataclass(frozen=True)
class Planned:
    """One clip of the plan: its task number (cache key), split, video and label id."""

    task: int
    split: str
    video: Video
    label: int


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """One shard to write: its file name and the tasks whose records it holds, in order."""

    split: str
    file: str
    tasks: tuple[int, ...]


def make_plan(videos_by_split: Mapping[str, Sequence[Video]], label_names: Sequence[str]) -> list[Planned]:
    """Tasks numbered in split order, then in each split's video order."""
    ids = {name: i for i, name in enumerate(label_names)}
    plan = []
    for split, videos in videos_by_split.items():
        for v in videos:
            plan.append(Planned(len(plan), split, v, ids[v.label_name]))
    return plan


def fingerprint(settings: Settings, label_names: Sequence[str], plan: Sequence[Planned]) -> str:
    """Identifies a run: same fingerprint, same output bytes."""
    body = {
        "settings": dataclasses.asdict(settings),
        "label_names": list(label_names),
        "plan": [[p.split, p.video.source, p.label] for p in plan],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def video_job(p: Planned, settings: Settings) -> tuple[str, ClipSpec]:
    """The argument of `frames.read_encoded_clip` for one planned clip."""
    return (p.video.path, settings.clip)


def plan_shards(kept: Sequence[Planned], record_bytes: Mapping[int, int], shard_bytes: int,
                split_names: Sequence[str]) -> list[ShardJob]:
    """Each split's kept clips, in plan order, cut into shards of about `shard_bytes` by their
    records' sizes (`record_bytes`: task -> bytes). A split with no clip gets no shard."""
    jobs = []
    for split in split_names:
        in_split = [p for p in kept if p.split == split]
        if not in_split:
            continue
        total = sum(record_bytes[p.task] for p in in_split)
        bounds = shards.shard_boundaries(len(in_split), shards.shard_count(total, shard_bytes))
        for i, (start, end) in enumerate(bounds):
            tasks = tuple(p.task for p in in_split[start:end])
            jobs.append(ShardJob(split, shards.shard_file_name(split, i, len(bounds)), tasks))
    return jobs
