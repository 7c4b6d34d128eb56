"""The views on the hard built-in data over seeds: per view, each run's test accuracy, best
validation and late validation (the mean over epochs 21-40, the figure settings are chosen by),
then their mean ± sample sd over the runs, from the runs' metrics.json.

    python docs/results/hard_96x128_seeds/seeds.py VIEW=RUN_DIR[,RUN_DIR...] [VIEW=...]

RUN_DIR is a train.py --model_dir of the default model: its convnet_gru/metrics.json is read.
"""
import json
import os
import statistics
import sys

FIGURES = ("test", "best val", "late val")


def run_figures(run_dir: str) -> dict[str, float]:
    path = os.path.join(run_dir, "convnet_gru", "metrics.json")
    if not os.path.exists(path):
        sys.exit(f"{path}: not found")
    m = json.load(open(path))
    late = [h["val_accuracy"] for h in m["history"] if 21 <= h["epoch"] <= 40]
    if len(late) != 20:
        sys.exit(f"{path}: {len(late)} of epochs 21-40 in its history, not 20")
    return {"test": m["test_accuracy"], "best val": m["best_val_accuracy"], "late val": statistics.mean(late),
            "seed": m["config"]["seed"]}


def main(args: list[str]) -> None:
    for arg in args:
        view, _, dirs = arg.partition("=")
        runs = [run_figures(d) for d in dirs.split(",")]
        print(f"{view} (seeds {', '.join(str(r['seed']) for r in runs)})")
        for key in FIGURES:
            values = [r[key] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"  {key:9s} {statistics.mean(values):.3f} ± {spread:.3f}   " + " ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main(sys.argv[1:])
