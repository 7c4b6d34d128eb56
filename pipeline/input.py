"""Shards to a `tf.data.Dataset` of (frames uint8 [B, T, H, W, 3], labels int32 [B]).

Train: shard by input pipeline (files when there are enough, else examples), reshuffle files
every epoch, parallel interleave, shuffle serialized clips (small: JPEG bytes, not pixels),
repeat, parallel decode, optional augmentation, batch, prefetch.
Eval: every example exactly once, in manifest order, no augmentation.

Each shard is read with its record count from the manifest: a corrupt or truncated shard fails
with an error naming the shard, instead of TensorFlow's nameless DataLossError.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from pipeline import augment as augment_lib
from pipeline import manifest as manifest_lib
from pipeline import records

AUTOTUNE = tf.data.AUTOTUNE


def _checked_records(path: tf.Tensor, expected: tf.Tensor) -> tf.data.Dataset:
    """Records of one shard; at its end, fails naming the shard unless all `expected` were read.

    A read error (bad CRC, truncation) ends the shard early; the count check then turns it
    into an error that names the file. Nothing is dropped silently.
    """
    raw = tf.data.TFRecordDataset(path).ignore_errors()
    end = tf.data.Dataset.from_tensors(tf.constant(b"", tf.string))
    numbered = raw.map(lambda r: (r, False)).concatenate(end.map(lambda r: (r, True)))
    counted = numbered.scan(tf.constant(0, tf.int64), lambda n, x: (n + tf.cast(tf.logical_not(x[1]), tf.int64), (x[0], x[1], n)))

    def check(record: tf.Tensor, is_end: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        ok = tf.logical_or(tf.logical_not(is_end), tf.equal(count, expected))
        with tf.control_dependencies(
            [tf.debugging.Assert(ok, ["corrupt shard", path, "read", count, "of", expected, "records (bad CRC or truncated file)"])]
        ):
            return tf.identity(is_end)

    return counted.filter(lambda r, e, n: tf.logical_not(check(r, e, n))).map(lambda r, e, n: r)


def _decoder(manifest: dict[str, Any]):
    t, h, w = manifest["num_frames"], manifest["height"], manifest["width"]

    def decode(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_single_example(serialized, records.feature_spec(t))
        frames = records.decode_frames(parsed[records.FRAMES], t, h, w)
        return frames, tf.cast(parsed[records.LABEL], tf.int32)

    return decode


def _files(data_dir: str, manifest: dict[str, Any], split: str) -> tf.data.Dataset:
    paths = manifest_lib.shard_paths(data_dir, manifest, split)
    counts = [s["num_examples"] for s in manifest["splits"][split]["shards"]]
    if not paths:
        raise ValueError(f"{manifest_lib.path_in(data_dir)}: split {split!r} has no examples")
    return tf.data.Dataset.from_tensor_slices((paths, tf.constant(counts, tf.int64)))


def make_dataset(
    data_dir: str,
    split: str,
    batch_size: int,
    *,
    training: bool,
    input_context: tf.distribute.InputContext | None = None,
    augment: float = 0.0,
    seed: int | None = None,
    shuffle_buffer: int = 512,
    cache: bool = False,
    deterministic: bool = False,
    manifest: dict[str, Any] | None = None,
    data_service: str = "",
) -> tf.data.Dataset:
    """A dataset of (frames uint8 [batch, T, H, W, 3], labels int32 [batch]).

    batch_size is per input pipeline (with distribution: the per-replica batch size).
    Training repeats forever and drops the last partial batch; evaluation does neither.
    augment is the augmentation's strength (pipeline.augment): 0 off, 1 (or True) the full ranges.
    cache=True keeps decoded clips in memory (small data sets only).
    data_service="grpc://host:port" moves reading, shuffling, decoding and augmentation to
    tf.data service workers (training only); every example arrives once per epoch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    manifest = manifest or manifest_lib.load(data_dir)
    if data_service:
        return _from_service(data_dir, manifest, split, batch_size, training, input_context, augment, seed, shuffle_buffer, data_service)
    files = _files(data_dir, manifest, split)
    counts = [s["num_examples"] for s in manifest["splits"][split]["shards"]]
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    by_files = pipelines > 1 and len(counts) >= pipelines
    if by_files:
        files = files.shard(pipelines, pipeline_id)
        counts = counts[pipeline_id::pipelines]
    num_files = len(counts)
    options = tf.data.Options()
    options.deterministic = deterministic or not training
    # We shard ourselves; tf.distribute's auto-sharding would shard a second time.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    if training and not cache:
        files = files.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)
        ds = files.interleave(_checked_records, cycle_length=min(num_files, 8), num_parallel_calls=AUTOTUNE)
    else:
        ds = files.flat_map(_checked_records)  # one shard after another: manifest order
        # A known length lets Keras see the end of an evaluation without running into it.
        ds = ds.apply(tf.data.experimental.assert_cardinality(sum(counts)))
    if pipelines > 1 and not by_files:
        ds = ds.shard(pipelines, pipeline_id)
    if training and not cache:
        # Shuffle clips (as JPEG bytes, not pixels) before repeating, so each epoch is one pass:
        # exactly when deterministic; otherwise parallel decode may finish a clip of the next
        # epoch before the last few of this one, which then open the next epoch.
        ds = ds.shuffle(min(shuffle_buffer, sum(counts)), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(_decoder(manifest), num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()
        if training:
            ds = ds.shuffle(min(shuffle_buffer, sum(counts)), seed=seed, reshuffle_each_iteration=True).repeat()
    if training and augment:
        ds = augment_lib.apply(ds, seed, float(augment))
    ds = ds.batch(batch_size, drop_remainder=training, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE).with_options(options)


def _from_service(data_dir, manifest, split, batch_size, training, input_context, augment, seed, shuffle_buffer, service):
    """Training input through tf.data service: workers read, shuffle, decode and augment one
    epoch, handing out shards dynamically (each file to one worker, so each clip once); this
    process repeats and batches."""
    if not training:
        raise ValueError("data_service: only training input goes through tf.data service")
    if input_context is not None and input_context.num_input_pipelines > 1:
        raise ValueError("data_service: one input pipeline per job is supported; use one host per job")
    # No file shuffle here: with dynamic sharding the dispatcher decides which file goes where.
    files = _files(data_dir, manifest, split)
    n = manifest["splits"][split]["num_examples"]
    ds = files.interleave(_checked_records, cycle_length=min(len(manifest["splits"][split]["shards"]), 8), num_parallel_calls=AUTOTUNE)
    ds = ds.shuffle(min(shuffle_buffer, n), seed=seed).map(_decoder(manifest), num_parallel_calls=AUTOTUNE)
    if augment:
        ds = augment_lib.apply(ds, seed, float(augment))
    ds = ds.apply(
        tf.data.experimental.service.distribute(tf.data.experimental.service.ShardingPolicy.DYNAMIC, service=service)
    )
    return ds.repeat().batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
