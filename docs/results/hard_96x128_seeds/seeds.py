"""The views on the hard built-in data over seeds: per view, each run's test accuracy, best
validation and late validation (the mean over epochs 21-40, the figure settings are chosen by),
with their mean ± sample sd over the runs; then, for each pair of views, the per-seed differences
(the later view minus the earlier). From the runs' metrics.json.

    python docs/results/hard_96x128_seeds/seeds.py VIEW=RUN_DIR[,RUN_DIR...] [VIEW=...]

RUN_DIR is a train.py --model_dir of the default model: its convnet_gru/metrics.json is read. Paired
views must list the same seeds in the same order.
"""
import itertools
import json
import os
import statistics
import sys
from typing import NamedTuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "weizmann_64x80"))

from late_validation import print_paired, print_row  # noqa: E402


class Run(NamedTuple):
    seed: int
    test: float
    best_val: float
    late_val: float


FIGURES = (("test", "test"), ("best val", "best_val"), ("late val", "late_val"))  # (label, Run field)


def load_run(run_dir: str) -> Run:
    path = os.path.join(run_dir, "convnet_gru", "metrics.json")
    if not os.path.exists(path):
        sys.exit(f"{path}: not found")
    m = json.load(open(path))
    late = [h["val_accuracy"] for h in m["history"] if 21 <= h["epoch"] <= 40]
    if len(late) != 20:
        sys.exit(f"{path}: {len(late)} of epochs 21-40 in its history, not 20")
    return Run(m["config"]["seed"], m["test_accuracy"], m["best_val_accuracy"], statistics.mean(late))


def main(args: list[str]) -> None:
    views: dict[str, list[Run]] = {}
    for arg in args:
        view, _, dirs = arg.partition("=")
        runs = views[view] = [load_run(d) for d in dirs.split(",")]
        print(f"{view} (seeds {', '.join(str(r.seed) for r in runs)})")
        for label, field in FIGURES:
            print_row(label, [getattr(r, field) for r in runs], places=3)
    for (a, first), (b, second) in itertools.combinations(views.items(), 2):
        if [r.seed for r in first] != [r.seed for r in second]:
            sys.exit(f"{a} and {b}: not the same seeds in the same order, so not paired")
        for label, field in FIGURES[::2]:
            print_paired(f"{b} minus {a}, {label}", [getattr(r, field) for r in first],
                         [getattr(r, field) for r in second], unit="seeds")


if __name__ == "__main__":
    main(sys.argv[1:])
