"""Prepare a class-per-folder video tree (or an index CSV) as TFRecord shards.

    python -m pipeline.prepare --data_dir=DIR --output_dir=OUT [flags]

Writes OUT/<split>-NNNNN-of-MMMMM.tfrecord and OUT/manifest.json. Run it again with the same
arguments after an interruption and it resumes.
"""

from __future__ import annotations

import os
import re

from absl import app, flags, logging

from pipeline import cli, index, lock
from pipeline.clip_spec import PREPARED, ClipSpec

# Decoding workers are spawned and re-import this module by name, so it must not import
# TensorFlow at import time (tests/test_cli.py checks it): `writer` (which does) is imported in _write().

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Class-per-folder video tree (folder name = class name).")
flags.DEFINE_string("index_csv", None, "CSV with columns path,label[,group][,split]; paths relative to --data_dir or the CSV's folder.")
flags.DEFINE_string("output_dir", None, "Where shards and manifest.json go.")
flags.DEFINE_list("label_names", None, "Class names in label-id order (default: sorted folder names).")
flags.DEFINE_integer("num_frames", 10, "Time steps per clip: the video is cut into this many equal segments.")
flags.DEFINE_integer("candidates", PREPARED.candidates, "Frames kept per segment (odd): training draws one at random "
                     "each epoch, evaluation and serving take the centre one (TSN's segment sampling); 1: the original's.")
flags.DEFINE_bool("flow", PREPARED.flow, "Also store the optical flow from each kept frame to its partner (OpenCV DIS, "
                  "as two grey images, TSN's flow images) for --frame_input=...flow; implies --with_next; --noflow: frames only.")
flags.DEFINE_bool("with_next", False, "Also keep each kept frame's partner, --next_gap frames later, for short-term "
                  "motion (--frame_input=next_diff: TSN's RGB difference).")
flags.DEFINE_integer("next_gap", PREPARED.next_gap, "Frames from each kept frame to its partner (--with_next, --flow): "
                     "1 the next frame (TSN's); 2 doubles the motion the flow sees against about the same noise (ahead at night on validation).")
flags.DEFINE_integer("flow_average", PREPARED.flow_average, "Frames averaged at each end of the flow (odd; --flow): 3 "
                     "averages out sensor noise new in every frame (it halves DIS's error on a night copy's still background); "
                     "1: the flow between the two frames alone.")
flags.DEFINE_integer("frame_average", PREPARED.frame_average, "Frames averaged into each stored frame and partner (odd): "
                     "3 cuts sensor noise new in every frame by the square root of 3 (for very dark footage), a moving edge "
                     "blurs over 3 frames; 1: each frame as decoded.")
flags.DEFINE_integer("height", 240, "Frame height after letterboxing.")
flags.DEFINE_integer("width", 320, "Frame width after letterboxing.")
flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of stored frames (1-100).")
flags.DEFINE_float("shard_size_mb", 64.0, "Target shard size in MiB.")
flags.DEFINE_list("split_fractions", ["0.7", "0.15", "0.15"], "train,validation,test fractions.")
flags.DEFINE_integer("num_folds", 0, "Write K folds by --group_regex group for cross-validation (train.py --folds) "
                     "instead of the three splits; with one group per actor, K = actors is leave-one-actor-out.")
flags.DEFINE_integer("seed", 0, "Seed of the split and of the order of clips within a split.")
flags.DEFINE_string("group_regex", "", "Regex whose first group, on the file name, names a group kept in one split (e.g. an actor).")
flags.DEFINE_integer("num_workers", os.cpu_count() or 1, "Decoding processes.")
flags.DEFINE_float("video_timeout", 300.0, "Seconds one video may take before it is skipped.")
flags.DEFINE_bool("overwrite", False, "Replace the output of an earlier run with other inputs or settings.")
flags.DEFINE_string("runner", "", "Run the per-video step on Apache Beam with this runner (DirectRunner, DataflowRunner, "
                    "FlinkRunner, ...; needs `pip install .[beam]`). Empty: this machine's --num_workers processes.")
flags.DEFINE_string("beam_options", "", "Beam pipeline options as one string, e.g. \"--project=P --region=R --temp_location=gs://b/tmp\".")


