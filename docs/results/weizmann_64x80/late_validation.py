"""The selection criterion of the later rounds: each fold's mean validation accuracy over epochs
51-100 (every actor is validation once, 50 epochs each), beside the best validation, test and video
accuracy, from the runs' metrics.json; with two run dirs, the paired per-fold difference too.

    python docs/results/weizmann_64x80/late_validation.py RUN_DIR [OTHER_RUN_DIR]
"""
import glob
import json
import os
import statistics
import sys


def folds(run_dir: str) -> list[dict]:
    paths = sorted(glob.glob(os.path.join(run_dir, "fold-*", "*", "metrics.json")))
    if not paths:
        sys.exit(f"{run_dir}: no fold-*/MODEL/metrics.json")
    return [json.load(open(p)) for p in paths]


def late(m: dict) -> float | None:
    """None for a --fit_validation run: it trained on its validation fold."""
    if m["config"].get("fit_validation"):
        return None
    return statistics.mean(h["val_accuracy"] for h in m["history"] if 51 <= h["epoch"] <= 100)


def show(run_dir: str) -> list[float]:
    ms = folds(run_dir)
    lates = [late(m) for m in ms]
    print(run_dir)
    for key, values in (("late validation", lates), ("best validation", [m["best_val_accuracy"] for m in ms]),
                        ("test", [m["test_accuracy"] for m in ms]), ("video", [m["test_video_accuracy"] for m in ms])):
        if None in values:
            continue
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {key:16s} {statistics.mean(values):.3f} ± {spread:.3f}  " + " ".join(f"{v:.2f}" for v in values))
    return lates


if __name__ == "__main__":
    runs = [show(d) for d in sys.argv[1:3]]
    if len(runs) == 2:
        diff = [b - a for a, b in zip(*runs)]
        print(f"second minus first, late validation: {statistics.mean(diff):+.3f} ± {statistics.stdev(diff):.3f}, "
              f"ahead on {sum(d > 0 for d in diff)} of {len(diff)} folds")
