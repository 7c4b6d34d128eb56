"""The models: the original's parameter counts, shapes, a training step, save/load, GPU settings,
frame inputs (motion cue), the MobileNetV3 backbone and its weights."""

import keras
import numpy as np
import pytest

from models import MODEL_NAMES, build_model, trainable_params
from models.builder import ORIGINAL_MODELS, FrameDifference, parse_name
from models import recipes
from models.trainer import compile_model

ORIGINAL_PARAMS = {
    "simple_rnn": 29_523_564,
    "lstm": 118_093_068,
    "gru": 88_570_572,
    "cnn_simple_rnn": 3_089_004,
    "cnn_lstm": 11_835_660,
    "cnn_gru": 8_920_780,
}
SMALL = dict(num_frames=3, height=32, width=40, num_classes=4)


@pytest.mark.parametrize("name", ORIGINAL_MODELS)
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
    compile_model(model, recipes.get("paper", learning_rate=1e-3), 100, jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 3, 32, 40, 3), dtype=np.uint8)
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
        compile_model(model, recipes.get("paper"), 100, jit_compile=False)
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
        (dict(name="gru", frame_input="optical_flow"), r"frame_input: 'optical_flow' is not a '\+' join"),
        (dict(name="gru", frame_input="rgb+rgb"), r"frame_input: 'rgb\+rgb' is not a '\+' join"),
        (dict(name="cnn_gru", backbone_weights="imagenet"), "cnn_gru has no pretrained backbone"),
        (dict(name="mobilenet_gru", backbone_weights="imagenet", frame_input="rgb+diff"), "ImageNet weights take 3 channels"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=message):
        build_model(name, **kwargs)


def test_frame_difference_is_each_frame_minus_the_one_before():
    x = np.arange(4 * 2 * 2 * 1, dtype=np.float32).reshape(1, 4, 2, 2, 1) ** 2
    d = keras.ops.convert_to_numpy(FrameDifference()(x))
    np.testing.assert_array_equal(d[:, 0], 0)
    np.testing.assert_array_equal(d[:, 1:], x[:, 1:] - x[:, :-1])


@pytest.mark.parametrize("frame_input, channels", [("rgb", 3), ("diff", 3), ("rgb+diff", 6)])
def test_frame_inputs_are_computed_inside_the_model(frame_input, channels, tmp_path):
    model = build_model("cnn_gru", **SMALL, frame_input=frame_input)
    assert model.input.dtype == "uint8" and model.input.shape == (None, 3, 32, 40, 3)
    assert model.get_layer("frame_conv").input.shape[-1] == channels
    static = np.full((2, 3, 32, 40, 3), 77, np.uint8)  # a still camera: no difference between frames
    if frame_input == "diff":
        # A still scene and a black one look the same to a diff-only model: only motion counts.
        np.testing.assert_allclose(model.predict(static, verbose=0), model.predict(np.zeros_like(static), verbose=0), atol=1e-6)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras").predict(static, verbose=0), model.predict(static, verbose=0), atol=1e-6)


def test_feature_norm_adds_layer_normalization_before_the_recurrent_stack():
    plain, normed = build_model("gru", **SMALL), build_model("gru", **SMALL, feature_norm=True)
    features = 32 * 40 * 3
    assert trainable_params(normed) - trainable_params(plain) == 2 * features
    assert normed.get_layer("gru_0").input is normed.get_layer("feature_norm").output


def test_mobilenet_takes_frames_smaller_than_its_minimum():
    model = build_model("mobilenet_gru", num_frames=2, height=16, width=24, num_classes=3)
    assert model.get_layer("upsample").output.shape == (None, 2, 32, 32, 3)
    assert model.predict(np.zeros((1, 2, 16, 24, 3), np.uint8), verbose=0).shape == (1, 3)


def test_mobilenet_backbone_loads_local_weights(tmp_path):
    keras.utils.set_random_seed(1)
    source = keras.applications.MobileNetV3Small(input_shape=(32, 40, 3), include_top=False, pooling="avg", weights=None, include_preprocessing=False)
    path = str(tmp_path / "backbone.weights.h5")
    source.save_weights(path)
    model = build_model("mobilenet_gru", **SMALL, backbone_weights=path)
    backbone = model.get_layer("frame_backbone").layer
    for a, b in zip(backbone.weights, source.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    fresh = build_model("mobilenet_gru", **SMALL)
    assert not np.array_equal(keras.ops.convert_to_numpy(fresh.get_layer("frame_backbone").layer.weights[0]),
                              keras.ops.convert_to_numpy(source.weights[0]))


def test_next_difference_is_each_frames_successor_minus_the_frame():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2, 3, 8, 10, 6), dtype=np.uint8)  # each step: frame (3 ch), successor (3 ch)
    model = build_model("gru", num_frames=3, height=8, width=10, num_classes=3, frame_input="next_diff", frames_per_step=2)
    assert model.input.shape == (None, 3, 8, 10, 6)
    diff = keras.Model(model.input, model.get_layer("next_difference").output)(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(diff), (x[..., 3:].astype(np.float32) - x[..., :3]) / 255, atol=1e-6)
    # A still camera (successor = frame) looks like a black one to a next_diff model: only motion counts.
    still = np.concatenate([x[..., :3], x[..., :3]], axis=-1)
    np.testing.assert_allclose(model.predict(still, verbose=0), model.predict(np.zeros_like(x), verbose=0), atol=1e-6)


@pytest.mark.parametrize("name", ORIGINAL_MODELS)
def test_rgb_of_pairs_keeps_the_original_parameter_counts(name):
    plain = build_model(name, **SMALL)
    paired = build_model(name, **SMALL, frames_per_step=2)
    assert trainable_params(paired) == trainable_params(plain)
    assert build_model(name, **SMALL, frame_input="rgb+next_diff", frames_per_step=2).get_layer("rgb_and_diff").output.shape[-1] == 6


def test_flow_input_is_the_stored_flow_bytes_back_in_units_of_the_bound():
    model = build_model("convnet_gru", **SMALL, frame_input="bg_diff+flow", frames_per_step=4)
    x = np.full((1, SMALL["num_frames"], SMALL["height"], SMALL["width"], 12), 128, np.uint8)
    x[..., 6:9], x[..., 9:12] = 255, 1  # full right, full up
    field = keras.Model(model.input, model.get_layer("flow").output)(x).numpy()
    assert field.shape[-1] == 2 and np.allclose(field[..., 0], 1.0) and np.allclose(field[..., 1], -1.0)
    with pytest.raises(ValueError, match="prepare the data with --flow"):
        build_model("convnet_gru", **SMALL, frame_input="flow", frames_per_step=2)


def test_next_diff_needs_pairs():
    with pytest.raises(ValueError, match="prepare the data with --with_next"):
        build_model("cnn_gru", **SMALL, frame_input="next_diff")


def test_convnet_front_end_is_four_strided_conv_blocks_flattened():
    model = build_model("convnet_gru", **SMALL, frame_input="rgb+next_diff", frames_per_step=2)
    assert model.get_layer("conv0").output.shape == (None, 3, 16, 20, 16)
    assert model.get_layer("conv3").output.shape == (None, 3, 2, 3, 128)
    assert model.get_layer("frame_features").output.shape == (None, 3, 2 * 3 * 128)  # where, not only what
    big = build_model("convnet_gru", num_frames=3, height=64, width=80, num_classes=4)
    assert big.get_layer("frame_features").output.shape == (None, 3, 4 * 5 * 128)
