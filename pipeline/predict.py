"""Classify videos with an exported SavedModel.

    python -m pipeline.predict --saved_model=exported/cnn_gru/1 video.mp4 [more.mp4 ...] [--top_k=3] [--json]

Each video goes through exactly what prepare does to it (`frames.read_encoded_clip`: decode,
sample, letterbox, JPEG at the training data's quality, by the ClipSpec the export carries) and into the SavedModel's
`classify_records` signature, which parses and decodes it with the training pipeline's own code:
no train/serve skew. An unreadable video is reported and the others still run; the exit code is
non-zero if any failed.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from absl import app, flags

from pipeline import cli, export_asset
from pipeline.clip_spec import ClipSpec

FLAGS = flags.FLAGS


def _define_flags() -> None:  # only when run as a program: the functions below are a library too
    flags.DEFINE_string("saved_model", None, "An exported version dir: EXPORT_DIR/<model>/<version>.")
    flags.DEFINE_integer("top_k", 3, "Classes shown per video.")
    flags.DEFINE_bool("json", False, "Print one JSON object per video instead of text.")


def video_record(path: str, clip: ClipSpec) -> bytes:
    """The serialized record prepare would write for this video (label unknown: -1)."""
    from pipeline import frames, records

    encoded = frames.read_encoded_clip((path, clip))
    return records.encode(encoded.jpegs, encoded.indices, encoded.frames_decoded, -1, "", path)


def top_classes(probabilities, label_names: list[str], k: int) -> list[dict[str, Any]]:
    order = sorted(range(len(label_names)), key=lambda i: -float(probabilities[i]))[:k]
    return [{"class_id": i, "class_name": label_names[i], "probability": float(probabilities[i])} for i in order]


def predict(saved_model_dir: str, paths: list[str], top_k: int) -> list[dict[str, Any]]:
    """One result per path: {'video', 'top': [...], 'seconds'} or {'video', 'error'}."""
    import tensorflow as tf

    from pipeline.frames import VideoError

    asset = export_asset.read(saved_model_dir)
    classify = tf.saved_model.load(saved_model_dir).signatures["classify_records"]
    results = []
    for path in paths:
        start = time.perf_counter()
        try:
            record = video_record(path, asset.clip)
        except (VideoError, OSError) as e:
            results.append({"video": path, "error": str(e)})
            continue
        probs = classify(records=tf.constant([record]))["probabilities"].numpy()[0]
        results.append({"video": path, "top": top_classes(probs, list(asset.label_names), top_k), "seconds": time.perf_counter() - start})
    return results


def main(argv: list[str]) -> None:
    paths = argv[1:]
    if not FLAGS.saved_model or not paths:
        raise app.UsageError("usage: python -m pipeline.predict --saved_model=DIR VIDEO [VIDEO ...]")
    try:
        export_asset.read(FLAGS.saved_model)
    except export_asset.ExportError as e:
        raise cli.CommandError(str(e)) from None
    cli.tensorflow()
    results = predict(FLAGS.saved_model, paths, FLAGS.top_k)
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
