"""Videos to TFRecord shards and a manifest, once, resumably and reproducibly.

Two phases, both resumable:
1. Encode: worker processes decode each video into a clip; the parent serializes it and keeps
   it in OUT/.prepare/clips/<task>.rec (or <task>.skip with the reason), each written
   atomically. A killed run keeps every finished clip.
2. Shard: when every clip is done, each split's records are written in plan order to shards
   (temporary name, then rename) and the manifest is written last. Shards that already exist
   under their final name are complete and are not written again.

The writer is the driver: the plan (pipeline.writing.plan: pure, which clip goes where, shard
boundaries), OUT and its clip cache (pipeline.writing.clip_cache), and an engine that runs the two
phases (pipeline.writing.engine: `LocalEngine`, or `pipeline.beam_engine.BeamEngine`). The plan depends
only on the inputs and settings, so the shards are byte-identical whatever the number of
workers, the engine, and across runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Sequence

from pipeline import lock
from pipeline import manifest as manifest_lib
from pipeline.index import Video
from pipeline.writing import clip_cache
from pipeline.writing.clip_cache import WORK_DIR, OutputDirError  # noqa: F401 (the writer's API: prepare, tests)
from pipeline.writing.engine import Engine, LocalEngine
from pipeline.writing.plan import Planned, Settings, fingerprint, make_plan, plan_shards

log = logging.getLogger(__name__)


def write_dataset(
    videos_by_split: dict[str, Sequence[Video]],
    label_names: Sequence[str],
    out_dir: str,
    settings: Settings,
    num_workers: int = 1,
    overwrite: bool = False,
    data_dir: str = "",
    engine: Engine | None = None,
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
    if clip_cache.claim(out_dir, fp, overwrite) == "complete":
        log.info("%s is already complete for these inputs and settings; nothing to do", out_dir)
        return manifest_lib.load(out_dir)
    todo = [p for p in plan if not clip_cache.is_done(out_dir, p.task)]
    if len(todo) < len(plan):
        log.info("resuming: %d of %d clips already encoded", len(plan) - len(todo), len(plan))
    engine.encode(todo, label_names, settings, out_dir)
    skipped = [p for p in plan if clip_cache.is_skipped(out_dir, p.task)]
    skipped_tasks = {p.task for p in skipped}
    kept = [p for p in plan if p.task not in skipped_tasks]
    names = manifest_lib.split_names(settings.num_folds)
    for split in names if settings.num_folds else ("train",):  # a run needs each fold; any run needs train
        if not [p for p in kept if p.split == split]:
            raise OutputDirError(f"{data_dir or out_dir}: no usable video in the {split} split ({len(skipped)} skipped)")
    clip_cache.remove_temporaries(out_dir)
    jobs = plan_shards(kept, clip_cache.record_bytes(out_dir, [p.task for p in kept]), settings.shard_bytes, names)
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
        skipped=tuple(manifest_lib.Skipped(p.video.source, clip_cache.skip_reason(out_dir, p.task)) for p in skipped),
    )
    manifest_lib.save(out_dir, result)
    clip_cache.remove(out_dir)
    _log_summary(result, len(plan), time.monotonic() - start)
    return result


def _example(out_dir: str, p: Planned) -> manifest_lib.Example:
    """The manifest's entry for a kept clip, with the duration its cached record carries."""
    return manifest_lib.Example(p.video.source, p.label, p.video.group, clip_cache.seconds(out_dir, p.task))


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
