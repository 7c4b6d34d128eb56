"""LiteRT and ONNX conversion of every model, run in their own runtimes (not TensorFlow)."""

import numpy as np
import pytest

from models import MODEL_NAMES, converters, recipes, trainer
from pipeline.clip_spec import ClipSpec

SMALL = ClipSpec(num_frames=4, height=32, width=40)
FLOW = ClipSpec(num_frames=4, height=32, width=32, with_next=True, flow=True)


def _lite(flat: bytes, clips: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flat)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.uint8 and tuple(inp["shape"][1:]) == clips.shape[1:]
    answers = []
    for clip in clips:
        interpreter.set_tensor(inp["index"], clip[None])
        interpreter.invoke()
        answers.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(answers)


@pytest.mark.parametrize("name, clip, frame_input", [(n, SMALL, "rgb") for n in MODEL_NAMES] + [("convnet_gru", FLOW, "bg_diff+flow")])
def test_every_model_converts_to_litert_builtins_and_computes_the_same(name, clip, frame_input):
    model = trainer.build(name, clip, 5, recipes.get("paper" if frame_input == "rgb" else "improved", frame_input=frame_input))
    clips = np.random.default_rng(0).integers(0, 256, (3, *clip.model_input_shape()), dtype=np.uint8)
    flat = converters.to_tflite(model)  # builtin ops only: no SELECT_TF_OPS asked for, so none can be used
    np.testing.assert_allclose(_lite(flat, clips), model.predict(clips, verbose=0), atol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "cnn_gru", "cnn_simple_rnn"])
def test_onnx_in_onnxruntime_computes_the_same(name):
    import onnxruntime

    model = trainer.build(name, SMALL, 5, recipes.get("paper"))
    clips = np.random.default_rng(1).integers(0, 256, (3, *SMALL.model_input_shape()), dtype=np.uint8)
    session = onnxruntime.InferenceSession(converters.to_onnx(model), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames"] and [o.name for o in session.get_outputs()] == ["probabilities"]
    np.testing.assert_allclose(session.run(["probabilities"], {"frames": clips})[0], model.predict(clips, verbose=0), atol=1e-5)


def test_unrolled_keeps_the_weights_and_unrolls_every_recurrent_layer():
    model = trainer.build("cnn_lstm", SMALL, 5, recipes.get("paper"))
    copy = converters.unrolled(model)
    rnns = [layer for layer in copy.layers if type(layer).__name__ in converters.RECURRENT]
    assert len(rnns) == 3 and all(layer.unroll for layer in rnns)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), copy.get_weights()))
    with pytest.raises(ValueError, match="quantize: one of none, float16, int8"):
        converters.to_tflite(model, "int4")
