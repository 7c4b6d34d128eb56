"""Latency of serving on this machine: predict per video, and the SavedModel per clip.

    python benchmarks/serving_latency.py [--model=cnn_gru] [--height=240 --width=320] VIDEO...

Builds the model (latency does not depend on trained weights), exports it with export's code to
a temporary dir, and times it. Prints one JSON object. Baselines measured in the same run: the
Keras model called through a compiled tf.function on the same frames (what the SavedModel
wraps), and decoding alone (what predict adds to the model call).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "cnn_gru", "Which model (models.kinds.MODEL_NAMES).")
flags.DEFINE_integer("num_frames", 10, "Clip length.")
flags.DEFINE_integer("height", 240, "Frame height.")
flags.DEFINE_integer("width", 320, "Frame width.")
flags.DEFINE_integer("repeats", 20, "Timed calls per figure (after one warm-up).")


def _median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> None:
    import tempfile

    import numpy as np
    import tensorflow as tf

    from models import build_model, serving
    from pipeline import frames, predict
    from pipeline.clip_spec import ClipSpec

    videos = argv[1:]
    if not videos:
        raise app.UsageError("give at least one video")
    model = build_model(FLAGS.model, num_frames=FLAGS.num_frames, height=FLAGS.height, width=FLAGS.width)
    saved = os.path.join(tempfile.mkdtemp(), "1")
    clip = ClipSpec(FLAGS.num_frames, FLAGS.height, FLAGS.width, 90)
    serving.export(model, saved, [f"class{i}" for i in range(12)], clip)
    loaded = tf.saved_model.load(saved)
    by_frames, by_records = loaded.signatures["serving_default"], loaded.signatures["classify_records"]
    compiled = tf.function(lambda x: model(x, training=False))
    frames_in = tf.constant(frames.read_clip(videos[0], clip.num_frames, clip.height, clip.width).frames[None])
    batch32 = tf.constant(np.repeat(frames_in.numpy(), 32, axis=0))
    record = tf.constant([predict.video_record(videos[0], clip)])
    n = FLAGS.repeats
    decode_only = statistics.median(
        _median_seconds(lambda v=v: frames.read_encoded_clip((v, clip)), max(3, n // 4)) for v in videos
    )
    per_video = statistics.median(
        _median_seconds(lambda v=v: by_records(records=tf.constant([predict.video_record(v, clip)])), max(3, n // 4)) for v in videos
    )
    figures = {
        "model": FLAGS.model,
        "machine_cpus": os.cpu_count(),
        "clip_shape": list(clip.model_input_shape()),
        "predict_seconds_per_video": per_video,
        "decode_only_seconds_per_video": decode_only,
        "saved_model_seconds_per_clip_batch1": _median_seconds(lambda: by_frames(frames=frames_in), n),
        "saved_model_seconds_per_clip_batch32": _median_seconds(lambda: by_frames(frames=batch32), max(3, n // 4)) / 32,
        "saved_model_records_seconds_per_clip_batch1": _median_seconds(lambda: by_records(records=record), n),
        "keras_seconds_per_clip_batch1": _median_seconds(lambda: compiled(frames_in), n),
    }
    figures["saved_model_vs_keras_batch1"] = figures["saved_model_seconds_per_clip_batch1"] / figures["keras_seconds_per_clip_batch1"]
    figures["predict_vs_decode_only"] = per_video / decode_only
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    app.run(main)
