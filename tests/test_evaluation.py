"""Test metrics on hand-made predictions, and predict_split's order against the labels."""

import keras
import numpy as np
import pytest

from models import evaluation
from tests.conftest import make_shards


def test_metrics_count_every_example_once():
    labels = np.array([0, 0, 1, 2, 2])
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4], [0.0, 0.0, 1.0]])
    m = evaluation.classification_metrics(labels, probs, ["a", "b", "c"])
    assert m["test_accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5) and m["per_class"]["c"]["recall"] == pytest.approx(0.5)
    expected_loss = -np.mean(np.log(np.clip([0.7, 0.2, 0.8, 0.4, 1.0], 1e-7, 1)))
    assert m["test_loss"] == pytest.approx(expected_loss)
    assert m["num_test_examples"] == 5


def test_top3_counts_a_clip_when_its_class_ranks_third_or_better():
    # Five classes, so top-3 is not everything: the true class ranks 1st, 4th, 3rd and 5th.
    labels = np.array([0, 1, 2, 3])
    probs = np.array([[0.6, 0.1, 0.1, 0.1, 0.1], [0.4, 0.05, 0.3, 0.2, 0.05],
                      [0.5, 0.3, 0.15, 0.04, 0.01], [0.3, 0.3, 0.2, 0.0, 0.2]])
    m = evaluation.classification_metrics(labels, probs, list("abcde"))
    assert m["test_accuracy"] == pytest.approx(0.25) and m["test_top3_accuracy"] == pytest.approx(0.5)


def test_accuracy_interval_is_wilsons():
    assert evaluation.accuracy_interval(0.5, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert evaluation.accuracy_interval(0.0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert evaluation.accuracy_interval(1.0, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    with pytest.raises(ValueError, match="n >= 1"):
        evaluation.accuracy_interval(0.5, 0)


def test_comparison_table_shows_each_runs_interval():
    from models import report

    run = {"model": "cnn_gru", "recipe": "improved", "trainable_params": 862924, "test_accuracy": 0.631, "num_test_examples": 84,
           "test_top3_accuracy": 0.893, "test_loss": 1.159, "best_val_accuracy": 0.65, "epochs_run": 40, "train_seconds": 214.0,
           "train_clips_per_second": 100.3}
    table = report.comparison_table([run])
    assert "| model | trainable params | test accuracy | 95 % interval | test top-3 |" in table
    assert "| CNN_GRU | 862,924 | 0.631 | 0.52–0.73 | 0.893 | 1.159 | 0.650 | 40 | 214 | 100.3 |" in table


def test_best_line_names_the_best_run_and_every_tie():
    from models import report

    def run(model, recipe, acc, top3):
        return {"model": model, "recipe": recipe, "test_accuracy": acc, "test_top3_accuracy": top3}

    one_recipe = [run("cnn_gru", "paper", 0.5, 0.8), run("gru", "paper", 0.25, 0.5)]
    assert report.best_line(one_recipe) == "Best test accuracy: CNN_GRU, 0.500 (top-3 0.800).\n"
    tied = [run("cnn_gru", "paper", 0.25, 0.5), run("cnn_gru", "improved", 0.625, 0.75), run("mobilenet_gru", "improved", 0.625, 0.875)]
    assert report.best_line(tied) == "Best test accuracy: CNN_GRU (improved), MobileNetV3S_GRU (improved), 0.625 (top-3 0.875).\n"


def test_predict_split_pairs_each_prediction_with_its_label(tmp_path):
    manifest = make_shards(str(tmp_path), {"train": 2, "validation": 7, "test": 0}, shards_per_split=3)

    class Oracle(keras.layers.Layer):  # "predicts" the label encoded in the pixels: i % 3 for example i
        def call(self, frames):
            i = keras.ops.round(keras.ops.mean(keras.ops.cast(frames[:, 0], "float32"), axis=(1, 2, 3)) / 12)
            return keras.ops.one_hot(keras.ops.cast(i, "int32") % 3, 3)

    inputs = keras.Input((3, 16, 16, 3), dtype="uint8")
    model = keras.Model(inputs, Oracle()(inputs))
    labels, probs = evaluation.predict_split(model, str(tmp_path), manifest, "validation", batch_size=3)
    assert list(labels) == [i % 3 for i in range(7)]
    assert (probs.argmax(axis=1) == labels).all()


def test_video_probabilities_of_one_candidate_are_the_centre_views_without_another_pass(tmp_path):
    m = make_shards(str(tmp_path), {"train": 2, "validation": 2, "test": 3})
    centre = np.full((3, 3), 1 / 3)
    # model=None: any further prediction would fail; with K = 1 the centre view is the only one.
    np.testing.assert_array_equal(evaluation.predict_views(None, str(tmp_path), m, "test", 2, centre=centre), centre)
