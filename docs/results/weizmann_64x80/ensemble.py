"""Per-fold test (and validation) accuracy of each run's best checkpoint and of their average.

    python docs/results/weizmann_64x80/ensemble.py DATA_DIR RUN_DIR [RUN_DIR ...]   # RUN_DIR: a train.py --model_dir of folds
"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # the repository
import numpy as np, keras
from pipeline import manifest as mf
from models import evaluation, builder, recipes, trainer  # noqa: registers layers
data_dir, runs = sys.argv[1], sys.argv[2:]
m = mf.load(data_dir)
table = {}
for fold in range(m.num_folds):
    r = {}
    for role in ("validation", "test"):
        splits = getattr(m.roles(fold), role)
        probs = []
        for run in runs:
            model = keras.models.load_model(os.path.join(run, f"fold-{fold}", "convnet_gru", "best.keras"))
            y, p = evaluation.predict_split(model, data_dir, m, splits, 16)
            probs.append(p)
            r[f"{os.path.basename(run)}_{role}"] = float((p.argmax(1) == y).mean())
        r[f"ensemble_{role}"] = float((np.mean(probs, 0).argmax(1) == y).mean())
    print(fold, r, flush=True); table[fold] = r
for k in table[0]:
    v = [table[f][k] for f in table]; print(f"{k:28s} {np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}", v)
