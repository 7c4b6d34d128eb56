"""Export a trained model's best checkpoint as a SavedModel, in TF Serving's versioned layout.

    python export.py --model_dir=runs/x --model=cnn_gru --export_dir=exported [--version=N]
    python export.py --model_dir=runs/x --model=best --export_dir=exported   # best test accuracy

Writes EXPORT_DIR/<model>/<version>/ (default: the next free version) so that TF Serving never
sees a half-written version: locally under a temporary name, then renamed; to a bucket (gs://,
which has no atomic rename) written locally, then uploaded with saved_model.pb last: without it
a directory is no SavedModel, so nothing loads a partial one. --model_dir may be a bucket too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from absl import app, flags, logging

from models import kinds
from pipeline import cli, lock, storage
from pipeline.clip_spec import ClipSpec

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "The --model_dir given to train.py.")
flags.DEFINE_string("model", "best", "A model name, or 'best': the highest test accuracy among trained models.")
flags.DEFINE_string("export_dir", None, "Where EXPORT_DIR/<model>/<version>/ goes.")
flags.DEFINE_integer("version", 0, "Version number (0: the next free one).")


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


def export_model(model_dir: str, model: str, export_dir: str, version: int = 0) -> str:
    """Export `model` ('best': the highest test accuracy) from model_dir to
    export_dir/<model>/<version>; returns that path. Either dir may be local or gs://.

    FileNotFoundError when there is nothing to export, FileExistsError for a taken version.
    """
    from models import trainer

    name = best_model(model_dir) if model == "best" else model
    run_dir = os.path.join(model_dir, name)
    checkpoint = os.path.join(run_dir, trainer.BEST)
    if not storage.exists(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no best checkpoint; train {name} first")
    base = os.path.join(export_dir, name)
    with lock.hold(base, "export"):  # one export at a time chooses and writes a version here
        return _export_version(run_dir, checkpoint, name, base, version)


def _export_version(run_dir: str, checkpoint: str, name: str, base: str, version: int) -> str:
    import keras

    from models import serving, trainer

    state = json.loads(storage.read_text(os.path.join(run_dir, trainer.STATE)))
    version = version or serving.next_version(base)
    final = os.path.join(base, str(version))
    if storage.exists(final):
        raise FileExistsError(f"{final} exists; choose another --version")
    model_obj = keras.models.load_model(checkpoint)
    clip = ClipSpec.from_dict(state["clip"]) if "clip" in state else _clip_of_old_run(state)
    write = lambda path: serving.export(model_obj, path, state["label_names"], clip, state.get("clip_seconds", 0.0))  # noqa: E731
    if storage.is_remote(final):
        with tempfile.TemporaryDirectory(prefix="export-") as local:
            write(os.path.join(local, "m"))
            storage.upload_tree(os.path.join(local, "m"), final, last="saved_model.pb")
    else:
        tmp = os.path.join(base, f".tmp-{version}")
        shutil.rmtree(tmp, ignore_errors=True)
        write(tmp)
        os.replace(tmp, final)
    logging.info("exported %s (best epoch %s) to %s", name, state.get("best_epoch"), storage.abspath(final))
    return storage.abspath(final)


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
    cli.tensorflow()
    try:
        print(export_model(FLAGS.model_dir, FLAGS.model, FLAGS.export_dir, FLAGS.version))
    except (FileNotFoundError, FileExistsError, lock.LockedError) as e:
        raise cli.CommandError(str(e)) from None


if __name__ == "__main__":
    cli.run(main, "export")
