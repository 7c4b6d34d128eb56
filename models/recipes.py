"""Training recipes: how a model is trained, never what it is (its cell, depth and units).

paper     the original project's training as the training issue defines it: Adam at a constant
          1e-4, sparse categorical cross-entropy, no augmentation, raw per-frame pixels.
improved  for scarce, dark, real video: the difference of each frame to the one before as the
          model's input (a motion cue computed inside the model: same input channels, so the
          same parameter count), LayerNormalization of the per-frame features before a gated
          recurrent stack (LSTM, GRU; below), AdamW (decoupled weight decay) at a peak 3e-4
          reached by a linear warm-up and followed by cosine decay, gradient clipping by global
          norm, label smoothing, and night augmentation at half strength (flip, brightness,
          contrast and gamma, small crop).

Why the feature normalization skips SimpleRNN: it gives every feature unit scale, and a tanh
cell with no gate then starts partly saturated (on the hard built-in data's flat frame differences
18% of the first SimpleRNN layer's outputs exceed 0.9 at initialization, none without it or in a
GRU's), and it stopped both SimpleRNN models from learning, where the gated cells gain from it
(BUILD_NOTES.md, Measured, "fourth round").

`without` switches single parts of a recipe off, for ablations: the names are COMPONENTS.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras

from models import builder, kinds


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    learning_rate: float  # constant rate, or the peak after warm-up with a schedule
    schedule: bool = False  # linear warm-up, then cosine decay to zero at the last step
    warmup_fraction: float = 0.05
    clipnorm: float | None = None
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    feature_norm: tuple[str, ...] = ()  # the cells whose per-frame features are LayerNormalized
    augment: float = 0.0  # strength of the night augmentation (pipeline.input.augment): 0 off, 1 full
    frame_input: str = "rgb"  # what the model sees of each frame (models.builder.FRAME_INPUTS)
    dropout: float = 0.5  # the models' dropout rate (the original's 0.5)
    view: str = "frame"  # where the front end looks: the whole frame, or the moving actor (models.kinds.VIEWS)
    without: tuple[str, ...] = ()  # the parts switched off (COMPONENTS), for ablations

    @property
    def label(self) -> str:
        """How runs and reports name it: 'improved', or 'improved-without-schedule-augment'."""
        return "-".join((self.name, "without", *self.without)) if self.without else self.name


RECIPES = {
    "paper": Recipe("paper", learning_rate=1e-4),
    "improved": Recipe(
        "improved", learning_rate=3e-4, schedule=True, clipnorm=1.0, weight_decay=0.05, label_smoothing=0.1,
        feature_norm=("lstm", "gru"), augment=0.5, frame_input="diff",
    ),
}
# What a recipe does differently for one front end, measured on real video (BUILD_NOTES.md,
# "Real video", weizmann-dev leave-one-actor-out): the small ConvNet learns from the moving actor's
# silhouette and the optical flow (data prepared --flow, prepare's default), seen in a box that
# follows the actor (view "actor"), at a higher rate and lower dropout than the original front
# ends, which keep the recipe as it is.
BY_FRONT_END = {
    "improved": {"convnet": dict(frame_input="bg_diff+flow", learning_rate=1e-3, dropout=0.2, view="actor")},
}
_OFF = {
    "feature_norm": dict(feature_norm=()),
    "schedule": dict(schedule=False),
    "clipping": dict(clipnorm=None),
    "weight_decay": dict(weight_decay=0.0),
    "label_smoothing": dict(label_smoothing=0.0),
    "augment": dict(augment=0.0),
    "motion": dict(frame_input="rgb"),
    "actor_view": dict(view="frame"),
}
COMPONENTS = tuple(_OFF)


@dataclasses.dataclass(frozen=True)
class Overrides:
    """Settings chosen for one run (train.py's flags): each that is not None replaces the recipe's."""

    learning_rate: float | None = None
    augment: float | None = None
    frame_input: str | None = None
    dropout: float | None = None
    weight_decay: float | None = None
    view: str | None = None


OVERRIDES = tuple(f.name for f in dataclasses.fields(Overrides))


def get(name: str, without: Sequence[str] = (), model: str | None = None, **overrides: float | str | None) -> Recipe:
    """The named recipe, as it is for `model`'s front end (BY_FRONT_END), with the parts in
    `without` off; then each override that is not None (OVERRIDES, the fields of Overrides)
    replaces the recipe's value."""
    if name not in RECIPES:
        raise ValueError(f"recipe: unknown {name!r}; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    if model is not None:
        recipe = dataclasses.replace(recipe, **BY_FRONT_END.get(name, {}).get(kinds.MODELS[model].front_end, {}))
    for part in without:
        if part not in _OFF:
            raise ValueError(f"without: unknown part {part!r}; choose from {', '.join(COMPONENTS)}")
        recipe = dataclasses.replace(recipe, **_OFF[part])
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"recipe: cannot override {unknown}; only {', '.join(OVERRIDES)}")
    recipe = dataclasses.replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    if not 0.0 <= recipe.augment <= 1.0:
        raise ValueError(f"augment: strength must be in [0, 1], got {recipe.augment}")
    if not 0.0 <= recipe.dropout < 1.0:
        raise ValueError(f"dropout: must be in [0, 1), got {recipe.dropout}")
    if recipe.weight_decay < 0.0:
        raise ValueError(f"weight_decay: must be >= 0, got {recipe.weight_decay}")
    if recipe.view not in kinds.VIEWS:
        raise ValueError(f"view: unknown {recipe.view!r}; choose one of {', '.join(kinds.VIEWS)}")
    kinds.frame_input_parts(recipe.frame_input)  # refuses an unknown one, naming it
    return dataclasses.replace(recipe, without=tuple(without))


def normalizes_features(recipe: Recipe, model_name: str) -> bool:
    """Whether the model gets LayerNormalization of its per-frame features under the recipe."""
    return builder.parse_name(model_name)[1] in recipe.feature_norm


def learning_rate(recipe: Recipe, total_steps: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    if not recipe.schedule:
        return recipe.learning_rate
    warmup = max(1, round(recipe.warmup_fraction * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total_steps - warmup), warmup_target=recipe.learning_rate, warmup_steps=warmup,
    )


def optimizer(recipe: Recipe, total_steps: int) -> keras.optimizers.Optimizer:
    """Adam (paper) or AdamW; decay spares biases, normalization and embeddings-like vectors."""
    rate = learning_rate(recipe, total_steps)
    if recipe.weight_decay:
        opt = keras.optimizers.AdamW(rate, weight_decay=recipe.weight_decay, global_clipnorm=recipe.clipnorm)
        spare_from_decay(opt)
        return opt
    return keras.optimizers.Adam(rate, global_clipnorm=recipe.clipnorm)


def spare_from_decay(opt: keras.optimizers.Optimizer) -> None:
    """Biases and normalization parameters get no weight decay. Keras does not save this with the
    optimizer, so a run resumed from a checkpoint calls it again (trainer.train); without it the
    resumed run decayed them and ended elsewhere than an uninterrupted one."""
    inner = getattr(opt, "inner_optimizer", opt)  # a LossScaleOptimizer wraps the AdamW
    if isinstance(inner, keras.optimizers.AdamW):
        inner.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])


@keras.saving.register_keras_serializable(package="noctact")
class SparseCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy on probabilities, with optional label smoothing (Keras'
    own sparse loss has none): the target is (1 - s) one-hot + s / classes."""

    def __init__(self, label_smoothing: float = 0.0, reduction="sum_over_batch_size", name="sparse_crossentropy"):
        super().__init__(reduction=reduction, name=name)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        classes = keras.ops.shape(y_pred)[-1]
        target = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, [-1]), "int32"), classes)
        return keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
