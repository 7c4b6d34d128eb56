"""Export a trained model's best checkpoint: a SavedModel in TF Serving's versioned layout, or a
LiteRT or ONNX file for small devices and other runtimes.

    python export.py --model_dir=runs/x --model=cnn_gru --export_dir=exported [--version=N]
    python export.py --model_dir=runs/x --model=best --export_dir=exported   # best test accuracy
    python export.py --model_dir=runs/x --model=cnn_gru --export_dir=exported --format=tflite --quantize=int8
    python export.py --model_dir=runs/x --model=cnn_gru --export_dir=exported --format=onnx

Writes EXPORT_DIR/<model>/<version>/ (a SavedModel), EXPORT_DIR/<model>-tflite[-float16|-int8]/
<version>/model.tflite or EXPORT_DIR/<model>-onnx/<version>/model.onnx, each version dir with
assets.extra/preprocessing.json (how a video becomes the model's input; pipeline.predict reads it,
and the format from the path). int8 calibrates on clips of the run's own training split
(its data dir, or --data_dir). A version (default: the next free one) is written so that TF Serving never
sees a half-written version: locally under a temporary name, then renamed; to a bucket (gs://,
which has no atomic rename) written locally, then uploaded with its model file (saved_model.pb,
model.tflite, model.onnx) last: without it a directory is no export, so nothing loads a partial one. --model_dir may be a bucket too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

from absl import app, flags, logging

from models import kinds
from pipeline import cli, export_asset, lock, storage
from pipeline.clip_spec import ClipSpec
from pipeline.inference import runtimes
from pipeline.manifest import ManifestError

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "The --model_dir given to train.py.")
flags.DEFINE_string("model", "best", "A model name, or 'best': the highest test accuracy among trained models.")
flags.DEFINE_string("export_dir", None, "Where EXPORT_DIR/<model>/<version>/ goes.")
flags.DEFINE_integer("version", 0, "Version number (0: the next free one).")
flags.DEFINE_enum("format", "saved_model", list(runtimes.FORMATS), "What to write: a SavedModel (TF Serving), "
                  "a LiteRT flatbuffer (small devices) or an ONNX graph (onnxruntime, TensorRT).")
flags.DEFINE_enum("quantize", "none", list(runtimes.QUANTIZATIONS), "--format=tflite: float16 weights, or int8 weights and "
                  "activations calibrated on training clips.")
flags.DEFINE_string("data_dir", None, "--quantize=int8: the prepared data whose training split calibrates it "
                    "(default: the data dir the run trained on).")
flags.DEFINE_integer("calibration_clips", 300, "--quantize=int8: training clips to calibrate on.")


@dataclasses.dataclass(frozen=True)
class Format:
    """What to write: the format, its quantization (LiteRT), and the int8 calibration data."""

    name: str = "saved_model"
    quantize: str = "none"
    data_dir: str | None = None
    calibration_clips: int = 300

    def __post_init__(self) -> None:
        if self.name not in runtimes.FORMATS or self.quantize not in runtimes.QUANTIZATIONS:
            raise ValueError(f"format {self.name!r}, quantize {self.quantize!r}: choose from {runtimes.FORMATS} and {runtimes.QUANTIZATIONS}")
        if self.quantize != "none" and self.name != "tflite":
            raise ValueError(f"--quantize={self.quantize} is for --format=tflite")

    def base_name(self, model: str) -> str:
        """EXPORT_DIR/<this>/<version>: the model's name, with the format unless a SavedModel."""
        if self.name == "saved_model":
            return model
        return "-".join([model, self.name] + ([self.quantize] if self.quantize != "none" else []))

    @property
    def model_file(self) -> str:
        """The file a version dir holds (the SavedModel's saved_model.pb)."""
        return runtimes.MODEL_FILES.get(self.name, "saved_model.pb")


def best_model(model_dir: str) -> str:
    """The trained model in model_dir with the highest test accuracy."""
    from models import MODEL_NAMES, experiment

    scores = {}
    for name in MODEL_NAMES:
        result = experiment.load_result(os.path.join(model_dir, name))
        if result is not None:
            scores[name] = result["test_accuracy"]
    if not scores:
        raise FileNotFoundError(f"{model_dir}: no <model>/metrics.json; train a model first")
    return max(scores, key=scores.get)


