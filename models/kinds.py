"""The model table: each model's frame front end and recurrent cell, and the frame inputs; and
the distribution strategies and precision policies a run may use (models.strategy makes them).

No Keras here, so command lines can check their flags against it before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """What a model is: its frame front end and its recurrent cell (FRONT_ENDS, CELLS)."""

    front_end: str
    cell: str
    display_name: str


STRATEGIES = ("mirrored", "one_device", "multi_worker", "tpu")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
FRONT_ENDS = ("flat", "cnn", "mobilenet", "convnet")
CELLS = ("simple_rnn", "lstm", "gru")
MODELS = {
    "simple_rnn": ModelKind("flat", "simple_rnn", "SimpleRNN"),
    "lstm": ModelKind("flat", "lstm", "LSTM"),
    "gru": ModelKind("flat", "gru", "GRU"),
    "cnn_simple_rnn": ModelKind("cnn", "simple_rnn", "CNN_SimpleRNN"),
    "cnn_lstm": ModelKind("cnn", "lstm", "CNN_LSTM"),
    "cnn_gru": ModelKind("cnn", "gru", "CNN_GRU"),
    "mobilenet_gru": ModelKind("mobilenet", "gru", "MobileNetV3S_GRU"),
    "convnet_gru": ModelKind("convnet", "gru", "ConvNet_GRU"),
}
ORIGINAL_MODELS = ("simple_rnn", "lstm", "gru", "cnn_simple_rnn", "cnn_lstm", "cnn_gru")
MODEL_NAMES = tuple(MODELS)
DISPLAY_NAMES = {name: kind.display_name for name, kind in MODELS.items()}
# What the model computes from each time step's frames, as parts joined by "+" (stacked on the
# channel axis in this order): "rgb" the pixels; "diff" the kept frame minus the one kept before it
# (a segment earlier: change of pose); "next_diff" the frame's partner minus the frame (next_gap/fps
# apart: motion, TSN's RGB difference; clips prepared --with_next); "bg_diff" the frame minus the
# clip's per-pixel median over its time steps (a static camera's background: what moves, as a
# silhouette, Weizmann's classic cue); "flow" the optical flow from the frame to its partner, x
# and y in [-1, 1] (clips prepared --flow; pipeline.flow).
FRAME_INPUT_PARTS = ("rgb", "diff", "next_diff", "bg_diff", "flow")
FRAME_INPUTS = ("rgb", "diff", "rgb+diff", "next_diff", "rgb+next_diff", "bg_diff", "bg_diff+next_diff",
                "rgb+bg_diff+next_diff", "bg_diff+flow")  # the combinations measured (any "+" join of the parts is accepted)
# Where each time step's front end looks: "frame", the whole frame; "actor", a box that follows the
# moving actor (models.actor_view), with the box's track beside the frame features; "learned", boxes
# on each step's strongest movers, pooled by attention the model trains (which one shows the actor).
VIEWS = ("frame", "actor", "learned")
NEEDS_NEXT = "next_diff"
NEEDS_FLOW = "flow"


PART_CHANNELS = {"rgb": 3, "diff": 3, "next_diff": 3, "bg_diff": 3, "flow": 2}  # channels each part stacks


def frame_input_parts(frame_input: str) -> tuple[str, ...]:
    """'rgb+next_diff' -> ('rgb', 'next_diff'); ValueError naming the flag for an unknown part or a repeat."""
    parts = tuple(frame_input.split("+"))
    bad = [p for p in parts if p not in FRAME_INPUT_PARTS]
    if bad or len(set(parts)) != len(parts) or not frame_input:
        raise ValueError(f"frame_input: {frame_input!r} is not a '+' join of distinct parts among {', '.join(FRAME_INPUT_PARTS)}")
    return parts
