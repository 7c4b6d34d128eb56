"""Test-time averaging judged on validation: each fold's last-epoch model (latest-0100.keras, so no
epoch was chosen on the fold it is scored on) on its validation fold, the centre view's accuracy
against the K views' averaged probabilities (what the reports call video accuracy).

    python docs/results/weizmann_64x80/views_validation.py DATA_DIR RUN_DIR [MODEL]

RUN_DIR: a cross-validation run's model dir with its checkpoints (train.py --model_dir; not the
records in this folder, which keep metrics only). Not for --fit_validation runs (they trained on
the validation fold).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "..")]

import keras  # noqa: E402

from late_validation import print_paired, print_row  # noqa: E402
from models import builder, evaluation, recipes  # noqa: E402, F401  (builder, recipes: the saved layers and loss)
from pipeline import manifest as manifest_lib  # noqa: E402


def main(data_dir: str, run_dir: str, model_name: str = "convnet_gru") -> None:
    manifest = manifest_lib.load(data_dir)
    centre, averaged = [], []
    for fold in range(manifest.num_folds):
        model = keras.models.load_model(os.path.join(run_dir, f"fold-{fold}", model_name, "latest-0100.keras"))
        validation = manifest.roles(fold).validation
        labels, probs = evaluation.predict_split(model, data_dir, manifest, validation, batch_size=8)
        views = evaluation.predict_views(model, data_dir, manifest, validation, batch_size=8, centre=probs)
        centre.append(evaluation.accuracy(labels, probs))
        averaged.append(evaluation.accuracy(labels, views))
    print_row("centre view", centre)
    print_row("K views averaged", averaged)
    print_paired("averaged minus centre", centre, averaged)


if __name__ == "__main__":
    main(*sys.argv[1:])
