"""The six models: one builder, two choices (recurrent cell, frame front end).

    frames uint8 [B, T, H, W, 3] -> Rescaling(1/255) -> front end -> per-frame features [B, T, F]
    -> RNN(128, seq) -> Dropout(0.5) -> RNN(64, seq) -> Dropout(0.5) -> RNN(32) -> Dropout(0.5)
    -> Dense(classes, softmax, float32)

Front ends: "flat" flattens each frame (F = H*W*3); "cnn" is, per frame, Conv2D(256, 15x15,
stride 15, same, relu) -> MaxPool(2, same) -> Dropout(0.5) -> Flatten (F = 22,528 at 240x320).
At 10x240x320x3 and 12 classes the trainable parameter counts equal the original project's.
"""

from __future__ import annotations

import keras
from keras import layers

MODEL_NAMES = ("simple_rnn", "lstm", "gru", "cnn_simple_rnn", "cnn_lstm", "cnn_gru")
DISPLAY_NAMES = {
    "simple_rnn": "SimpleRNN",
    "lstm": "LSTM",
    "gru": "GRU",
    "cnn_simple_rnn": "CNN_SimpleRNN",
    "cnn_lstm": "CNN_LSTM",
    "cnn_gru": "CNN_GRU",
}
_CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}


def parse_name(name: str) -> tuple[str, str]:
    """'cnn_lstm' -> ('cnn', 'lstm'); 'gru' -> ('flat', 'gru')."""
    if name not in MODEL_NAMES:
        raise ValueError(f"name: unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if name.startswith("cnn_"):
        return "cnn", name[len("cnn_") :]
    return "flat", name


def _front_end(x, kind: str, num_frames: int, dropout: float, filters: int, kernel: int):
    if kind == "cnn":
        x = layers.TimeDistributed(
            layers.Conv2D(filters, kernel, strides=kernel, padding="same", activation="relu"), name="frame_conv"
        )(x)
        x = layers.TimeDistributed(layers.MaxPooling2D(2, strides=2, padding="same"), name="frame_pool")(x)
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
) -> keras.Model:
    """One of MODEL_NAMES. Input: uint8 frames [B, T, H, W, 3]; output: probabilities [B, classes]."""
    kind, cell = parse_name(name)
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
    x = layers.Rescaling(1.0 / 255, name="scale")(frames)
    x = _front_end(x, kind, num_frames, dropout, conv_filters, conv_kernel)
    x = _recurrent_stack(x, cell, tuple(units), dropout)
    # float32 output: softmax and the loss stay stable under a mixed-precision policy.
    probabilities = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(frames, probabilities, name=name)


def trainable_params(model: keras.Model) -> int:
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