def _is_group_regex(value: str) -> bool:
    try:
        return not value or re.compile(value).groups >= 1
    except re.error:
        return False


flags.register_validator("group_regex", _is_group_regex, message="not a regular expression with a capturing group")


def _videos() -> list[index.Video]:
    if FLAGS.index_csv:
        return index.index_csv(FLAGS.index_csv, FLAGS.data_dir)
    if not FLAGS.data_dir:
        raise app.UsageError("--data_dir or --index_csv is required")
    return index.index_tree(FLAGS.data_dir)


def _engine():
    """None (the local writer's processes), or a Beam engine for --runner."""
    if not FLAGS.runner:
        if FLAGS.beam_options:
            raise app.UsageError("--beam_options needs --runner")
        return None
    from pipeline.writing.beam_engine import BeamEngine

    return BeamEngine(FLAGS.runner, FLAGS.beam_options)


def _clip() -> ClipSpec:
    paired = FLAGS.with_next or FLAGS.flow
    try:
        return ClipSpec(
            num_frames=FLAGS.num_frames, height=FLAGS.height, width=FLAGS.width, jpeg_quality=FLAGS.jpeg_quality,
            candidates=FLAGS.candidates, with_next=paired, flow=FLAGS.flow,
            next_gap=_only_with("next_gap", paired), flow_average=_only_with("flow_average", FLAGS.flow),
            frame_average=FLAGS.frame_average,
        )
    except ValueError as e:
        raise app.UsageError(f"--{e}") from None


def _only_with(name: str, applies: bool) -> int:
    """A setting whose default holds only for clips that use it (the gap for paired clips, the
    averaging for flow): the flag's value where it applies or was given (ClipSpec refuses one given
    where it does not apply), else 1, what a clip without them holds."""
    return FLAGS[name].value if applies or FLAGS[name].present else 1


def _split_fractions() -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in FLAGS.split_fractions)
    except ValueError:
        raise app.UsageError(f"--split_fractions: three numbers, got {','.join(FLAGS.split_fractions)}") from None


def _split(videos: list[index.Video]) -> dict[str, list[index.Video]]:
    """The videos of each split (or fold), before any of them is decoded."""
    videos = index.assign_groups(videos, FLAGS.group_regex)
    if FLAGS.num_folds:
        return index.split_folds(videos, FLAGS.num_folds, FLAGS.seed)
    return index.split_videos(videos, _split_fractions(), FLAGS.seed)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required")
    clip = _clip()
    try:
        label_names, videos = index.resolve_labels(_videos(), FLAGS.label_names)
        by_split = _split(videos)
    except (index.DatasetError, ValueError) as e:
        raise cli.CommandError(str(e)) from None
    try:
        engine = _engine()
    except ImportError as e:
        raise cli.CommandError(str(e)) from None
    logging.info("%d videos in %d classes: %s", len(videos), len(label_names), ", ".join(label_names))
    try:
        with lock.hold(FLAGS.output_dir, "prepare"):  # before TensorFlow loads: a second run is refused at once
            _write(clip, label_names, by_split, engine)
    except lock.LockedError as e:
        raise cli.CommandError(str(e)) from None
    logging.info("done: %s", os.path.join(FLAGS.output_dir, "manifest.json"))


def _write(clip: ClipSpec, label_names: list[str], by_split: dict[str, list[index.Video]], engine) -> None:
    cli.tensorflow()
    from pipeline.manifest import ManifestError
    from pipeline.writing import writer

    try:
        settings = writer.Settings(
            clip=clip, shard_size_mb=FLAGS.shard_size_mb, split_fractions=_split_fractions(),
            num_folds=FLAGS.num_folds, seed=FLAGS.seed, group_regex=FLAGS.group_regex, video_timeout=FLAGS.video_timeout,
        )
        writer.write_dataset(
            by_split, label_names, FLAGS.output_dir, settings, FLAGS.num_workers, FLAGS.overwrite, FLAGS.data_dir or "",
            engine=engine,
        )
    except (writer.OutputDirError, ManifestError, ValueError) as e:
        raise cli.CommandError(str(e)) from None


if __name__ == "__main__":
    cli.run(main, "prepare")
