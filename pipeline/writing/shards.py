"""Shard files: how many, which examples go in each, their names, and writing one safely.

Boundaries are a pure function of (number of examples, number of shards), so a resumed run
plans exactly the shards an uninterrupted run would. TensorFlow (TFRecord writing, gs:// paths)
is imported when a shard is read or written, not with the module: planning needs none.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from typing import Iterable, Sequence

from pipeline.manifest import Example, Shard, Split

SUFFIX = ".tfrecord"
_NAME = re.compile(r"^(?P<split>[a-z]+\d*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")


def _tf():
    import tensorflow as tf

    return tf


def shard_count(total_bytes: int, shard_bytes: int) -> int:
    """Shards needed so that none is much over `shard_bytes`; at least one."""
    if shard_bytes <= 0:
        raise ValueError(f"shard size must be positive, got {shard_bytes} bytes")
    return max(1, math.ceil(total_bytes / shard_bytes))


def shard_boundaries(num_examples: int, num_shards: int) -> list[tuple[int, int]]:
    """[start, end) of each shard: example counts differ by at most one, none empty."""
    if num_examples < 1:
        raise ValueError("refusing to plan shards for an empty split")
    num_shards = min(num_shards, num_examples)
    cuts = [(i * num_examples) // num_shards for i in range(num_shards + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def shard_file_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}{SUFFIX}"


def is_shard_file_name(name: str) -> bool:
    return _NAME.match(name) is not None


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with _tf().io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def describe(path: str, num_examples: int) -> Shard:
    return Shard(os.path.basename(path), num_examples, _tf().io.gfile.stat(path).length, file_sha256(path))


def write_shard(path: str, records: Iterable[bytes]) -> Shard:
    """Write records under a temporary name, then rename: `path` never holds a partial shard."""
    tmp = f"{path}.tmp-{os.getpid()}"
    count = 0
    tf = _tf()
    with tf.io.TFRecordWriter(tmp) as writer:
        for record in records:
            writer.write(record)
            count += 1
    tf.io.gfile.rename(tmp, path, overwrite=True)
    return describe(path, count)


def write_split(out_dir: str, split: str, records: Sequence[bytes], examples: Sequence[Example], num_shards: int) -> Split:
    """Write one split's records (in order) as `num_shards` shards (fewer for fewer records);
    returns the split as the manifest records it. An empty split writes no shard."""
    if len(records) != len(examples):
        raise ValueError(f"{len(records)} records but {len(examples)} examples")
    infos = []
    if records:
        bounds = shard_boundaries(len(records), num_shards)
        for k, (a, b) in enumerate(bounds):
            infos.append(write_shard(os.path.join(out_dir, shard_file_name(split, k, len(bounds))), records[a:b]))
    return Split(tuple(infos), tuple(examples))
