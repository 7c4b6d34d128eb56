"""Training recipes: the parts each switches on, the schedule, the loss with label smoothing."""

import keras
import numpy as np
import pytest

from models import recipes
from models.builder import MODEL_NAMES


def test_paper_is_the_original_training_and_improved_switches_every_part_on():
    paper, improved = recipes.get("paper"), recipes.get("improved")
    assert (paper.learning_rate, paper.schedule, paper.clipnorm, paper.weight_decay, paper.label_smoothing,
            paper.feature_norm, paper.augment, paper.frame_input) == (1e-4, False, None, 0.0, 0.0, (), 0.0, "rgb")
    assert improved.schedule and improved.clipnorm and improved.weight_decay and improved.label_smoothing
    assert improved.feature_norm and improved.augment == 0.5 and improved.frame_input == "diff"


def test_improved_takes_the_convnets_real_video_settings_and_flags_still_win():
    convnet = recipes.get("improved", model="convnet_gru")
    assert (convnet.frame_input, convnet.learning_rate, convnet.dropout) == ("bg_diff+flow", 1e-3, 0.2)
    assert (convnet.augment, convnet.weight_decay, convnet.label) == (0.5, 0.05, "improved")
    for name in ("simple_rnn", "gru", "cnn_gru", "mobilenet_gru"):  # the others keep the recipe as it is
        assert recipes.get("improved", model=name) == recipes.get("improved")
    assert recipes.get("paper", model="convnet_gru") == recipes.get("paper")
    assert recipes.get("improved", ("motion",), model="convnet_gru").frame_input == "rgb"
    chosen = recipes.get("improved", model="convnet_gru", frame_input="bg_diff", learning_rate=3e-4, dropout=None)
    assert (chosen.frame_input, chosen.learning_rate, chosen.dropout) == ("bg_diff", 3e-4, 0.2)


def test_improved_normalizes_the_features_of_gated_cells_only():
    improved = recipes.get("improved")
    normalized = {name for name in MODEL_NAMES if recipes.normalizes_features(improved, name)}
    assert normalized == {"lstm", "gru", "cnn_lstm", "cnn_gru", "mobilenet_gru", "convnet_gru"}
    for recipe in (recipes.get("paper"), recipes.get("improved", without=("feature_norm",))):
        assert not any(recipes.normalizes_features(recipe, name) for name in MODEL_NAMES)


def test_parts_can_be_switched_off_and_overridden():
    r = recipes.get("improved", without=("augment", "schedule"), learning_rate=1e-3)
    assert not r.augment and not r.schedule and r.feature_norm and r.learning_rate == 1e-3
    assert r.name == "improved" and r.without == ("augment", "schedule") and r.label == "improved-without-augment-schedule"
    assert recipes.get("paper").label == "paper"
    assert recipes.get("improved", without=("motion",)).frame_input == "rgb"
    assert recipes.get("paper", augment=1.0).augment == 1.0 and recipes.get("paper", frame_input="rgb+diff").frame_input == "rgb+diff"
    with pytest.raises(ValueError, match="augment: strength must be in"):
        recipes.get("paper", augment=2.0)
    assert recipes.get("improved", model="convnet_gru", weight_decay=2.0).weight_decay == 2.0
    assert isinstance(recipes.optimizer(recipes.get("paper", weight_decay=1.0), 10), keras.optimizers.AdamW)
    assert not isinstance(recipes.optimizer(recipes.get("improved", weight_decay=0.0), 10), keras.optimizers.AdamW)
    with pytest.raises(ValueError, match="weight_decay: must be >= 0, got -1.0"):
        recipes.get("improved", weight_decay=-1.0)
    with pytest.raises(ValueError, match="without: unknown part 'dropout'"):
        recipes.get("improved", without=("dropout",))
    with pytest.raises(ValueError, match="recipe: unknown 'fast'"):
        recipes.get("fast")


def test_schedule_warms_up_to_the_peak_then_decays_to_zero():
    schedule = recipes.learning_rate(recipes.get("improved"), total_steps=200)  # warm-up: 5% = 10 steps
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == 0.0 and rate(5) == pytest.approx(1.5e-4) and rate(10) == pytest.approx(3e-4)
    assert rate(105) == pytest.approx(1.5e-4, rel=1e-3) and rate(200) == pytest.approx(0.0, abs=1e-9)
    assert recipes.learning_rate(recipes.get("paper"), 200) == 1e-4


def test_optimizers():
    adam = recipes.optimizer(recipes.get("paper"), 100)
    assert type(adam) is keras.optimizers.Adam and adam.global_clipnorm is None
    adamw = recipes.optimizer(recipes.get("improved"), 100)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.05 and adamw.global_clipnorm == 1.0


def test_loss_with_label_smoothing():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 2])
    plain = recipes.SparseCrossentropy()(labels, probs)
    np.testing.assert_allclose(plain, -np.log([0.7, 0.8]).mean(), rtol=1e-5)
    assert float(plain) == pytest.approx(float(keras.losses.SparseCategoricalCrossentropy()(labels, probs)), rel=1e-5)
    smooth = recipes.SparseCrossentropy(label_smoothing=0.3)(labels, probs)
    targets = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])  # (1 - 0.3) one-hot + 0.3 / 3
    np.testing.assert_allclose(smooth, -(targets * np.log(probs)).sum(axis=1).mean(), rtol=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(recipes.SparseCrossentropy(0.1)))
    assert isinstance(restored, recipes.SparseCrossentropy) and restored.label_smoothing == 0.1
