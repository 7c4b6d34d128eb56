"""Pictures and tables of results: confusion matrix, learning curves, the models' comparison and cross-validation."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.builder import DISPLAY_NAMES, MODEL_NAMES  # noqa: E402
from models.evaluation import accuracy_interval  # noqa: E402
from pipeline import storage  # noqa: E402


def _save(fig: plt.Figure, path: str, dpi: int) -> None:
    """PNG to a local or remote (gs://) path, then close the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    storage.write_atomic(path, buf.getvalue())


def plot_confusion(matrix: Sequence[Sequence[int]], label_names: Sequence[str], title: str, path: str) -> None:
    m = np.asarray(matrix)
    size = max(5.0, 0.55 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(label_names)), label_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > m.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    _save(fig, path, dpi=110)


def _curves(ax_loss, ax_acc, histories: dict[str, list[dict[str, Any]]], title: str) -> None:
    """Train (dashed) and validation (solid) curves of one or more runs, labelled by run."""
    for i, (run, history) in enumerate(histories.items()):
        epochs = [e["epoch"] for e in history]
        color = f"C{i}"
        for key, style in (("", "--"), ("val_", "-")):
            label = f"{run} {'validation' if key else 'train'}".strip()
            ax_loss.plot(epochs, [e.get(f"{key}loss", np.nan) for e in history], style, color=color, label=label)
            ax_acc.plot(epochs, [e.get(f"{key}accuracy", np.nan) for e in history], style, color=color, label=label)
    ax_loss.set_title(f"{title} loss")
    ax_acc.set_title(f"{title} accuracy")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


def plot_learning_curves(history: list[dict[str, Any]], title: str, path: str) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    _curves(a, b, {"": history}, title)
    fig.tight_layout()
    _save(fig, path, dpi=110)


def _recipes(results: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r.get("recipe", "") for r in results))


