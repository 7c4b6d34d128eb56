"""Shards to a `tf.data.Dataset` of (frames uint8 [B, T, H, W, 3P], labels int32 [B]).

Decoding (a record to one view of its clip: `eval_decoder`, `train_decoder`) is kept apart from
the pipelines that compose it (Model Garden's decoder/parser split), each one function:
- training (`_training_pipeline`): this input pipeline's share (`_Sharding`: whole files when
  there are enough, else examples), a seeded order per pass, parallel interleave, shuffled
  serialized clips (small: JPEG bytes, not pixels), forever; then parallel decode of a random
  candidate per segment, optional augmentation, full batches. How the stream is drawn is one
  typed record, `Training`.
- evaluation (`_eval_pipeline`): every example exactly once, in manifest order, one view.
- tf.data service (`_service_pipeline`): the same records and training decode on the service's
  workers.

Each shard is read with its record count from the manifest: a corrupt or truncated shard fails
with an error naming the shard, instead of TensorFlow's nameless DataLossError.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import tensorflow as tf

from pipeline import manifest as manifest_lib
from pipeline import records
from pipeline.clip_spec import ClipSpec
from pipeline.input import augment as augment_lib

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


def _parsed(serialized: tf.Tensor, spec: ClipSpec) -> tuple[tf.Tensor, tf.Tensor]:
    """A serialized record to (JPEG strings [stored_frames], label int32 [])."""
    parsed = tf.io.parse_single_example(serialized, records.feature_spec(spec.stored_frames))
    return parsed[records.FRAMES], tf.cast(parsed[records.LABEL], tf.int32)


def eval_decoder(spec: ClipSpec, view: int | None = None):
    """Record -> (frames uint8 [T, H, W, 3P], label): the centre candidate of each segment, or
    candidate `view` of each (test-time views)."""
    if view is not None and not 0 <= view < spec.candidates:
        raise ValueError(f"view must be in [0, {spec.candidates}) for clips of {spec.candidates} candidates, got {view}")
    choice = records.centre_choice(spec) if view is None else tf.fill([spec.num_frames], view)

    def decode(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        jpegs, label = _parsed(serialized, spec)
        return records.decode_view(jpegs, spec, choice), label

    return decode


def train_decoder(spec: ClipSpec, augment: float):
    """(record, seed int64 [2]) -> (frames, label): a random candidate per segment, then the
    augmentation at strength `augment` (0: none), both drawn from the clip's own seed."""

    def decode(serialized: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        jpegs, label = _parsed(serialized, spec)
        seeds = tf.random.experimental.stateless_split(seed, num=2)
        frames = records.decode_view(jpegs, spec, records.random_choice(spec, seeds[0]))
        if augment:
            frames = augment_lib.augment_clip(frames, seeds[1], augment, flow=spec.flow)
        return frames, label

    return decode


@dataclasses.dataclass(frozen=True)
class Training:
    """How the training stream is drawn: augmentation strength (0: none), seed (None: unseeded),
    shuffle buffer (in clips) and clips to pass over first (a resumed run's position)."""

    augment: float = 0.0
    seed: int | None = None
    shuffle_buffer: int = 512
    skip: int = 0


@dataclasses.dataclass(frozen=True)
class _Files:
    """The shards one pipeline reads: a dataset of (path, record count), and the counts."""

    paths: tf.data.Dataset
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def records(self, shuffled: bool = False) -> tf.data.Dataset:
        """The shards' records, interleaved (parallel) across up to 8 shards."""
        paths = self.paths.shuffle(len(self.counts)) if shuffled else self.paths
        return paths.interleave(_checked_records, cycle_length=min(len(self.counts), 8), num_parallel_calls=AUTOTUNE)


@dataclasses.dataclass(frozen=True)
class _Sharding:
    """This input pipeline's share of the files read: whole files when there are at least as many
    as pipelines (`by_files`), else every pipelines-th record."""

    pipelines: int = 1
    pipeline_id: int = 0
    by_files: bool = False

    @classmethod
    def of(cls, input_context: tf.distribute.InputContext | None, files: _Files) -> "_Sharding":
        if input_context is None or input_context.num_input_pipelines == 1:
            return cls()
        n = input_context.num_input_pipelines
        return cls(n, input_context.input_pipeline_id, by_files=len(files.counts) >= n)

    def files(self, files: _Files) -> _Files:
        if not self.by_files:
            return files
        return _Files(files.paths.shard(self.pipelines, self.pipeline_id), files.counts[self.pipeline_id::self.pipelines])

    def records(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        """`ds`, records of self.files(...), cut to this pipeline's share when the files were not."""
        return ds.shard(self.pipelines, self.pipeline_id) if self.pipelines > 1 and not self.by_files else ds


def _decoded_for_training(ds: tf.data.Dataset, spec: ClipSpec, training: Training) -> tf.data.Dataset:
    """Records to training clips: a seed per clip, `training.skip` clips passed over, then
    parallel decode (and augmentation)."""
    if training.augment:
        augment_lib.ranges(training.augment)  # refuses a strength out of range here, not inside tf.data
    seeds = tf.data.Dataset.random(seed=training.seed).batch(2)
    decode = train_decoder(spec, float(training.augment))
    return tf.data.Dataset.zip(ds, seeds).skip(training.skip).map(decode, num_parallel_calls=AUTOTUNE)


def _files(data_dir: str, manifest: manifest_lib.Manifest, splits: Sequence[str]) -> _Files:
    """The named splits' shards, in manifest order."""
    paths = manifest_lib.shard_paths(data_dir, manifest, splits)
    counts = [s.num_examples for s in manifest.shards(splits)]
    if not paths:
        raise ValueError(f"{manifest_lib.path_in(data_dir)}: split {'+'.join(splits)!r} has no examples")
    return _Files(tf.data.Dataset.from_tensor_slices((paths, tf.constant(counts, tf.int64))), counts)


def _passes(files: _Files, training: Training, sharding: _Sharding) -> tf.data.Dataset:
    """The training records, one pass over the files after another, forever.

    With a seed, each pass orders the files and then blocks of `shuffle_buffer` clips (as JPEG
    bytes, not pixels) by stateless permutations of (seed, pass, block) only, so what a pass holds
    does not depend on how many iterators the stream had before: Keras opens one to build a model
    and then another, and with a shared reshuffle state a resumed run, skipping what was done, read
    other passes than an uninterrupted one. Clips are shuffled within a pass, so each epoch is one
    pass: exactly when deterministic; otherwise parallel decode may finish a clip of the next epoch
    before the last few of this one. Without a seed, tf.data reshuffles each pass its own way.
    `files`: this pipeline's share of the files (sharding.files).
    """
    buffer = min(training.shuffle_buffer, files.total)
    if training.seed is None:
        return sharding.records(files.records(shuffled=True)).shuffle(buffer).repeat()
    seed, n = training.seed, len(files.counts)

    def one_pass(number: tf.Tensor) -> tf.data.Dataset:
        pass_seed = tf.stack([tf.constant(seed, tf.int64), number])
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=pass_seed)
        ordered = files.paths.batch(n).map(lambda paths, counts: (tf.gather(paths, order), tf.gather(counts, order))).unbatch()

        def permuted(block_number: tf.Tensor, block: tf.Tensor) -> tf.data.Dataset:
            block_seed = pass_seed * tf.constant([1, 1_000_003], tf.int64) + tf.stack([tf.constant(0, tf.int64), block_number + 1])
            return tf.data.Dataset.from_tensor_slices(tf.random.experimental.stateless_shuffle(block, seed=block_seed))

        return sharding.records(_Files(ordered, files.counts).records()).batch(buffer).enumerate().flat_map(permuted)

    return tf.data.Dataset.range(2**62).flat_map(one_pass)


def _training_pipeline(files: _Files, spec: ClipSpec, batch_size: int, training: Training, sharding: _Sharding) -> tf.data.Dataset:
    """Forever: this pipeline's share, shuffled per pass, decoded (a random candidate per
    segment), augmented, in full batches."""
    ds = _decoded_for_training(_passes(sharding.files(files), training, sharding), spec, training)
    return ds.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE)


