"""The six models: the original's parameter counts, shapes, a training step, save/load, GPU settings."""

import keras
import numpy as np
import pytest

from models import MODEL_NAMES, build_model, trainable_params
from models.builder import parse_name
from models.trainer import compile_model

ORIGINAL_PARAMS = {
    "simple_rnn": 29_523_564,
    "lstm": 118_093_068,
    "gru": 88_570_572,
    "cnn_simple_rnn": 3_089_004,
    "cnn_lstm": 11_835_660,
    "cnn_gru": 8_920_780,
}
SMALL = dict(num_frames=3, height=30, width=40, num_classes=4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_trainable_params_equal_the_original_table(name):
    model = build_model(name, num_frames=10, height=240, width=320, num_classes=12)
    assert trainable_params(model) == ORIGINAL_PARAMS[name]
    if name.startswith("cnn_"):
        assert model.get_layer("frame_features").output.shape == (None, 10, 22_528)
    else:
        assert model.get_layer("frame_features").output.shape == (None, 10, 230_400)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes_training_step_and_save_load_round_trip(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(name, **SMALL)
    assert model.input.dtype == "uint8" and model.layers[1].name == "scale"
    compile_model(model, 1e-3, jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 3, 30, 40, 3), dtype=np.uint8)
    y = rng.integers(0, 4, 8).astype(np.int32)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (8, 4) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("name", ["lstm", "gru", "cnn_lstm", "cnn_gru"])
def test_recurrent_layers_keep_cudnn_eligible_settings(name):
    model = build_model(name, **SMALL)
    cell = parse_name(name)[1]
    rnns = [model.get_layer(f"{cell}_{i}") for i in range(3)]
    for layer in rnns:
        assert not layer.unroll and layer.recurrent_dropout == 0 and layer.use_bias
        assert layer.activation.__name__ == "tanh" and layer.recurrent_activation.__name__ == "sigmoid"
        if cell == "gru":
            assert layer.reset_after
    assert [layer.units for layer in rnns] == [128, 64, 32]


def test_mixed_float16_computes_in_half_but_outputs_float32_with_loss_scaling():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = build_model("cnn_gru", **SMALL)
        compile_model(model, 1e-4, jit_compile=False)
        assert model.get_layer("frame_conv").compute_dtype == "float16"
        assert model.get_layer("probabilities").compute_dtype == "float32"
        assert model.output.dtype == "float32"
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="transformer"), "name: unknown model 'transformer'"),
        (dict(name="gru", height=0), "height must be >= 1"),
        (dict(name="gru", num_classes=1), "num_classes must be >= 2"),
        (dict(name="gru", units=()), "units must be"),
        (dict(name="gru", dropout=1.0), "dropout must be in"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=message):
        build_model(name, **kwargs)
