"""Test-split evaluation: accuracy, top-3, loss, per-class precision/recall/F1, confusion matrix.

Every test example counts once (the original averaged per-batch accuracies on the
validation set, which weighs a short last batch like a full one).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from sklearn import metrics as sk

from pipeline.input.dataset import make_dataset
from pipeline.manifest import Manifest, as_names


def predict_split(model: keras.Model, data_dir: str, manifest: Manifest, splits: str | Sequence[str], batch_size: int,
                  view: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels int [N], probabilities float [N, classes]) over every example of `splits`, for the
    centre view of each clip (or candidate `view` of every segment).

    Evaluation reads examples in manifest order, so the labels come from the manifest.
    """
    ds = make_dataset(data_dir, splits, batch_size, training=False, manifest=manifest, view=view)
    probs = np.asarray(model.predict(ds.map(lambda frames, labels: frames), verbose=0), np.float64)
    labels = np.array([e.label for e in manifest.examples(splits)], np.int64)
    if len(labels) != len(probs):
        raise ValueError(f"{data_dir}: {len(probs)} predictions for {len(labels)} {'+'.join(as_names(splits))} examples in the manifest")
    return labels, probs


def predict_views(model: keras.Model, data_dir: str, manifest: Manifest, splits: str | Sequence[str], batch_size: int,
                  centre: np.ndarray) -> np.ndarray:
    """Test-time averaging: the probabilities [N, classes] averaged over the clip's K views (view
    j takes candidate j of every segment). `centre` is the centre view's, already computed by
    predict_split; the other K - 1 views are predicted here (none with K = 1)."""
    views = [centre if j == manifest.clip.centre else predict_split(model, data_dir, manifest, splits, batch_size, view=j)[1]
             for j in range(manifest.clip.candidates)]
    return np.mean(views, axis=0)


def accuracy_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95 % for z = 1.96) of an accuracy measured on n examples.

    It counts only the sampling of examples: clips of one actor or scene are not independent,
    so the real uncertainty of a small test split is wider.
    """
    if n < 1:
        raise ValueError(f"need n >= 1 examples, got {n}")
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    return float((probs.argmax(axis=1) == labels).mean())


def classification_metrics(labels: np.ndarray, probs: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """Metrics over all examples. labels: int [N]; probs: [N, C] rows summing to 1."""
    n, c = probs.shape
    if n == 0:
        raise ValueError("no examples to evaluate")
    ids = list(range(c))
    predicted = probs.argmax(axis=1)
    top3 = np.argsort(-probs, axis=1)[:, : min(3, c)]
    precision, recall, f1, support = sk.precision_recall_fscore_support(labels, predicted, labels=ids, zero_division=0)
    return {
        "test_accuracy": accuracy(labels, probs),
        "test_top3_accuracy": float((top3 == labels[:, None]).any(axis=1).mean()),
        "test_loss": float(-np.log(np.clip(probs[np.arange(n), labels], 1e-7, 1.0)).mean()),
        "num_test_examples": int(n),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(label_names)
        },
        "confusion_matrix": sk.confusion_matrix(labels, predicted, labels=ids).tolist(),
    }
