"""What runs prepare's two phases: the engine protocol, and the engine of this machine.

An engine encodes the planned clips into the clip cache (pipeline.writing.clip_cache) and writes the
planned shards from it; the writer (pipeline.writing.writer) plans, owns OUT and writes the manifest.
Every engine goes through the same cache functions and the same per-video step
(`frames.read_encoded_clip` of `plan.video_job`), so their output bytes are the same:
`LocalEngine` here, `pipeline.beam_engine.BeamEngine` on Apache Beam.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from pipeline.frames import read_encoded_clip
from pipeline.manifest import Shard
from pipeline.progress import Progress
from pipeline.writing import clip_cache
from pipeline.writing.plan import Planned, Settings, ShardJob, video_job
from pipeline.writing.workers import run_tasks


class Engine(Protocol):
    def encode(self, todo: Sequence[Planned], label_names: Sequence[str], settings: Settings, out_dir: str) -> None:
        """Phase 1: cache a record (or a skip reason) in OUT for every clip of `todo`."""

    def write_shards(self, out_dir: str, jobs: Sequence[ShardJob]) -> list[Shard]:
        """Phase 2: write each shard job from the cache; returns the shards, in `jobs` order."""


class LocalEngine:
    """Runs prepare's two phases on this machine: `num_workers` decoding processes (each video
    with its time limit), then the shards one after another."""

    def __init__(self, num_workers: int):
        self.num_workers = num_workers

    def encode(self, todo: Sequence[Planned], label_names: Sequence[str], settings: Settings, out_dir: str) -> None:
        jobs = [video_job(p, settings) for p in todo]
        with Progress(len(todo), "encoding clips") as progress:
            for outcome in run_tasks(read_encoded_clip, jobs, self.num_workers, settings.video_timeout):
                clip_cache.store_outcome(out_dir, todo[outcome.index], label_names, outcome.ok, outcome.value, outcome.error)
                progress.update()

    def write_shards(self, out_dir: str, jobs: Sequence[ShardJob]) -> list[Shard]:
        return [clip_cache.write_shard(out_dir, job) for job in jobs]