def _eval_pipeline(files: _Files, spec: ClipSpec, batch_size: int, view: int | None, sharding: _Sharding) -> tf.data.Dataset:
    """Every example once, in manifest order (one shard after another), one view, the last batch partial."""
    mine = sharding.files(files)
    ds = mine.paths.flat_map(_checked_records)
    # A known length lets Keras see the end of an evaluation without running into it.
    ds = sharding.records(ds.apply(tf.data.experimental.assert_cardinality(mine.total)))
    ds = ds.map(eval_decoder(spec, view), num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, num_parallel_calls=AUTOTUNE)


def _service_pipeline(files: _Files, spec: ClipSpec, batch_size: int, training: Training, service: str) -> tf.data.Dataset:
    """Training input through tf.data service: workers read, shuffle, decode and augment one
    epoch, handing out shards dynamically (each file to one worker, so each clip once); this
    process repeats and batches. No file shuffle: the dispatcher decides which file goes where."""
    ds = files.records().shuffle(min(training.shuffle_buffer, files.total), seed=training.seed)
    ds = _decoded_for_training(ds, spec, dataclasses.replace(training, skip=0))
    ds = ds.apply(
        tf.data.experimental.service.distribute(tf.data.experimental.service.ShardingPolicy.DYNAMIC, service=service)
    )
    return ds.repeat().batch(batch_size, drop_remainder=True)


