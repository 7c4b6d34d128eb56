"""prepare's output directory and its clip cache: what makes a run resumable.

OUT/.prepare/state.json names the run that owns OUT (its fingerprint); OUT/.prepare/clips/<task>.rec
holds a finished clip's serialized record (beside it <task>.seconds, the duration the manifest
lists, so that the manifest does not read every record again) and <task>.skip the reason a video
was skipped, each written atomically, so a killed run keeps every clip it finished. Shards are written from the
cache (temporary name, then rename) and the cache is removed once the manifest is written.
Every engine (pipeline.writing.engine) reads and writes OUT only through these functions. TensorFlow
(pipeline.records) is imported only to make or read a record.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Sequence

from pipeline import manifest as manifest_lib
from pipeline import storage
from pipeline.frames import EncodedClip
from pipeline.writing import shards
from pipeline.writing.plan import Planned, ShardJob

log = logging.getLogger(__name__)

WORK_DIR = ".prepare"
_STATE = "state.json"


class OutputDirError(Exception):
    """OUT holds something else; the message says what and how to proceed."""


def claim(out_dir: str, fp: str, overwrite: bool) -> str:
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


def is_done(out_dir: str, task: int) -> bool:
    return any(storage.exists(_clip_path(out_dir, task, k)) for k in ("rec", "skip"))


def is_skipped(out_dir: str, task: int) -> bool:
    return storage.exists(_clip_path(out_dir, task, "skip"))


def skip_reason(out_dir: str, task: int) -> str:
    return storage.read_text(_clip_path(out_dir, task, "skip"))


def record(out_dir: str, task: int) -> bytes:
    """A finished clip's serialized record."""
    return storage.read_bytes(_clip_path(out_dir, task, "rec"))


def seconds(out_dir: str, task: int) -> float:
    """The source duration a finished clip's record carries (from the record itself in a cache
    written before the .seconds files were)."""
    path = _clip_path(out_dir, task, "seconds")
    if storage.exists(path):
        return float(storage.read_text(path))
    from pipeline import records  # TensorFlow, loaded only to parse a record

    return records.seconds_of(record(out_dir, task))


def record_bytes(out_dir: str, tasks: Sequence[int]) -> dict[int, int]:
    """task -> size of its cached record, for plan.plan_shards."""
    return {t: storage.size(_clip_path(out_dir, t, "rec")) for t in tasks}


def store_outcome(out_dir: str, p: Planned, label_names: Sequence[str], ok: bool, value: EncodedClip | None, error: str) -> None:
    """Cache one clip's result: its serialized record, or why it was skipped."""
    if ok:
        from pipeline import records  # TensorFlow, loaded only to make a record

        encoded = records.encode(value.jpegs, value.indices, value.frames_decoded, p.label, label_names[p.label], p.video.source,
                                 value.seconds)
        storage.write_atomic(_clip_path(out_dir, p.task, "seconds"), repr(records.seconds_of(encoded)))
        storage.write_atomic(_clip_path(out_dir, p.task, "rec"), encoded)  # last: the clip is done
    else:
        log.warning("skipped %s: %s", p.video.path, error)
        storage.write_atomic(_clip_path(out_dir, p.task, "skip"), error.encode("utf-8"))


def write_shard(out_dir: str, job: ShardJob) -> manifest_lib.Shard:
    """Write one planned shard from the cached records (kept if already complete)."""
    path = os.path.join(out_dir, job.file)
    if storage.exists(path):  # renamed into place, so complete: a resumed run keeps it
        return shards.describe(path, len(job.tasks))
    return shards.write_shard(path, (record(out_dir, t) for t in job.tasks))


def remove_temporaries(out_dir: str) -> None:
    """Shard temporaries a killed run left (their writer's pid in the name)."""
    for name in storage.listdir(out_dir):
        if ".tmp-" in name and shards.is_shard_file_name(name.split(".tmp-")[0]):
            storage.remove(os.path.join(out_dir, name))


def remove(out_dir: str) -> None:
    """The cache, once the manifest is written: OUT then holds only shards and the manifest."""
    storage.rmtree(os.path.join(out_dir, WORK_DIR))
