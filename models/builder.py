"""The models: one builder, three choices (recurrent cell, frame front end, frame input).

    frames uint8 [B, T, H, W, 3] -> frame input -> front end -> per-frame features [B, T, F]
    -> [LayerNormalization, improved recipe] -> RNN(128, seq) -> Dropout(0.5) -> RNN(64, seq)
    -> Dropout(0.5) -> RNN(32) -> Dropout(0.5) -> Dense(classes, softmax, float32)

Frame input: "rgb" (pixels scaled to [0, 1]), "diff" (each kept frame minus the one kept before,
zeros for the first: change of pose over a segment), "next_diff" (each frame's partner, next_gap
frames later, minus the frame: motion over that interval, for clips with_next), "bg_diff" (minus the
clip's per-pixel median), "flow" (the stored optical flow, for clips prepared with it), or a '+'
join of them, stacked on channels. Computed inside the model, so a served model takes the same
uint8 images whatever the choice.

Front ends: "flat" flattens each frame (F = H*W*C); "cnn" is, per frame, Conv2D(256, 15x15,
stride 15, same, relu) -> MaxPool(2, same) -> Dropout(0.5) -> Flatten (F = 22,528 at 240x320);
"mobilenet" is MobileNetV3-Small per frame (global average pooled, F = 576), from scratch or
from pretrained weights; "convnet" is four strided conv-BatchNorm-ReLU blocks, flattened (F = 2,560 at
64 x 80), a small CNN that small real data sets can train from scratch. At 10x240x320x3, rgb input and 12 classes the six original models'
trainable parameter counts equal the original project's.
"""

from __future__ import annotations

import keras
from keras import layers

from models import actor_view
from models.actor_view import ActorView, GlimpseAttention, LearnedView
from models.kinds import (  # noqa: F401
    DISPLAY_NAMES, FRAME_INPUTS, MODEL_NAMES, MODELS, NEEDS_FLOW, NEEDS_NEXT, ORIGINAL_MODELS, PART_CHANNELS, VIEWS, ModelKind,
    frame_input_parts,
)

_CELLS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}
CONVNET_FILTERS = (16, 32, 64, 128)
TRACK_FEATURES = 32  # the actor view's track (box centre and height per step), embedded