def make_dataset(
    data_dir: str,
    splits: str | Sequence[str],
    batch_size: int,
    *,
    training: bool,
    input_context: tf.distribute.InputContext | None = None,
    augment: float = 0.0,
    seed: int | None = None,
    shuffle_buffer: int = 512,
    deterministic: bool = False,
    manifest: manifest_lib.Manifest | None = None,
    data_service: str = "",
    view: int | None = None,
    skip: int = 0,
) -> tf.data.Dataset:
    """A dataset of (frames uint8 [batch, T, H, W, 3P], labels int32 [batch]) over one split or
    several (e.g. the training folds of a cross-validation run), read in the order given.

    batch_size is per input pipeline (with distribution: the per-replica batch size).
    Training repeats forever, drops the last partial batch, draws a candidate per segment and
    augments (strength `augment`: 0 off, 1 the full ranges); evaluation reads every example once,
    in manifest order, and takes the centre candidate, or candidate `view` of every segment.
    data_service="grpc://host:port" moves reading, shuffling, decoding and augmentation to
    tf.data service workers (training only); every example arrives once per epoch.
    skip (training): clips of the stream to pass over before the first, undecoded, with their
    seeds (a resumed run starts where the killed one stopped).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    manifest = manifest or manifest_lib.load(data_dir)
    files = _files(data_dir, manifest, manifest_lib.as_names(splits))
    sharding, draw = _Sharding.of(input_context, files), Training(augment, seed, shuffle_buffer, skip)
    if data_service:
        if not training:
            raise ValueError("data_service: only training input goes through tf.data service")
        if sharding.pipelines > 1:
            raise ValueError("data_service: one input pipeline per job is supported; use one host per job")
        return _service_pipeline(files, manifest.clip, batch_size, draw, data_service).prefetch(AUTOTUNE)
    if training:
        ds = _training_pipeline(files, manifest.clip, batch_size, draw, sharding)
    else:
        ds = _eval_pipeline(files, manifest.clip, batch_size, view, sharding)
    options = tf.data.Options()
    options.deterministic = deterministic or not training
    # We shard ourselves; tf.distribute's auto-sharding would shard a second time.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.prefetch(AUTOTUNE).with_options(options)