def _by_model(results: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Results grouped by model, models in MODEL_NAMES order, each model's runs in recipe order."""
    order = {name: i for i, name in enumerate(MODEL_NAMES)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(results, key=lambda r: order.get(r["model"], len(order))):
        groups.setdefault(r["model"], []).append(r)
    return groups


def plot_comparison(results: Sequence[dict[str, Any]], path: str) -> None:
    """Loss (top row) and accuracy (bottom row) curves of each model, side by side; with several
    recipes, each model's column overlays its recipes."""
    several = len(_recipes(results)) > 1
    groups = _by_model(results)
    n = len(groups)
    fig, axes = plt.subplots(2, n, figsize=(3.3 * n, 6.4), squeeze=False)
    for i, (model, runs) in enumerate(groups.items()):
        histories = {(r.get("recipe", "") if several else ""): r["history"] for r in runs}
        _curves(axes[0][i], axes[1][i], histories, DISPLAY_NAMES.get(model, model))
    fig.tight_layout()
    _save(fig, path, dpi=100)


def comparison_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table of test results: best test accuracy first; with several recipes, by model
    and then recipe, with a recipe column."""
    several = len(_recipes(results)) > 1
    head = "| model | recipe " if several else "| model "
    rows = [
        head + "| trainable params | test accuracy | 95 % interval | test top-3 | test loss | best val accuracy | epochs | training time (s) | train clips/s |",
        "|---|" + ("---|" if several else "") + "---:|---:|:---:|---:|---:|---:|---:|---:|---:|",
    ]
    ordered = [r for runs in _by_model(results).values() for r in runs] if several else sorted(results, key=lambda r: -r["test_accuracy"])
    for r in ordered:
        recipe = f" {r.get('recipe', '')} |" if several else ""
        low, high = accuracy_interval(r["test_accuracy"], r["num_test_examples"])
        rows.append(
            f"| {DISPLAY_NAMES.get(r['model'], r['model'])} |{recipe} {r['trainable_params']:,} | {r['test_accuracy']:.3f} | "
            f"{low:.2f}–{high:.2f} | "
            f"{r['test_top3_accuracy']:.3f} | {r['test_loss']:.3f} | {_val(r['best_val_accuracy'])} | {r['epochs_run']} | "
            f"{r['train_seconds']:.0f} | {r['train_clips_per_second']:.1f} |"
        )
    return "\n".join(rows) + "\n"


def recipe_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: test accuracy of each model under each recipe, side by side, and the gain of the
    last recipe over the first."""
    names = _recipes(results)
    rows = ["| model | " + " | ".join(names) + f" | {names[-1]} − {names[0]} |", "|---|" + "---:|" * (len(names) + 1)]
    for model, runs in _by_model(results).items():
        acc = {r.get("recipe", ""): r["test_accuracy"] for r in runs}
        cells = [f"{acc[n]:.3f}" if n in acc else "" for n in names]
        gain = f"{acc[names[-1]] - acc[names[0]]:+.3f}" if names[0] in acc and names[-1] in acc else ""
        rows.append(f"| {DISPLAY_NAMES.get(model, model)} | " + " | ".join(cells) + f" | {gain} |")
    return "\n".join(rows) + "\n"


def best_line(results: Sequence[dict[str, Any]]) -> str:
    """The run (or the tied runs) with the highest test accuracy, in one sentence."""
    several = len(_recipes(results)) > 1
    top = max(r["test_accuracy"] for r in results)
    best = [r for r in results if r["test_accuracy"] == top]
    names = ", ".join(DISPLAY_NAMES.get(r["model"], r["model"]) + (f" ({r.get('recipe', '')})" if several else "") for r in best)
    return f"Best test accuracy: {names}, {top:.3f} (top-3 {max(r['test_top3_accuracy'] for r in best):.3f}).\n"


def write_comparison(model_dir: str, results: Sequence[dict[str, Any]]) -> str:
    """MODEL_DIR/comparison.md and comparison_curves.png; returns the markdown's path."""
    plot_comparison(results, os.path.join(model_dir, "comparison_curves.png"))
    chance = 1.0 / len(results[0]["label_names"])
    several = len(_recipes(results)) > 1
    where = "`<recipe>/<model>/`" if several else "`<model>/`"
    text = (
        "# Model comparison (test split)\n\n"
        + (recipe_table(results) + "\n" if several else "")
        + comparison_table(results)
        + "\n" + best_line(results)
        + f"\nChance accuracy: {chance:.3f} ({len(results[0]['label_names'])} classes). "
        f"95 % interval: Wilson score over the {results[0]['num_test_examples']} test clips; it counts only "
        "the sampling of clips (clips of one actor are not independent, so the real uncertainty is wider), "
        "and runs whose intervals overlap are not told apart by this split. "
        f"Each run's own report in {where}: `metrics.json`, `confusion.png`, `curves.png`.\n\n"
        "![loss and accuracy curves](comparison_curves.png)\n"
    )
    path = os.path.join(model_dir, "comparison.md")
    storage.write_atomic(path, text)
    return path


@dataclasses.dataclass(frozen=True)
class CrossValidation:
    """One model under one recipe over the folds it finished: test accuracy per fold, and the
    confusion matrix pooled over folds (every clip tested once)."""

    model: str
    recipe: str
    folds: tuple[int, ...]
    accuracy: tuple[float, ...]  # clip accuracy (centre view) per fold
    video_accuracy: tuple[float, ...]  # averaged over the clip's views per fold
    best_val_accuracy: tuple[float, ...]
    num_test: tuple[int, ...]
    confusion: tuple[tuple[int, ...], ...]

    @property
    def pooled_accuracy(self) -> float:
        m = np.asarray(self.confusion)
        return float(np.trace(m) / m.sum())


def cross_validations(results: Sequence[dict[str, Any]]) -> list[CrossValidation]:
    """Fold results (metrics.json with a fold) grouped by model and recipe, in MODEL_NAMES order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for runs in _by_model(results).values():
        for r in runs:
            groups.setdefault((r["model"], r.get("recipe", "")), []).append(r)
    out = []
    for (model, recipe), runs in groups.items():
        runs = sorted(runs, key=lambda r: r["fold"])
        out.append(CrossValidation(
            model, recipe, tuple(r["fold"] for r in runs), tuple(r["test_accuracy"] for r in runs),
            tuple(r.get("test_video_accuracy", r["test_accuracy"]) for r in runs),
            tuple(r["best_val_accuracy"] for r in runs), tuple(r["num_test_examples"] for r in runs),
            tuple(map(tuple, np.sum([r["confusion_matrix"] for r in runs], axis=0).tolist())),
        ))
    return out


def _val(value: float | None) -> str:
    """A best validation accuracy; none for a run trained on its validation split (--fit_validation)."""
    return "trained on" if value is None else f"{value:.3f}"


def _spread(values: Sequence[float | None]) -> str:
    """mean ± sample standard deviation (min–max); 'trained on' when the values are none."""
    if any(v is None for v in values):
        return "trained on"
    v = np.asarray(values, np.float64)
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.3f} ± {sd:.3f} ({v.min():.2f}–{v.max():.2f})"


def cross_validation_table(cvs: Sequence[CrossValidation]) -> str:
    """Markdown: per model (and recipe), the mean test accuracy over folds with its spread, the
    video accuracy, validation, and each fold's test accuracy."""
    folds = sorted({f for cv in cvs for f in cv.folds})
    rows = [
        "| model | recipe | folds | test accuracy, mean ± sd (range) | video accuracy | best val accuracy | "
        + " | ".join(f"fold {f}" for f in folds) + " |",
        "|---|---|---:|:---:|:---:|:---:|" + "---:|" * len(folds),
    ]
    for cv in cvs:
        per = dict(zip(cv.folds, cv.accuracy))
        rows.append(
            f"| {DISPLAY_NAMES.get(cv.model, cv.model)} | {cv.recipe} | {len(cv.folds)} | {_spread(cv.accuracy)} | "
            f"{_spread(cv.video_accuracy)} | {_spread(cv.best_val_accuracy)} | "
            + " | ".join(f"{per[f]:.2f}" if f in per else "" for f in folds) + " |"
        )
    return "\n".join(rows) + "\n"


def write_cross_validation(model_dir: str, results: Sequence[dict[str, Any]]) -> str:
    """MODEL_DIR/cross_validation.md (+ .json, and a pooled confusion matrix per model and recipe);
    returns the markdown's path."""
    cvs = cross_validations(results)
    label_names = results[0]["label_names"]
    for cv in cvs:
        title = f"{DISPLAY_NAMES.get(cv.model, cv.model)} ({cv.recipe}), {len(cv.folds)} folds pooled: {cv.pooled_accuracy:.3f}"
        plot_confusion(cv.confusion, label_names, title, os.path.join(model_dir, f"cv_confusion_{cv.model}_{cv.recipe}.png"))
    storage.write_atomic(os.path.join(model_dir, "cross_validation.json"),
                         json.dumps([{**dataclasses.asdict(cv), "pooled_accuracy": cv.pooled_accuracy} for cv in cvs], indent=1))
    text = (
        "# Cross-validation (each fold tested once; the next fold chose the best epoch, or was trained on where "
        "the table says so: --fit_validation)\n\n"
        + cross_validation_table(cvs)
        + f"\nChance accuracy: {1.0 / len(label_names):.3f} ({len(label_names)} classes). sd: the sample standard "
        "deviation over folds. Clip accuracy takes the centre candidate of each segment; video accuracy averages "
        "the probabilities of every view of the clip (equal with one candidate per segment). Each run's own "
        "report in `fold-<i>/<model>/`; pooled confusion matrices in `cv_confusion_<model>_<recipe>.png`.\n"
    )
    path = os.path.join(model_dir, "cross_validation.md")
    storage.write_atomic(path, text)
    return path
