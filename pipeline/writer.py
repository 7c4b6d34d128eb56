"""Videos to TFRecord shards and a manifest, once, resumably and reproducibly.

Two phases, both resumable:
1. Encode: worker processes decode each video into a clip; the parent serializes it and keeps
   it in OUT/.prepare/clips/<task>.rec (or <task>.skip with the reason), each written
   atomically. A killed run keeps every finished clip.
2. Shard: when every clip is done, each split's records are written in plan order to shards
   (temporary name, then rename) and the manifest is written last. Shards that already exist
   under their final name are complete and are not written again.

The plan (which clip goes where, in which order) depends only on the inputs and settings, so
the shards are byte-identical whatever the number of workers and across runs. The phases run
through an engine: `LocalEngine` (this machine's processes) or `pipeline.beam_engine.BeamEngine`
(Apache Beam); both write the same clip cache, so their output bytes match.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Any, Sequence

from pipeline import manifest as manifest_lib
from pipeline import lock, records, shards, storage
from pipeline.clip_spec import ClipSpec
from pipeline.frames import EncodedClip, read_encoded_clip
from pipeline.index import Video
from pipeline.progress import Progress
from pipeline.workers import run_tasks

log = logging.getLogger(__name__)

WORK_DIR = ".prepare"
_STATE = "state.json"


class OutputDirError(Exception):
    """OUT holds something else; the message says what and how to proceed."""


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


@dataclasses.dataclass(frozen=True)
class Planned:
    """One clip of the plan: its task number (cache key), split, video and label id."""

    task: int
    split: str
    video: Video
    label: int


def make_plan(videos_by_split: dict[str, Sequence[Video]], label_names: Sequence[str]) -> list[Planned]:
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


def claim_output_dir(out_dir: str, fp: str, overwrite: bool) -> str:
    """Decide what to do with OUT: 'fresh', 'resume' or 'complete'. Refuses foreign contents."""
    storage.makedirs(out_dir)
    work = os.path.join(out_dir, WORK_DIR)
    state_path = os.path.join(work, _STATE)
    ours = _own_files(out_dir)
    if storage.exists(state_path):
        if json.loads(storage.read_text(state_path)).get("fingerprint") == fp:
            return "resume"
    elif manifest_lib.fingerprint_of(out_dir) == fp:
        return "complete"
    if ours and not overwrite:
        raise OutputDirError(
            f"{out_dir}: holds output of a run with other inputs or settings; "
            "use another --output_dir, or --overwrite to replace it"
        )
    for name in ours:
        path = os.path.join(out_dir, name)
        storage.rmtree(path) if storage.isdir(path) else storage.remove(path)
    storage.makedirs(os.path.join(work, "clips"))
    storage.write_atomic(state_path, json.dumps({"fingerprint": fp}))
    return "fresh"


def _own_files(out_dir: str) -> list[str]:
    """Files a prepare run writes: shards, their temporaries, the manifest, the work dir."""
    return sorted(
        n
        for n in storage.listdir(out_dir)
        if n == WORK_DIR or n.startswith(manifest_lib.FILE_NAME) or shards.is_shard_file_name(n.split(".tmp-")[0])
    )


def _clip_path(out_dir: str, task: int, kind: str) -> str:
    return os.path.join(out_dir, WORK_DIR, "clips", f"{task:06d}.{kind}")


def _is_done(out_dir: str, task: int) -> bool:
    return any(storage.exists(_clip_path(out_dir, task, k)) for k in ("rec", "skip"))


def video_job(p: Planned, settings: Settings) -> tuple[str, ClipSpec]:
    """The argument of `read_encoded_clip` for one planned clip."""
    return (p.video.path, settings.clip)


def store_outcome(out_dir: str, p: Planned, label_names: Sequence[str], ok: bool, value: EncodedClip | None, error: str) -> None:
    """Cache one clip's result: its serialized record, or why it was skipped."""
    if ok:
        record = records.encode(value.jpegs, value.indices, value.frames_decoded, p.label, label_names[p.label], p.video.source,
                                value.seconds)
        storage.write_atomic(_clip_path(out_dir, p.task, "rec"), record)
    else:
        log.warning("skipped %s: %s", p.video.path, error)
        storage.write_atomic(_clip_path(out_dir, p.task, "skip"), error.encode("utf-8"))


