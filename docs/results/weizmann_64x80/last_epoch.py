"""Test accuracy of each fold's last-epoch checkpoint against its best-validation one.

    python docs/results/weizmann_64x80/last_epoch.py DATA_DIR RUN_DIR
"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # the repository
import numpy as np, keras
from pipeline import manifest as mf
from models import evaluation, builder, recipes, trainer  # noqa: registers layers
data_dir, runs = sys.argv[1], sys.argv[2]
m = mf.load(data_dir)
out = {}
for fold in range(m.num_folds):
    d = os.path.join(runs, f"fold-{fold}", "convnet_gru")
    latest = sorted(f for f in os.listdir(d) if f.startswith("latest-"))[-1]
    r = {}
    for tag, f in (("best", "best.keras"), ("last", latest)):
        model = keras.models.load_model(os.path.join(d, f))
        for role in ("validation", "test"):
            splits = getattr(m.roles(fold), role)
            y, p = evaluation.predict_split(model, data_dir, m, splits, 16)
            pv = evaluation.predict_views(model, data_dir, m, splits, 16, p)
            r[f"{tag}_{role}"] = float((p.argmax(1) == y).mean()); r[f"{tag}_{role}_video"] = float((pv.argmax(1) == y).mean())
    print(fold, r, flush=True); out[fold] = r
for k in out[0]:
    v = [out[f][k] for f in out]; print(k, round(np.mean(v), 3), round(np.std(v, ddof=1), 3), v)
