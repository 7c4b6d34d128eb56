"""Built-in data, and night copies of real videos.

    python -m pipeline.synthetic --output_dir=DIR [--clips_per_class=N] [--seed=S] [--hard]
    python -m pipeline.synthetic --nightify=SRC --output_dir=DST   # a night copy of real videos
    python -m pipeline.synthetic --long_video=long.mp4 [--long_classes=Run,waving,boxing]
        # one video of several actions back to back, and long.mp4.segments.json: when each is

The work is in pipeline.sources (synthetic: the generated clips; nightify); this is the command.
"""

from __future__ import annotations

from absl import app, flags, logging

from pipeline import cli
from pipeline.sources import synthetic


def _long_video() -> None:
    FLAGS = flags.FLAGS
    try:
        actions = synthetic.generate_long(FLAGS.long_video, FLAGS.long_classes, FLAGS.clips_per_action, FLAGS.seed, FLAGS.hard)
    except (ValueError, OSError) as e:
        raise cli.CommandError(str(e)) from None
    for a in actions:
        logging.info("%6.1f-%6.1f s  %s", a.start, a.end, a.class_name)
    logging.info("wrote %s and %s.segments.json", FLAGS.long_video, FLAGS.long_video)


def _nightify() -> None:
    from pipeline.index import DatasetError
    from pipeline.sources import nightify

    FLAGS = flags.FLAGS
    try:
        night = nightify.Night(FLAGS.night_gain, FLAGS.night_gamma, FLAGS.night_blur, FLAGS.night_read_noise,
                               FLAGS.night_shot_noise, FLAGS.night_monochrome, FLAGS.seed)
        paths, problems = nightify.nightify_tree(FLAGS.nightify, FLAGS.output_dir, night)
    except (ValueError, DatasetError) as e:
        raise cli.CommandError(str(e)) from None
    for p in problems:
        logging.warning("skipped %s", p)
    logging.info("%d night videos under %s (settings in %s)", len(paths), FLAGS.output_dir, nightify.SETTINGS_FILE)
    if problems:
        raise cli.CommandError(f"{len(problems)} video(s) could not be read")


def main(argv: list[str]) -> None:
    FLAGS = flags.FLAGS
    if FLAGS.long_video:
        return _long_video()
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required (or --long_video)")
    if FLAGS.nightify:
        return _nightify()
    paths = synthetic.generate(FLAGS.output_dir, FLAGS.clips_per_class, FLAGS.num_actors, FLAGS.seed, FLAGS.hard)
    logging.info("%d videos under %s", len(paths), FLAGS.output_dir)


if __name__ == "__main__":  # flags only when run: prepare's flags share these names
    flags.DEFINE_string("output_dir", None, "Where to write the class folders.")
    flags.DEFINE_integer("clips_per_class", 24, "Videos per class.")
    flags.DEFINE_integer("num_actors", 6, "Actors per class (groups for --group_regex).")
    flags.DEFINE_integer("seed", 0, "Seed.")
    flags.DEFINE_bool("hard", False, "What makes real night video hard: small dim actors far from the camera, each with "
                      "their own size, speed and place; low light with glare; clutter and a passing light; camera "
                      "shake; strong sensor noise and hot pixels.")
    flags.DEFINE_string("nightify", None, "Instead of generating: write a darkened, noisy copy of this class-per-folder "
                        "tree of real videos to --output_dir (night conditions on real motion).")
    flags.DEFINE_float("night_gain", 0.25, "--nightify: exposure after the gamma curve, in (0, 1].")
    flags.DEFINE_float("night_gamma", 1.5, "--nightify: gamma (> 1 darkens mid-tones most).")
    flags.DEFINE_float("night_blur", 0.8, "--nightify: Gaussian blur sigma in pixels.")
    flags.DEFINE_float("night_read_noise", 4.0, "--nightify: sensor read noise std, in 8-bit levels, new every frame.")
    flags.DEFINE_float("night_shot_noise", 0.6, "--nightify: shot noise, std = this x sqrt(level).")
    flags.DEFINE_bool("night_monochrome", False, "--nightify: one grey channel, like an infrared camera.")
    flags.DEFINE_string("long_video", None, "Instead of a data set: write one video (.mp4) of several actions back to "
                        "back, for timelines, and beside it VIDEO.segments.json: each action's start, end and class.")
    flags.DEFINE_list("long_classes", list(synthetic.LONG_CLASSES), "--long_video: the actions, in order.")
    flags.DEFINE_integer("clips_per_action", 3, "--long_video: built-in clips (1 to 2.5 s each) per action.")
    cli.run(main, "synthetic")
