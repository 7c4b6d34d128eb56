"""Every export format of every trained model, checked in its own runtime on the test split:
class agreement with the SavedModel, accuracy, file size and CPU latency at batch 1.

    python benchmarks/export_formats.py --model_dir=runs/demo/models   # the demo's trained models
    python benchmarks/export_formats.py --size=small                   # CI: cnn_gru, one epoch, tiny clips

Formats: the SavedModel (TensorFlow, serving_default on frames), LiteRT float32, float16 and int8
(ai-edge-litert's interpreter; int8 calibrated on up to 300 training clips), ONNX (onnxruntime, CPU).
Latency: the median of one clip at a time over up to 40 test clips after 3 warm-up calls, frames
already decoded, so it is the model's own time; all in this process on the same clips, so the
ratios against the SavedModel are the figures to read. Goals: float exports agree with the
SavedModel on >= 99 % of clips; int8 accuracy within 0.02 of float.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

import common
import numpy as np

FORMATS = (("tflite", "none"), ("tflite", "float16"), ("tflite", "int8"), ("onnx", "none"))


def arg(name: str, default: str = "") -> str:
    return next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith(f"--{name}=")), default)


def test_clips(data_dir: str, fold):
    """(encoded clips, labels) of the test split, read from its shards."""
    import tensorflow as tf

    from pipeline import manifest as manifest_lib
    from pipeline import records
    from pipeline.frames import EncodedClip

    m = manifest_lib.load(data_dir)
    splits = m.roles(fold).test
    raw = list(tf.data.TFRecordDataset(manifest_lib.shard_paths(data_dir, m, splits)).as_numpy_iterator())
    parsed = records.parse(tf.constant(raw), m.clip.stored_frames)
    clips = [EncodedClip(tuple(bytes(j) for j in parsed[records.FRAMES][i].numpy()), (), 0) for i in range(len(raw))]
    return clips, parsed[records.LABEL].numpy()


def latency_ms(run, frames: list[np.ndarray]) -> float:
    for f in frames[:3]:
        run(f)
    times = []
    for f in frames:
        start = time.perf_counter()
        run(f)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(path) for f in files)


def measure_model(model_dir: str, name: str, out_dir: str) -> dict:
    import tensorflow as tf

    import export
    from pipeline.inference import runtimes

    run_dir = os.path.join(model_dir, name)
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    clips, labels = test_clips(metrics["config"]["data_dir"], metrics.get("fold"))
    saved = export.export_model(model_dir, name, out_dir)
    spec = runtimes.load(saved).asset.clip
    frames = [runtimes.centre_view(c.jpegs, spec) for c in clips]
    serve = tf.saved_model.load(saved).signatures["serving_default"]
    reference = np.concatenate([serve(frames=tf.constant(np.stack(frames[i:i + 16])))["probabilities"].numpy()
                                for i in range(0, len(frames), 16)])
    timed = frames[:40]
    rows = {"saved_model": {"bytes": dir_bytes(saved), "accuracy": float((reference.argmax(1) == labels).mean()),
                            "agreement": 1.0, "latency_ms": latency_ms(lambda f: serve(frames=tf.constant(f[None])), timed)}}
    for fmt_name, quantize in FORMATS:
        fmt = export.Format(fmt_name, quantize)
        path = export.export_model(model_dir, name, out_dir, fmt=fmt)
        classifier = runtimes.load(path)
        if fmt_name == "tflite":
            probs, run = np.stack([classifier.run(f) for f in frames]), classifier.run
        else:
            probs, run = classifier.run(np.stack(frames)), lambda f: classifier.run(f[None])
        model_file = os.path.join(path, fmt.model_file)
        rows[fmt.base_name(name)[len(name) + 1:]] = {
            "bytes": os.path.getsize(model_file), "accuracy": float((probs.argmax(1) == labels).mean()),
            "agreement": float((probs.argmax(1) == reference.argmax(1)).mean()),
            "max_abs_difference": float(np.abs(probs - reference).max()), "latency_ms": latency_ms(run, timed),
        }
    for row in rows.values():
        row["latency_vs_saved_model"] = row["latency_ms"] / rows["saved_model"]["latency_ms"]
    return {"test_clips": len(clips), "formats": rows}


def small_model_dir(tmp: str) -> str:
    """CI: cnn_gru trained one epoch on tiny rendered clips, evaluated like train.py does."""
    import tensorflow as tf

    from models import experiment, trainer

    data = os.path.join(tmp, "data")
    manifest = common.write_shards(data, 48, num_frames=4, height=30, width=40, num_shards=2, distinct=12)
    config = trainer.TrainConfig(data_dir=data, model_dir=os.path.join(tmp, "models"), epochs=1, batch_size=8, recipe="paper")
    experiment.train_and_evaluate("cnn_gru", config, tf.distribute.get_strategy(), manifest)
    return config.model_dir


def main() -> None:
    size = common.size_arg("full")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = arg("model_dir") or (small_model_dir(tmp) if size == "small" else "runs/demo/models")
        names = sorted(n for n in os.listdir(model_dir) if os.path.exists(os.path.join(model_dir, n, "metrics.json")))
        results = {name: measure_model(model_dir, name, os.path.join(tmp, "exported")) for name in names}
    common.report({"size": size, "model_dir": model_dir, "models": results, "goals": {"float_agreement": 0.99, "int8_accuracy_drop": 0.02}})


if __name__ == "__main__":
    main()
