"""The models: one builder, three choices (recurrent cell, frame front end, frame input).

    frames uint8 [B, T, H, W, 3] -> frame input -> front end -> per-frame features [B, T, F]
    -> [LayerNormalization, improved recipe] -> RNN(128, seq) -> Dropout(0.5) -> RNN(64, seq)
    -> Dropout(0.5) -> RNN(32) -> Dropout(0.5) -> Dense(classes, softmax, float32)

Frame input: "rgb" (pixels scaled to [0, 1]), "diff" (each frame minus the one before, zeros for
the first: a motion cue for static night cameras) or "rgb+diff" (both, as 6 channels). Computed
inside the model, so a served model takes the same uint8 frames whatever the choice.

Front ends: "flat" flattens each frame (F = H*W*C); "cnn" is, per frame, Conv2D(256, 15x15,
stride 15, same, relu) -> MaxPool(2, same) -> Dropout(0.5) -> Flatten (F = 22,528 at 240x320);
"mobilenet" is MobileNetV3-Small per frame (global average pooled, F = 576), from scratch or
from pretrained weights. At 10x240x320x3, rgb input and 12 classes the six original models'
trainable parameter counts equal the original project's.
"""

from __future__ import annotations

import keras
from keras import layers

ORIGINAL_MODELS = ("simple_rnn", "lstm", "gru", "cnn_simple_rnn", "cnn_lstm", "cnn_gru")
MODEL_NAMES = ORIGINAL_MODELS + ("mobilenet_gru",)
DISPLAY_NAMES = {
    "simple_rnn": "SimpleRNN",
    "lstm": "LSTM",
    "gru": "GRU",
    "cnn_simple_rnn": "CNN_SimpleRNN",
    "cnn_lstm": "CNN_LSTM",
    "cnn_gru": "CNN_GRU",
    "mobilenet_gru": "MobileNetV3S_GRU",
}
FRAME_INPUTS = ("rgb", "diff", "rgb+diff")
_CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}


