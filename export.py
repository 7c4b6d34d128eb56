"""Export a trained model's best checkpoint as a SavedModel, in TF Serving's versioned layout.

    python export.py --model_dir=runs/x --model=cnn_gru --export_dir=exported [--version=N]
    python export.py --model_dir=runs/x --model=best --export_dir=exported   # best test accuracy

Writes EXPORT_DIR/<model>/<version>/ (default: the next free version), under a temporary name
first, so TF Serving never sees a half-written version.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "The --model_dir given to train.py.")
flags.DEFINE_string("model", "best", "A model name, or 'best': the highest test accuracy among trained models.")
flags.DEFINE_string("export_dir", None, "Where EXPORT_DIR/<model>/<version>/ goes.")
flags.DEFINE_integer("version", 0, "Version number (0: the next free one).")


def best_model(model_dir: str) -> str:
    """The trained model in model_dir with the highest test accuracy."""
    from models import MODEL_NAMES

    scores = {}
    for name in MODEL_NAMES:
        path = os.path.join(model_dir, name, "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                scores[name] = json.load(f)["test_accuracy"]
    if not scores:
        raise FileNotFoundError(f"{model_dir}: no <model>/metrics.json; train a model first")
    return max(scores, key=scores.get)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.model_dir or not FLAGS.export_dir:
        raise app.UsageError("--model_dir and --export_dir are required")
    import keras

    from models import serving, trainer

    try:
        name = best_model(FLAGS.model_dir) if FLAGS.model == "best" else FLAGS.model
        run_dir = os.path.join(FLAGS.model_dir, name)
        checkpoint = os.path.join(run_dir, trainer.BEST)
        if not os.path.exists(checkpoint):
            raise FileNotFoundError(f"{checkpoint}: no best checkpoint; train {name} first")
        with open(os.path.join(run_dir, trainer.STATE)) as f:
            state = json.load(f)
    except FileNotFoundError as e:
        sys.exit(f"export: error: {e}")
    base = os.path.join(FLAGS.export_dir, name)
    version = FLAGS.version or serving.next_version(base)
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        sys.exit(f"export: error: {final} exists; choose another --version")
    tmp = os.path.join(base, f".tmp-{version}")
    shutil.rmtree(tmp, ignore_errors=True)
    model = keras.models.load_model(checkpoint)
    serving.export(model, tmp, state["label_names"], state.get("jpeg_quality", 90))
    os.replace(tmp, final)
    logging.info("exported %s (best epoch %s) to %s", name, state.get("best_epoch"), os.path.abspath(final))
    print(os.path.abspath(final))


if __name__ == "__main__":
    app.run(main)