def kind_of(name: str) -> ModelKind:
    if name not in MODELS:
        raise ValueError(f"name: unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def parse_name(name: str) -> tuple[str, str]:
    """(front end, cell): 'cnn_lstm' -> ('cnn', 'lstm'); 'gru' -> ('flat', 'gru')."""
    kind = kind_of(name)
    return kind.front_end, kind.cell


@keras.saving.register_keras_serializable(package="noctact")
class FrameDifference(layers.Layer):
    """x[:, t] - x[:, t-1] for t > 0 and zeros for t = 0: [B, T, H, W, C] -> [B, T, H, W, C]."""

    def call(self, x):
        return keras.ops.concatenate([keras.ops.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], axis=1)


@keras.saving.register_keras_serializable(package="noctact")
class NextDifference(layers.Layer):
    """Each time step's partner frame minus its frame: [B, T, H, W, 6] -> [B, T, H, W, 3]."""

    def call(self, x):
        return x[..., 3:6] - x[..., 0:3]


@keras.saving.register_keras_serializable(package="noctact")
class FirstFrame(layers.Layer):
    """Each time step's own frame (the first 3 channels): [B, T, H, W, 3P] -> [B, T, H, W, 3]."""

    def call(self, x):
        return x[..., 0:3]


@keras.saving.register_keras_serializable(package="noctact")
class FlowField(layers.Layer):
    """The flow images of each time step (grey, channels 6 and 9 of [B, T, H, W, 12] scaled to
    [0, 1]) back to the flow's x and y in [-1, 1] (1: pipeline.flow's bound): [B, T, H, W, 2]."""

    def call(self, x):
        images = keras.ops.concatenate([x[..., 6:7], x[..., 9:10]], axis=-1)
        return (images * 255.0 - 128.0) / 127.0


@keras.saving.register_keras_serializable(package="noctact")
class BackgroundDifference(layers.Layer):
    """Each frame minus the clip's per-pixel median over time (the lower median for even T):
    [B, T, H, W, C] -> [B, T, H, W, C]. With a static camera the median is the background where
    the actor moves on, so what is left is the moving actor."""

    def call(self, x):
        median = keras.ops.sort(x, axis=1)[:, (x.shape[1] - 1) // 2 : (x.shape[1] - 1) // 2 + 1]
        return x - median


def _frame_input(frames, frame_input: str):
    """uint8 frames [B, T, H, W, 3P] to float inputs in [0, 1] (rgb) and/or [-1, 1] (differences),
    the parts of `frame_input` stacked on channels in order."""
    scaled = layers.Rescaling(1.0 / 255, name="scale")(frames)
    rgb = FirstFrame(name="frame")(scaled) if frames.shape[-1] > 3 else scaled
    make = {
        "rgb": lambda: rgb,
        "diff": lambda: FrameDifference(name="frame_difference")(rgb),
        "next_diff": lambda: NextDifference(name="next_difference")(scaled),
        "bg_diff": lambda: BackgroundDifference(name="background_difference")(rgb),
        "flow": lambda: FlowField(name="flow")(scaled),
    }
    parts = [make[p]() for p in frame_input_parts(frame_input)]
    if len(parts) == 1:
        return parts[0]
    return layers.Concatenate(axis=-1, name="rgb_and_diff")(parts)


def _flow_channels(parts: tuple[str, ...]) -> tuple[int, ...]:
    """The channels of the stacked frame input that hold the flow's x and y (none without flow)."""
    start = 0
    for part in parts:
        if part == NEEDS_FLOW:
            return tuple(range(start, start + PART_CHANNELS[part]))
        start += PART_CHANNELS[part]
    return ()


def _convnet(x, dropout: float):
    """A small CNN per frame, trained from scratch: four (conv, BatchNorm, ReLU) blocks, each
    halving the frame with a stride of 2 (5x5 then 3x3 kernels, CONVNET_FILTERS), flattened:
    F = (H/16) (W/16) 128. Flattened, not pooled: where the actor is in the frame, and so how fast
    it crosses it, is what tells running from walking. Strided convolutions rather than conv +
    pool: 3.4 times the training speed on a CPU for the same filters (a one-off timing, BUILD_NOTES)."""
    for i, (filters, kernel) in enumerate(zip(CONVNET_FILTERS, (5, 3, 3, 3))):
        conv = layers.Conv2D(filters, kernel, strides=2, padding="same", use_bias=False)
        x = layers.TimeDistributed(conv, name=f"conv{i}")(x)
        # momentum 0.9 for the same reason as MobileNet's below: few steps on small data.
        x = layers.TimeDistributed(layers.BatchNormalization(momentum=0.9), name=f"conv{i}_bn")(x)
        x = layers.Activation("relu", name=f"conv{i}_relu")(x)
    return layers.Dropout(dropout, name="frame_dropout")(x)


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
    elif kind == "convnet":
        x = _convnet(x, dropout)
    return layers.Reshape((num_frames, -1), name="frame_features")(x)


def _glimpses(frames, x, view_size, flow_channels, front_end):
    """The learned view: the front end on every candidate box of every step (one set of weights),
    then the candidates' features and tracks pooled by learned attention: [B, T, F], [B, T, 3]."""
    crops, tracks = LearnedView(view_size, flow_channels, name="learned_view")([frames, x])
    _, steps, glimpses, *crop = crops.shape
    features = front_end(layers.Reshape((steps * glimpses, *crop), name="glimpses")(crops), steps * glimpses)
    features = layers.Reshape((steps, glimpses, features.shape[-1]), name="glimpse_features")(features)
    return GlimpseAttention(name="glimpse_attention")([features, tracks])


def _recurrent_stack(x, cell: str, units: tuple[int, ...], dropout: float):
    rnn = _CELLS[cell]
    for i, n in enumerate(units):
        last = i == len(units) - 1
        # Defaults kept on purpose: tanh/sigmoid, no recurrent dropout, no unroll and (GRU)
        # reset_after=True are what the fused cuDNN kernels need.
        x = rnn(n, return_sequences=not last, name=f"{cell}_{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return x


def check_frame_input(frame_input: str, frames_per_step: int) -> tuple[str, ...]:
    """The frame input's parts; ValueError when clips of `frames_per_step` images per step lack what it needs."""
    parts = frame_input_parts(frame_input)
    if frames_per_step not in (1, 2, 4):
        raise ValueError(f"frames_per_step must be 1, 2 or 4, got {frames_per_step}")
    if NEEDS_NEXT in parts and frames_per_step < 2:
        raise ValueError(f"frame_input: {frame_input} needs each frame's partner frame; prepare the data with --with_next")
    if NEEDS_FLOW in parts and frames_per_step != 4:
        raise ValueError(f"frame_input: {frame_input} needs the optical flow; prepare the data with --flow (prepare's default)")
    return parts


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
    frames_per_step: int = 1,
    view: str = "frame",
    view_size: tuple[int, int] | None = None,
) -> keras.Model:
    """One of MODEL_NAMES. Input: uint8 frames [B, T, H, W, 3 * frames_per_step] (with 2, each time
    step's frame and its partner on the channel axis; with 4, then the flow's x and y images:
    ClipSpec); output: probabilities [B, classes].

    feature_norm: LayerNormalization of the per-frame features before the recurrent stack.
    view: "frame" (the front end sees whole frames), "actor" (a view_size crop that follows the
    moving actor, models.actor_view; the box's track, embedded, joins the per-frame features) or
    "learned" (crops on each step's strongest movers, their features pooled by trained attention);
    view_size: the crop, height x width (default: actor_view.default_size of the frame height).
    backbone_weights (mobilenet only): None (from scratch), "imagenet" (Keras downloads them) or
    the path of a weights file of the backbone.
    """
    kind, cell = parse_name(name)
    parts = check_frame_input(frame_input, frames_per_step)
    if backbone_weights and kind != "mobilenet":
        raise ValueError(f"backbone_weights: {name} has no pretrained backbone (only mobilenet_gru has)")
    if backbone_weights == "imagenet" and len(parts) > 1:
        raise ValueError("backbone_weights: ImageNet weights take 3 channels; use a frame_input of one part (rgb, diff, ...)")

    for arg, value in (("num_frames", num_frames), ("height", height), ("width", width), ("conv_filters", conv_filters), ("conv_kernel", conv_kernel)):
        if value < 1:
            raise ValueError(f"{arg} must be >= 1, got {value}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if not units or min(units) < 1:
        raise ValueError(f"units must be a non-empty tuple of positive sizes, got {units}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if view not in VIEWS:
        raise ValueError(f"view: unknown {view!r}; choose one of {', '.join(VIEWS)}")
    view_size = tuple(view_size or actor_view.default_size(height))
    if len(view_size) != 2 or min(view_size) < 1:
        raise ValueError(f"view_size must be two positive sizes, got {view_size}")
    frames = keras.Input((num_frames, height, width, 3 * frames_per_step), dtype="uint8", name="frames")
    x = _frame_input(frames, frame_input)
    track = None
    def front_end(y, steps):
        return _front_end(y, kind, steps, dropout, conv_filters, conv_kernel, frame_input, backbone_weights)

    if view == "learned":
        x, track = _glimpses(frames, x, view_size, _flow_channels(parts), front_end)
    else:
        if view == "actor":
            x, track = ActorView(view_size, _flow_channels(parts), name="actor_view")([frames, x])
        x = front_end(x, num_frames)
    if feature_norm:
        x = layers.LayerNormalization(name="feature_norm")(x)
    if track is not None:
        track = layers.Dense(TRACK_FEATURES, activation="tanh", name="track")(track)
        x = layers.Concatenate(name="features_and_track")([x, track])
    x = _recurrent_stack(x, cell, tuple(units), dropout)
    # float32 output: softmax and the loss stay stable under a mixed-precision policy.
    probabilities = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(frames, probabilities, name=name)


def trainable_params(model: keras.Model) -> int:
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))