def parse_name(name: str) -> tuple[str, str]:
    """'cnn_lstm' -> ('cnn', 'lstm'); 'gru' -> ('flat', 'gru'); 'mobilenet_gru' -> ('mobilenet', 'gru')."""
    if name not in MODEL_NAMES:
        raise ValueError(f"name: unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    for kind in ("cnn", "mobilenet"):
        if name.startswith(kind + "_"):
            return kind, name[len(kind) + 1 :]
    return "flat", name


@keras.saving.register_keras_serializable(package="noctact")
class FrameDifference(layers.Layer):
    """x[:, t] - x[:, t-1] for t > 0 and zeros for t = 0: [B, T, H, W, C] -> [B, T, H, W, C]."""

    def call(self, x):
        return keras.ops.concatenate([keras.ops.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], axis=1)


def _frame_input(frames, frame_input: str):
    """uint8 frames to float inputs in [0, 1] (rgb) and/or [-1, 1] (diff), channels last."""
    rgb = layers.Rescaling(1.0 / 255, name="scale")(frames)
    if frame_input == "rgb":
        return rgb
    diff = FrameDifference(name="frame_difference")(rgb)
    if frame_input == "diff":
        return diff
    return layers.Concatenate(axis=-1, name="rgb_and_diff")([rgb, diff])


def _mobilenet(x, height: int, width: int, channels: int, weights: str | None):
    """MobileNetV3-Small per frame; it takes inputs in [-1, 1], as its own preprocessing gives."""
    backbone = keras.applications.MobileNetV3Small(
        input_shape=(height, width, channels), include_top=False, pooling="avg", weights=weights, include_preprocessing=False,
    )
    # Keras builds it with BatchNormalization momentum 0.999 (for ImageNet's million steps); with a
    # few hundred steps the moving averages would still be far from the data's statistics, and
    # validation would run on them. 0.9 follows the data within tens of steps. (0.99 was measured
    # too, on the hard data: steadier validation from epoch to epoch but lower accuracy, BUILD_NOTES.)
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    return layers.TimeDistributed(backbone, name="frame_backbone")(x)


def _front_end(x, kind: str, num_frames: int, dropout: float, filters: int, kernel: int, frame_input: str, backbone_weights: str | None):
    if kind == "cnn":
        x = layers.TimeDistributed(
            layers.Conv2D(filters, kernel, strides=kernel, padding="same", activation="relu"), name="frame_conv"
        )(x)
        x = layers.TimeDistributed(layers.MaxPooling2D(2, strides=2, padding="same"), name="frame_pool")(x)
        x = layers.Dropout(dropout, name="frame_dropout")(x)
    elif kind == "mobilenet":
        if frame_input == "rgb":
            x = layers.Rescaling(2.0, offset=-1.0, name="to_unit_range")(x)
        _, _, height, width, channels = x.shape
        if min(height, width) < 32:  # MobileNetV3 takes frames of at least 32 x 32
            height, width = max(height, 32), max(width, 32)
            x = layers.TimeDistributed(layers.Resizing(height, width), name="upsample")(x)
        x = _mobilenet(x, height, width, channels, backbone_weights)
        x = layers.Dropout(dropout, name="frame_dropout")(x)
    return layers.Reshape((num_frames, -1), name="frame_features")(x)


def _recurrent_stack(x, cell: str, units: tuple[int, ...], dropout: float):
    rnn = _CELLS[cell]
    for i, n in enumerate(units):
        last = i == len(units) - 1
        # Defaults kept on purpose: tanh/sigmoid, no recurrent dropout, no unroll and (GRU)
        # reset_after=True are what the fused cuDNN kernels need.
        x = rnn(n, return_sequences=not last, name=f"{cell}_{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def build_model(
    name: str,
    *,
    num_frames: int = 10,
    height: int = 240,
    width: int = 320,
    num_classes: int = 12,
    units: tuple[int, ...] = (128, 64, 32),
    dropout: float = 0.5,
    conv_filters: int = 256,
    conv_kernel: int = 15,
    feature_norm: bool = False,
    frame_input: str = "rgb",
    backbone_weights: str | None = None,
) -> keras.Model:
    """One of MODEL_NAMES. Input: uint8 frames [B, T, H, W, 3]; output: probabilities [B, classes].

    feature_norm: LayerNormalization of the per-frame features before the recurrent stack.
    backbone_weights (mobilenet only): None (from scratch), "imagenet" (Keras downloads them) or
    the path of a weights file of the backbone.
    """
    kind, cell = parse_name(name)
    if frame_input not in FRAME_INPUTS:
        raise ValueError(f"frame_input: unknown {frame_input!r}; choose one of {', '.join(FRAME_INPUTS)}")
    if backbone_weights and kind != "mobilenet":
        raise ValueError(f"backbone_weights: {name} has no pretrained backbone (only mobilenet_gru has)")
    if backbone_weights == "imagenet" and frame_input == "rgb+diff":
        raise ValueError("backbone_weights: ImageNet weights take 3 channels; use frame_input 'rgb' or 'diff'")

    for arg, value in (("num_frames", num_frames), ("height", height), ("width", width), ("conv_filters", conv_filters), ("conv_kernel", conv_kernel)):
        if value < 1:
            raise ValueError(f"{arg} must be >= 1, got {value}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if not units or min(units) < 1:
        raise ValueError(f"units must be a non-empty tuple of positive sizes, got {units}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    frames = keras.Input((num_frames, height, width, 3), dtype="uint8", name="frames")
    x = _frame_input(frames, frame_input)
    x = _front_end(x, kind, num_frames, dropout, conv_filters, conv_kernel, frame_input, backbone_weights)
    if feature_norm:
        x = layers.LayerNormalization(name="feature_norm")(x)
    x = _recurrent_stack(x, cell, tuple(units), dropout)
    # float32 output: softmax and the loss stay stable under a mixed-precision policy.
    probabilities = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(frames, probabilities, name=name)


def trainable_params(model: keras.Model) -> int:
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
