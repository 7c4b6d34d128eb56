"""The selection criterion of the later rounds: each fold's mean validation accuracy over epochs
51-100 (every actor is validation once, 50 epochs each), beside the best validation, test and video
accuracy, from the runs' metrics.json; with two run dirs, the paired per-fold differences too.

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


def show(run_dir: str) -> dict[str, list[float]]:
    ms = folds(run_dir)
    table = {"late validation": [late(m) for m in ms], "best validation": [m["best_val_accuracy"] for m in ms],
             "test": [m["test_accuracy"] for m in ms], "video": [m["test_video_accuracy"] for m in ms]}
    table = {key: values for key, values in table.items() if None not in values}
    print(run_dir)
    for key, values in table.items():
        print_row(key, values)
    return table


def print_row(key: str, values: list[float], places: int = 2) -> None:
    """One figure per fold (or run): its mean ± sample sd, then each one's to `places` decimals."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    print(f"  {key:16s} {statistics.mean(values):.3f} ± {spread:.3f}  " + " ".join(f"{v:.{places}f}" for v in values))


def print_paired(label: str, first: list[float], second: list[float], unit: str = "folds") -> None:
    """The per-fold (or per-seed) differences second - first: mean ± sd, and on how many each way."""
    diff = [b - a for a, b in zip(first, second)]
    print(f"{label}: {statistics.mean(diff):+.3f} ± {statistics.stdev(diff):.3f}, "
          f"ahead on {sum(d > 1e-9 for d in diff)}, behind on {sum(d < -1e-9 for d in diff)} of {len(diff)} {unit}")


if __name__ == "__main__":
    runs = [show(d) for d in sys.argv[1:3]]
    for key in ("late validation", "test") if len(runs) == 2 else ():
        if key in runs[0] and key in runs[1] and len(runs[0][key]) == len(runs[1][key]):
            print_paired(f"second minus first, {key}", runs[0][key], runs[1][key])
