"""A trained model as a LiteRT (.tflite) or ONNX file, for small devices and other runtimes.

LiteRT: the converter cannot lower the TensorList loop a Keras recurrent layer traces
(`TensorListReserve` fails), so the recurrent layers are unrolled first: T is fixed by the clip
spec, the unrolled graph has the same weights and computes the same function (checked against
Keras to 1e-5 in the tests) and converts to LiteRT's builtin ops only, no select TF ops, for
every model. Quantization: float16 weights, or int8 weights and activations calibrated on a
representative set of training clips (the input stays uint8 frames, the output float
probabilities).

ONNX: tf2onnx converts the model's own graph (its loops become ONNX Loop/Scan); opset 17.
Both take frames uint8 [B, T, H, W, 3P] like the SavedModel's serving_default (LiteRT: B = 1).
"""

from __future__ import annotations

import contextlib
import io
from typing import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from pipeline.inference.runtimes import QUANTIZATIONS

RECURRENT = ("SimpleRNN", "LSTM", "GRU")
ONNX_OPSET = 17


def unrolled(model: keras.Model) -> keras.Model:
    """The same model with its recurrent layers unrolled over the fixed T (same weights)."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] in RECURRENT:
            layer["config"]["unroll"] = True
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def to_tflite(model: keras.Model, quantize: str = "none", representative: Callable[[], Iterable[np.ndarray]] | None = None) -> bytes:
    """The model as a LiteRT flatbuffer. int8 needs `representative`: a callable giving uint8
    clips [1, T, H, W, 3P] drawn from the training data."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize: one of {', '.join(QUANTIZATIONS)}, not {quantize!r}")
    if quantize == "int8" and representative is None:
        raise ValueError("int8 quantization needs a representative set of training clips")
    converter = tf.lite.TFLiteConverter.from_keras_model(unrolled(model))
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.representative_dataset = lambda: ([clip] for clip in representative())
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the temporary SavedModel's endpoints
        return converter.convert()


def to_onnx(model: keras.Model) -> bytes:
    """The model as an ONNX graph (input 'frames', output 'probabilities')."""
    import tf2onnx

    shape = [None, *model.input.shape[1:]]
    fn = tf.function(lambda frames: {"probabilities": model(frames, training=False)})
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=[tf.TensorSpec(shape, tf.uint8, name="frames")], opset=ONNX_OPSET)
    return proto.SerializeToString()
