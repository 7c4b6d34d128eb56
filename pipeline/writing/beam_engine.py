"""prepare's two phases as Apache Beam pipelines, for corpora too big for one machine.

    python -m pipeline.prepare --data_dir=gs://b/videos --output_dir=gs://b/shards \
        --runner=DataflowRunner --beam_options="--project=P --region=R --temp_location=gs://b/tmp"

The driver (this process) indexes and splits the videos and plans exactly as the local writer
does (`pipeline.writer.write_dataset`; `BeamEngine` is its other `pipeline.engine.Engine`); Beam
runs the per-video step (decode, sample, letterbox, JPEG: the same `read_encoded_clip`) on as
many workers as the runner gives, each writing its clip to OUT/.prepare/clips through
pipeline.writing.clip_cache like the local writer's worker processes; a second pipeline writes
one shard per element. So the shards and manifest are byte for byte the local writer's, and a
rerun after a failure resumes from the clips already cached.

Apache Beam is an optional extra: `pip install .[beam]`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from typing import Sequence

from pipeline import storage
from pipeline.frames import read_encoded_clip
from pipeline.manifest import Shard
from pipeline.writing import clip_cache
from pipeline.writing.plan import Planned, Settings, ShardJob, video_job
from pipeline.writing.workers import describe_error

INSTALL_HINT = "Apache Beam is not installed; install the optional extra: pip install '.[beam]'"


def _beam():
    try:
        import apache_beam
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return apache_beam


def _encode_one(p: Planned, label_names: Sequence[str], settings: Settings, out_dir: str) -> None:
    """The per-video step on a Beam worker: a broken video is cached as skipped, with its reason."""
    try:
        value, ok, error = read_encoded_clip(video_job(p, settings)), True, ""
    except Exception as e:  # any failure of one video skips that video, as the local writer does
        value, ok, error = None, False, describe_error(e)
    clip_cache.store_outcome(out_dir, p, label_names, ok, value, error)


def _info_path(out_dir: str, job: ShardJob) -> str:
    return os.path.join(out_dir, clip_cache.WORK_DIR, "shards", job.file + ".json")


def _write_one_shard(job: ShardJob, out_dir: str) -> None:
    info = clip_cache.write_shard(out_dir, job)
    storage.write_atomic(_info_path(out_dir, job), json.dumps(dataclasses.asdict(info)))


class BeamEngine:
    """Runs prepare's phases on a Beam runner: DirectRunner (this machine), DataflowRunner,
    FlinkRunner, SparkRunner, ... `options` are Beam pipeline options as command-line words."""

    def __init__(self, runner: str, options: str = ""):
        beam = _beam()
        from apache_beam.options.pipeline_options import PipelineOptions

        self.beam = beam
        self.options = PipelineOptions([f"--runner={runner}", *shlex.split(options)])

    def _run(self, name: str, elements: list, fn, *args) -> None:
        beam = self.beam
        if not elements:
            return
        with beam.Pipeline(options=self.options) as p:
            _ = (
                p
                | f"{name} list" >> beam.Create(elements)
                | f"{name} spread" >> beam.Reshuffle()  # one element per worker at a time, not one bundle
                | name >> beam.Map(fn, *args)
            )

    def encode(self, todo: Sequence[Planned], label_names: Sequence[str], settings: Settings, out_dir: str) -> None:
        self._run("encode", list(todo), _encode_one, list(label_names), settings, out_dir)

    def write_shards(self, out_dir: str, jobs: Sequence[ShardJob]) -> list[Shard]:
        storage.makedirs(os.path.join(out_dir, clip_cache.WORK_DIR, "shards"))
        self._run("write shard", list(jobs), _write_one_shard, out_dir)
        return [Shard(**json.loads(storage.read_text(_info_path(out_dir, job)))) for job in jobs]