def encode_clips(todo: Sequence[Planned], label_names: Sequence[str], settings: Settings, out_dir: str, num_workers: int) -> None:
    """Phase 1, locally: decode and encode the clips not already cached, in worker processes."""
    jobs = [video_job(p, settings) for p in todo]
    with Progress(len(todo), "encoding clips") as progress:
        for outcome in run_tasks(read_encoded_clip, jobs, num_workers, settings.video_timeout):
            store_outcome(out_dir, todo[outcome.index], label_names, outcome.ok, outcome.value, outcome.error)
            progress.update()


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """One shard to write: its file name and the tasks whose records it holds, in order."""

    split: str
    file: str
    tasks: tuple[int, ...]


def plan_shards(out_dir: str, kept: Sequence[Planned], shard_bytes: int, split_names: Sequence[str]) -> list[ShardJob]:
    """Phase 2's plan: each split's kept clips, in plan order, cut into shards by size."""
    jobs = []
    for split in split_names:
        in_split = [p for p in kept if p.split == split]
        if not in_split:
            continue
        sizes = [storage.size(_clip_path(out_dir, p.task, "rec")) for p in in_split]
        bounds = shards.shard_boundaries(len(in_split), shards.shard_count(sum(sizes), shard_bytes))
        for i, (start, end) in enumerate(bounds):
            tasks = tuple(p.task for p in in_split[start:end])
            jobs.append(ShardJob(split, shards.shard_file_name(split, i, len(bounds)), tasks))
    return jobs


def write_shard_job(out_dir: str, job: ShardJob) -> manifest_lib.Shard:
    """Write one planned shard from the cached records (kept if already complete)."""
    path = os.path.join(out_dir, job.file)
    if storage.exists(path):  # renamed into place, so complete: a resumed run keeps it
        return shards.describe(path, len(job.tasks))
    return shards.write_shard(path, (storage.read_bytes(_clip_path(out_dir, t, "rec")) for t in job.tasks))


class LocalEngine:
    """Runs prepare's two phases on this machine: `num_workers` decoding processes, then the
    shards one after another. (pipeline.beam_engine runs the same steps on Apache Beam.)"""

    def __init__(self, num_workers: int):
        self.num_workers = num_workers

    def encode(self, todo: Sequence[Planned], label_names: Sequence[str], settings: Settings, out_dir: str) -> None:
        encode_clips(todo, label_names, settings, out_dir, self.num_workers)

    def write_shards(self, out_dir: str, jobs: Sequence[ShardJob]) -> list[manifest_lib.Shard]:
        return [write_shard_job(out_dir, job) for job in jobs]


def _remove_temporaries(out_dir: str) -> None:
    for name in storage.listdir(out_dir):
        if ".tmp-" in name and shards.is_shard_file_name(name.split(".tmp-")[0]):
            storage.remove(os.path.join(out_dir, name))


def write_dataset(
    videos_by_split: dict[str, Sequence[Video]],
    label_names: Sequence[str],
    out_dir: str,
    settings: Settings,
    num_workers: int = 1,
    overwrite: bool = False,
    data_dir: str = "",
    engine: Any = None,
) -> manifest_lib.Manifest:
    """Prepare OUT from the split videos (fixed splits, or folds with settings.num_folds); returns
    the manifest. Resumes a killed run.

    `engine` runs the two phases (default: LocalEngine(num_workers)); whatever runs them, the
    output bytes are the same. OUT is held for the run (pipeline.lock): a second prepare into it
    gets LockedError, naming this one.
    """
    with lock.hold(out_dir, "prepare"):
        return _write_dataset(videos_by_split, label_names, out_dir, settings, num_workers, overwrite, data_dir, engine)


