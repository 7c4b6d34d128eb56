"""Classify videos with an export (SavedModel, LiteRT or ONNX): one label per file, or a timeline.

    python -m pipeline.predict --model=exported/cnn_gru/1 video.mp4 [more.mp4 ...] [--top_k=3] [--json]
    python -m pipeline.predict --model=exported/cnn_gru/1 --window=auto recording.mp4
        [--stride=SECONDS] [--threshold=0.5] [--output=windows.jsonl|.csv] [--plot=timeline.png]
    python -m pipeline.predict --model=exported/cnn_gru/1 rtsp://camera/stream   # live: a timeline

A timeline (pipeline.inference.windows, pipeline.inference.timeline) slides a window over one sequential decode of
the input; each window is sampled as prepare samples a clip of that duration (default: the median
duration of the training videos, which the export carries) and classified; windows of one class
merge into segments, printed as they close ("00:12.0-00:18.5 Run 0.91").

Each video (or window) goes through exactly what prepare does to it (`frames.read_encoded_clip`: decode,
sample, letterbox, JPEG at the training data's quality, by the ClipSpec the export carries) and into
the SavedModel's `classify_records` signature, which parses and decodes it with the training
pipeline's own code (LiteRT and ONNX: pipeline.inference.runtimes decodes it to the same pixels): no
train/serve skew. An unreadable video is reported and the others still run; the exit code is
non-zero if any failed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any, Callable

from absl import app, flags, logging

from pipeline import cli, export_asset
from pipeline.clip_spec import ClipSpec
from pipeline.inference import timeline

FLAGS = flags.FLAGS


def _define_flags() -> None:  # only when run as a program: the functions below are a library too
    flags.DEFINE_string("model", None, "An export: its version dir (EXPORT_DIR/<model>/<version>, a SavedModel, or "
                        "EXPORT_DIR/<model>-tflite|-onnx/<version>) or the .tflite or .onnx file in it; the format is read from it.")
    flags.DEFINE_alias("saved_model", "model")
    flags.DEFINE_integer("top_k", 3, "Classes shown per video (per window in --output rows).")
    flags.DEFINE_bool("json", False, "Print one JSON object per video (per segment with a timeline) instead of text.")
    flags.DEFINE_string("window", "", "A timeline instead of one label per file: window length in seconds, or 'auto' "
                        "(the median duration of the training videos, carried by the export). Live sources always get one.")
    flags.DEFINE_float("stride", 0.0, "Seconds from one window's start to the next (0: half the window).")
    flags.DEFINE_float("threshold", 0.5, "A window joins a segment when its top class reaches this probability.")
    flags.DEFINE_integer("min_windows", 2, "Fewer windows in a row make no segment (a window across two actions is "
                         "often taken for a third).")
    flags.DEFINE_string("output", "", "Write each window's top classes to this file: .csv, else JSON lines.")
    flags.DEFINE_string("plot", "", "Draw the timeline (probabilities over time, segments shaded) to this PNG.")
    flags.DEFINE_float("read_timeout", 10.0, "Live sources: give up after this many seconds without data.")
    flags.DEFINE_integer("batch_size", 8, "Windows per model call on a file (a live source: 1, to answer at once).")


def video_record(path: str, clip: ClipSpec) -> bytes:
    """The serialized record prepare would write for this video (label unknown: -1)."""
    from pipeline import frames, records

    return records.unlabelled(frames.read_encoded_clip((path, clip)), path)


def top_classes(probabilities, label_names: list[str], k: int) -> list[dict[str, Any]]:
    return [{"class_id": i, "class_name": label_names[i], "probability": float(probabilities[i])}
            for i in timeline.top_k(probabilities, k)]


def predict(model_path: str, paths: list[str], top_k: int) -> list[dict[str, Any]]:
    """One result per path: {'video', 'top': [...], 'seconds'} or {'video', 'error'}. model_path:
    an export of any format (pipeline.inference.runtimes)."""
    from pipeline import frames
    from pipeline.inference import runtimes

    classifier = runtimes.load(model_path)
    results = []
    for path in paths:
        start = time.perf_counter()
        try:
            clip = frames.read_encoded_clip((path, classifier.asset.clip))
        except (frames.VideoError, OSError) as e:
            results.append({"video": path, "error": str(e)})
            continue
        probs = classifier.probabilities([clip], path)[0]
        results.append({"video": path, "top": top_classes(probs, list(classifier.asset.label_names), top_k),
                        "seconds": time.perf_counter() - start})
    return results


@dataclasses.dataclass(frozen=True)
class TimelineSettings:
    window: float  # seconds
    stride: float
    threshold: float = 0.5
    min_windows: int = 2
    top_k: int = 3
    read_timeout: float = 10.0
    batch_size: int = 8
    reuse: bool = True  # a time step shared by windows goes through the front end once (when the export allows)


@dataclasses.dataclass
class Timeline:
    """What a timeline run gives: the scored windows, the segments, and what went wrong."""

    windows: list[timeline.Scored]
    segments: list[timeline.Segment]
    events: list[str]
    failed: bool


def run_timeline(model_path: str, path: str, settings: TimelineSettings, rows: timeline.RowWriter | None = None,
                 on_segment: Callable[[timeline.Segment], None] = lambda s: None) -> Timeline:
    """Classify `path` window by window with an export of any format; each segment goes to
    `on_segment` as it closes and each window to `rows`. A stall, an error or Ctrl-C ends the
    input early: the timeline so far is kept. VideoError when the input cannot be opened at all."""
    from pipeline import frames
    from pipeline.inference import runtimes, windows

    classifier = runtimes.load(model_path, windows=settings.reuse)
    asset = classifier.asset
    reader = windows.WindowReader(path, asset.clip, settings.window, settings.stride, settings.read_timeout)
    segmenter = timeline.Segmenter(asset.label_names, settings.threshold, settings.min_windows)
    scored: list[timeline.Scored] = []
    found: list[timeline.Segment] = []

    def closed(segment: timeline.Segment | None) -> None:
        if segment:
            found.append(segment)
            on_segment(segment)

    batch = 1 if frames.is_live(path) else settings.batch_size
    try:
        for chunk in timeline.chunks(reader, batch):
            probs = classifier.probabilities([w.clip for w in chunk], path)
            for w, p in zip(chunk, probs):
                scored.append(timeline.Scored(w.start, w.end, tuple(float(v) for v in p)))
                if rows is not None:
                    rows.write(scored[-1])
                closed(segmenter.add(scored[-1]))
    except KeyboardInterrupt:
        reader.events.append(f"{path}: interrupted")
    closed(segmenter.finish())
    return Timeline(scored, found, reader.events, reader.failed)


def timeline_settings(asset: export_asset.ExportAsset) -> TimelineSettings:
    """The timeline flags, with the window the export carries for 'auto' (or a live source)."""
    if FLAGS.window in ("", "auto"):
        if asset.clip_seconds <= 0:
            raise cli.CommandError(f"{FLAGS.model}: this export does not carry its training videos' duration (exported "
                                   "before it was recorded); give --window=SECONDS")
        window = asset.clip_seconds
    else:
        try:
            window = float(FLAGS.window)
        except ValueError:
            raise app.UsageError(f"--window: seconds or 'auto', not {FLAGS.window!r}") from None
    stride = FLAGS.stride or window / 2
    if min(window, stride, FLAGS.read_timeout, FLAGS.batch_size, FLAGS.min_windows) <= 0 or not 0 <= FLAGS.threshold <= 1:
        raise app.UsageError("--window, --stride, --read_timeout, --batch_size and --min_windows must be positive, --threshold in [0, 1]")
    return TimelineSettings(window, stride, FLAGS.threshold, FLAGS.min_windows, FLAGS.top_k, FLAGS.read_timeout, FLAGS.batch_size)


def timeline_main(path: str, asset: export_asset.ExportAsset, needs_tensorflow: bool) -> None:
    from pipeline.frames import VideoError

    settings = timeline_settings(asset)
    if FLAGS.plot and not FLAGS.plot.lower().endswith(".png"):
        raise app.UsageError(f"--plot: a .png file name, not {FLAGS.plot!r}")
    if needs_tensorflow:
        cli.tensorflow()
    show = (lambda s: print(json.dumps(s.to_dict(), ensure_ascii=False), flush=True)) if FLAGS.json else (
        lambda s: print(s.describe(), flush=True))
    rows_file = open(FLAGS.output, "w", newline="", encoding="utf-8") if FLAGS.output else None
    try:
        rows = timeline.RowWriter(rows_file, timeline.kind_of(FLAGS.output), asset.label_names, settings.top_k) if rows_file else None
        logging.info("%s: windows of %.2f s every %.2f s", path, settings.window, settings.stride)
        result = run_timeline(FLAGS.model, path, settings, rows, show)
    except (VideoError, export_asset.ExportError) as e:
        raise cli.CommandError(str(e)) from None
    finally:
        if rows_file:
            rows_file.close()
    for event in result.events:
        logging.warning("%s", event)
    if FLAGS.plot and result.windows:
        timeline.plot(result.windows, result.segments, asset.label_names, FLAGS.plot,
                      f"{path}: {settings.window:.2f} s windows every {settings.stride:.2f} s")
    logging.info("%s: %d windows, %d segments", path, len(result.windows), len(result.segments))
    if result.failed:
        raise cli.CommandError(f"{path}: stopped early; the timeline above covers the first "
                               f"{result.windows[-1].end if result.windows else 0:.1f} s")


def main(argv: list[str]) -> None:
    from pipeline.frames import is_live
    from pipeline.inference import runtimes

    paths = argv[1:]
    if not FLAGS.model or not paths:
        raise app.UsageError("usage: python -m pipeline.predict --model=EXPORT VIDEO [VIDEO ...]")
    try:
        version_dir, fmt, _ = runtimes.locate(FLAGS.model)
        asset = export_asset.read(version_dir)
    except export_asset.ExportError as e:
        raise cli.CommandError(str(e)) from None
    if FLAGS.window or any(is_live(p) for p in paths):
        if len(paths) != 1:
            raise app.UsageError("a timeline (--window, or a live source) takes one input")
        return timeline_main(paths[0], asset, fmt == "saved_model")
    if fmt == "saved_model":  # LiteRT and ONNX run without TensorFlow
        cli.tensorflow()
    try:
        results = predict(FLAGS.model, paths, FLAGS.top_k)
    except export_asset.ExportError as e:
        raise cli.CommandError(str(e)) from None
    for r in results:
        if "error" in r:
            print(f"predict: error: {r['error']}", file=sys.stderr)
        if FLAGS.json:
            print(json.dumps(r, ensure_ascii=False))
        elif "top" in r:
            print(r["video"])
            for t in r["top"]:
                print(f"  {t['probability']:6.3f}  {t['class_name']}")
    if any("error" in r for r in results):
        sys.exit(1)


if __name__ == "__main__":
    _define_flags()
    cli.run(main, "predict")