def export_model(model_dir: str, model: str, export_dir: str, version: int = 0, fmt: Format = Format()) -> str:
    """Export `model` ('best': the highest test accuracy) from model_dir to
    export_dir/<model>[-format]/<version>; returns that path. Either dir may be local or gs://.

    FileNotFoundError when there is nothing to export, FileExistsError for a taken version.
    """
    from models import trainer

    name = best_model(model_dir) if model == "best" else model
    run_dir = os.path.join(model_dir, name)
    checkpoint = os.path.join(run_dir, trainer.BEST)
    if not storage.exists(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no best checkpoint; train {name} first")
    base = os.path.join(export_dir, fmt.base_name(name))
    with lock.hold(base, "export"):  # one export at a time chooses and writes a version here
        return _export_version(run_dir, checkpoint, name, base, version, fmt)


def _export_version(run_dir: str, checkpoint: str, name: str, base: str, version: int, fmt: Format) -> str:
    import keras

    from models import serving, trainer

    state = json.loads(storage.read_text(os.path.join(run_dir, trainer.STATE)))
    version = version or serving.next_version(base)
    final = os.path.join(base, str(version))
    if storage.exists(final):
        raise FileExistsError(f"{final} exists; choose another --version")
    model_obj = keras.models.load_model(checkpoint)
    clip = ClipSpec.from_dict(state["clip"]) if "clip" in state else _clip_of_old_run(state)
    asset = export_asset.ExportAsset(clip, tuple(state["label_names"]), state.get("clip_seconds", 0.0))
    if fmt.name == "saved_model":
        write = lambda path: serving.export(model_obj, path, asset.label_names, clip, asset.clip_seconds)  # noqa: E731
    else:
        write = lambda path: _write_file_export(model_obj, path, asset, fmt, run_dir)  # noqa: E731
    if storage.is_remote(final):
        with tempfile.TemporaryDirectory(prefix="export-") as local:
            write(os.path.join(local, "m"))
            storage.upload_tree(os.path.join(local, "m"), final, last=fmt.model_file)
    else:
        tmp = os.path.join(base, f".tmp-{version}")
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        os.replace(tmp, final)
    logging.info("exported %s (best epoch %s) to %s", name, state.get("best_epoch"), storage.abspath(final))
    return storage.abspath(final)


def _write_file_export(model, path: str, asset: export_asset.ExportAsset, fmt: Format, run_dir: str) -> None:
    """A LiteRT or ONNX version dir: the model file and the preprocessing record."""
    from models import converters

    if fmt.name == "onnx":
        data = converters.to_onnx(model)
    else:
        clips = (lambda: _calibration_clips(run_dir, fmt)) if fmt.quantize == "int8" else None
        data = converters.to_tflite(model, fmt.quantize, clips)
    os.makedirs(path)
    with open(os.path.join(path, fmt.model_file), "wb") as f:
        f.write(data)
    export_asset.write(path, asset)


def _calibration_clips(run_dir: str, fmt: Format):
    """uint8 clips [1, T, H, W, 3P] of the run's training split (centre view, no augmentation)."""
    from models import experiment
    from pipeline import make_dataset
    from pipeline import manifest as manifest_lib

    metrics = experiment.load_result(run_dir) or {}
    data_dir = fmt.data_dir or metrics.get("config", {}).get("data_dir")
    if not data_dir:
        raise FileNotFoundError(f"{run_dir}: no metrics.json naming the data dir it trained on; give --data_dir for int8")
    manifest = manifest_lib.load(data_dir)
    train = manifest.roles(metrics.get("fold")).train
    dataset = make_dataset(data_dir, train, 1, training=False, manifest=manifest).take(fmt.calibration_clips)
    for frames, _ in dataset:
        yield frames.numpy()


def _clip_of_old_run(state: dict) -> "ClipSpec":
    """A run trained before the state recorded its ClipSpec: frames of [T, H, W, 3]."""
    t, h, w, _ = state["input_shape"]
    return ClipSpec(t, h, w, state.get("jpeg_quality", 90))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise app.UsageError("--model_dir and --export_dir are required")
    if not storage.isdir(FLAGS.model_dir):
        raise cli.CommandError(f"{FLAGS.model_dir}: no such directory; give the --model_dir that train.py wrote")
    if FLAGS.model != "best" and FLAGS.model not in kinds.MODEL_NAMES:
        raise app.UsageError(f"--model: unknown {FLAGS.model!r}; choose one of {', '.join(kinds.MODEL_NAMES)} or best")
    try:
        fmt = Format(FLAGS.format, FLAGS.quantize, FLAGS.data_dir, FLAGS.calibration_clips)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    cli.tensorflow()
    try:
        print(export_model(FLAGS.model_dir, FLAGS.model, FLAGS.export_dir, FLAGS.version, fmt))
    except (FileNotFoundError, FileExistsError, lock.LockedError, ManifestError) as e:
        raise cli.CommandError(str(e)) from None


if __name__ == "__main__":
    cli.run(main, "export")