def _write_dataset(videos_by_split, label_names, out_dir, settings, num_workers, overwrite, data_dir, engine) -> manifest_lib.Manifest:
    start = time.monotonic()
    engine = engine or LocalEngine(num_workers)
    plan = make_plan(videos_by_split, label_names)
    fp = fingerprint(settings, label_names, plan)
    state = claim_output_dir(out_dir, fp, overwrite)
    if state == "complete":
        log.info("%s is already complete for these inputs and settings; nothing to do", out_dir)
        return manifest_lib.load(out_dir)
    todo = [p for p in plan if not _is_done(out_dir, p.task)]
    if len(todo) < len(plan):
        log.info("resuming: %d of %d clips already encoded", len(plan) - len(todo), len(plan))
    engine.encode(todo, label_names, settings, out_dir)
    skipped = [p for p in plan if storage.exists(_clip_path(out_dir, p.task, "skip"))]
    skipped_tasks = {p.task for p in skipped}
    kept = [p for p in plan if p.task not in skipped_tasks]
    names = manifest_lib.split_names(settings.num_folds)
    for split in names if settings.num_folds else ("train",):  # a run needs each fold; any run needs train
        if not [p for p in kept if p.split == split]:
            raise OutputDirError(f"{data_dir or out_dir}: no usable video in the {split} split ({len(skipped)} skipped)")
    _remove_temporaries(out_dir)
    jobs = plan_shards(out_dir, kept, int(settings.shard_size_mb * 2**20), names)
    infos = engine.write_shards(out_dir, jobs)
    splits = {}
    for split in names:
        splits[split] = manifest_lib.Split(
            shards=tuple(info for job, info in zip(jobs, infos) if job.split == split),
            examples=tuple(_example(out_dir, p) for p in kept if p.split == split),
        )
    result = manifest_lib.Manifest(
        label_names=tuple(label_names), clip=settings.clip, splits=splits, num_folds=settings.num_folds, fingerprint=fp,
        settings=json.loads(json.dumps(dataclasses.asdict(settings))),  # as load() reads it back
        skipped=tuple(manifest_lib.Skipped(p.video.source, storage.read_text(_clip_path(out_dir, p.task, "skip"))) for p in skipped),
    )
    manifest_lib.save(out_dir, result)
    storage.rmtree(os.path.join(out_dir, WORK_DIR))
    _log_summary(result, len(plan), time.monotonic() - start)
    return result


def _example(out_dir: str, p: Planned) -> manifest_lib.Example:
    """The manifest's entry for a kept clip, with the duration its cached record carries."""
    seconds = records.seconds_of(storage.read_bytes(_clip_path(out_dir, p.task, "rec")))
    return manifest_lib.Example(p.video.source, p.label, p.video.group, seconds)


def _log_summary(result: manifest_lib.Manifest, planned: int, seconds: float) -> None:
    names = list(result.splits)
    total_bytes = sum(s.num_bytes for sp in result.splits.values() for s in sp.shards)
    written = sum(sp.num_examples for sp in result.splits.values())
    lines = [f"{'class':<28}" + "".join(f"{s:>12}" for s in names)]
    for label, name in enumerate(result.label_names):
        counts = [sum(e.label == label for e in result.splits[s].examples) for s in names]
        lines.append(f"{name:<28}" + "".join(f"{c:>12}" for c in counts))
    lines.append(f"{'total':<28}" + "".join(f"{result.splits[s].num_examples:>12}" for s in names))
    log.info("examples per split and class:\n%s", "\n".join(lines))
    for s in result.skipped:
        log.info("skipped %s: %s", s.source, s.reason)
    empty = [s for s in names if result.splits[s].num_examples == 0]
    if empty:
        counts = ", ".join(f"{s} {result.splits[s].num_examples}" for s in names)
        log.warning("the %s split%s empty (%s clips: %s): too few clips or groups for the split; train.py needs "
                    "clips in validation and test: add clips, change --split_fractions (or --group_regex), or use --num_folds",
                    " and ".join(empty), "s are" if len(empty) > 1 else " is", written, counts)
    log.info(
        "wrote %d clips (%d skipped) in %d shards, %.1f MB, in %.1f s (%.2f clips/s over %d planned)",
        written,
        len(result.skipped),
        sum(len(sp.shards) for sp in result.splits.values()),
        total_bytes / 1e6,
        seconds,
        planned / max(seconds, 1e-9),
        planned,
    )
