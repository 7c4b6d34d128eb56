"""The actor view: a box that follows what moves, its track, bilinear sampling, and the models
built on it (training step, save/load, LiteRT and ONNX answers, mixed precision)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import actor_view, build_model, converters, recipes, serving
from models.actor_view import ActorView, GlimpseAttention, LearnedView

T, H, W = 5, 64, 80


def moving_block(steps=T, top=22, height=20, width=6, x0=10, step=12, background=100, level=200):
    """uint8 [1, T, H, W, 3]: a still grey background and a bright block `height` x `width` whose
    left edge moves `step` pixels right each time step (never on the same pixels twice, so the
    clip's median is the background)."""
    clip = np.full((1, steps, H, W, 3), background, np.uint8)
    for t in range(steps):
        clip[0, t, top:top + height, x0 + t * step:x0 + t * step + width] = level
    return clip


def view(frames, maps=None, size=(32, 32), flow_channels=()):
    maps = frames.astype(np.float32) / 255.0 if maps is None else maps
    crops, track = ActorView(size, flow_channels)([frames, maps])
    return keras.ops.convert_to_numpy(crops), keras.ops.convert_to_numpy(track)


def test_the_box_is_centred_on_the_moving_actor_at_every_step_and_the_track_says_where():
    clip = moving_block()
    _, track = view(clip)
    centres_x = 10 + 12 * np.arange(T) + 3.0  # the block's centre column (pixel centres at i + 0.5)
    np.testing.assert_allclose(track[0, :, 0], centres_x / W * 2 - 1, atol=1e-4)
    np.testing.assert_allclose(track[0, :, 1], (22 + 10.0) / H * 2 - 1, atol=1e-4)
    box_h = track[0, :, 2] * H
    assert np.allclose(box_h, box_h[0]) and actor_view.MIN_HEIGHT * H <= box_h[0] <= 1.5 * 20  # one size per clip, about the actor's


def test_the_crop_shows_the_actor_in_the_same_place_whatever_its_path():
    clip = moving_block()
    background = np.full_like(clip, 100)
    crops, _ = view(clip, (clip.astype(np.float32) - background) / 255.0, size=(32, 32))
    centre = crops[0, :, 14:18, 14:18, 0]
    assert (centre > 0.35).all()  # the block (100 / 255 above the background) at the centre of every crop
    for t in range(1, T):  # the block lands on the same crop pixels at every step
        np.testing.assert_allclose(crops[0, t], crops[0, 0], atol=1e-3)  # float32 centres: within 0.01 px


def test_a_still_clip_gets_the_smallest_box_at_the_centre():
    _, track = view(np.full((2, T, H, W, 3), 90, np.uint8))
    np.testing.assert_allclose(track[..., :2], 0.0, atol=1e-4)
    np.testing.assert_allclose(track[..., 2], actor_view.MIN_HEIGHT, atol=1e-5)


def test_flow_channels_are_rescaled_to_the_box_and_other_channels_are_not():
    clip = moving_block()
    maps = np.zeros((1, T, H, W, 3), np.float32)
    maps[..., 0], maps[..., 1:] = 0.25, 0.5  # channel 0 a picture, 1-2 the flow's x and y
    crops, track = view(clip, maps, size=(16, 16), flow_channels=(1, 2))
    box_w = track[0, 0, 2] * H  # square crop: as wide as high
    inner = crops[0, :, 6:10, 6:10]  # well inside the frame
    np.testing.assert_allclose(inner[..., 0], 0.25, atol=1e-5)
    np.testing.assert_allclose(inner[..., 1:], 0.5 * 0.5 * W / box_w, atol=1e-4)


def _bilinear(image, ys, xs):
    """Reference sampling of image [H, W, C] at pixel coordinates (centres at integers), zero outside."""
    out = np.zeros((len(ys), len(xs), image.shape[-1]), np.float64)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            for yy in (int(np.floor(y)), int(np.floor(y)) + 1):
                for xx in (int(np.floor(x)), int(np.floor(x)) + 1):
                    if 0 <= yy < image.shape[0] and 0 <= xx < image.shape[1]:
                        out[i, j] += (1 - abs(y - yy)) * (1 - abs(x - xx)) * image[yy, xx]
    return out


def test_sampling_is_bilinear_on_the_box_and_zero_outside_the_frame():
    rng = np.random.default_rng(0)
    maps = rng.random((1, 1, 12, 14, 2)).astype(np.float32)
    layer = ActorView((6, 5))
    cy, cx = np.array([[2.3]], np.float32), np.array([[12.6]], np.float32)  # near the bottom-right corner: partly outside
    box_h, box_w = np.array([7.0], np.float32), np.array([7.0 * 5 / 6], np.float32)
    got = keras.ops.convert_to_numpy(layer._sample(maps, cy, cx, box_h, box_w))[0, 0]
    ys = cy[0, 0] + box_h[0] * ((np.arange(6) + 0.5) / 6 - 0.5) - 0.5
    xs = cx[0, 0] + box_w[0] * ((np.arange(5) + 0.5) / 5 - 0.5) - 0.5
    np.testing.assert_allclose(got, _bilinear(maps[0, 0], ys, xs), atol=1e-5)
    assert (got[:, -1] < maps[0, 0].max()).all()  # the last column lies past the right edge: weighed towards zero


def test_the_same_inside_a_graph_as_eagerly():
    clip = moving_block(steps=3)
    layer = ActorView((16, 16))
    maps = clip.astype(np.float32) / 255.0
    eager = [keras.ops.convert_to_numpy(a) for a in layer([clip, maps])]
    graph = [a.numpy() for a in tf.function(lambda f, m: layer([f, m]))(tf.constant(clip), tf.constant(maps))]
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(a, b, atol=1e-5)  # fused or not: float32 rounding


ACTOR = dict(num_frames=3, height=32, width=40, num_classes=4, frame_input="bg_diff+flow", frames_per_step=4, view="actor",
             view_size=(16, 16), feature_norm=True)


@pytest.mark.parametrize("name, view", [("convnet_gru", "actor"), ("cnn_gru", "actor"), ("lstm", "actor"), ("convnet_gru", "learned")])
def test_models_on_the_actor_view_train_and_survive_save_and_load(name, view, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(name, **{**ACTOR, "view": view})
    crops = (None, 3, actor_view.GLIMPSES, 16, 16, 5) if view == "learned" else (None, 3, 16, 16, 5)
    assert model.get_layer(f"{view}_view").output[0].shape == crops
    assert model.get_layer("features_and_track").output.shape[-1] == model.get_layer("frame_features").output.shape[-1] + 32
    assert not serving.splits_per_step(model)  # the box depends on the whole clip
    from models.trainer import compile_model

    compile_model(model, recipes.get("improved", model="convnet_gru"), 10, jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 3, 32, 40, 12), dtype=np.uint8)
    history = model.fit(x, np.array([0, 1, 2, 3], np.int32), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("view", ["actor", "learned"])
def test_the_actor_view_converts_to_litert_builtins_and_onnx_with_the_same_answers(view):
    from ai_edge_litert.interpreter import Interpreter
    import onnxruntime

    keras.utils.set_random_seed(1)
    model = build_model("convnet_gru", **{**ACTOR, "view": view})
    if view == "learned":  # scores that tell the candidates apart, as trained ones do
        score = model.get_layer("glimpse_attention").score
        score.kernel.assign(np.random.default_rng(1).normal(0, 2.0, score.kernel.shape).astype(np.float32))
    x = moving_block(steps=3)[:, :, 16:48, 20:60]
    x = np.concatenate([x, x, np.full_like(x, 140), np.full_like(x, 128)], axis=-1)  # frame, partner, flow x and y
    reference = model.predict(x, verbose=0)
    interpreter = Interpreter(model_content=converters.to_tflite(model))  # builtin ops only, or this fails
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), reference, atol=1e-5)
    session = onnxruntime.InferenceSession(converters.to_onnx(model))
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], reference, atol=1e-5)


def learned(frames, maps=None, size=(32, 32)):
    maps = frames.astype(np.float32) / 255.0 if maps is None else maps
    crops, tracks = LearnedView(size)([frames, maps])
    return keras.ops.convert_to_numpy(crops), keras.ops.convert_to_numpy(tracks)


def test_with_one_mover_the_learned_views_first_candidate_is_the_actor_rules_box():
    clip = moving_block()
    _, rule = view(clip)
    crops, tracks = learned(clip)
    assert crops.shape == (1, T, actor_view.GLIMPSES, 32, 32, 3) and tracks.shape == (1, T, actor_view.GLIMPSES, 3)
    np.testing.assert_allclose(tracks[0, :, 0, :2], rule[0, :, :2], atol=1e-4)  # the same centre at every step
    np.testing.assert_allclose(tracks[0, :, 0, 2], rule[0, :, 2], rtol=1e-3)  # and size


def test_with_two_movers_the_learned_view_boxes_each_strongest_first():
    clip = moving_block(x0=4, step=6, level=250)  # the brighter mover: a block crossing the top left, to the right
    for t in range(T):  # a dimmer one at the bottom right, moving left (a pixel is covered at most twice)
        clip[0, t, 46:60, 74 - t * 4:80 - t * 4] = 210
    _, rule = view(clip)
    _, tracks = learned(clip)
    bright_x = (4 + 6 * np.arange(T) + 3.0) / W * 2 - 1
    dim_x = (74 - 4 * np.arange(T) + 3.0) / W * 2 - 1
    np.testing.assert_allclose(tracks[0, :, 0, 0], bright_x, atol=1e-3)  # candidate 0 on the brighter block
    np.testing.assert_allclose(tracks[0, :, 0, 1], (22 + 10.0) / H * 2 - 1, atol=1e-3)
    np.testing.assert_allclose(tracks[0, :, 1, 0], dim_x, atol=0.05)  # candidate 1 on the dimmer one
    np.testing.assert_allclose(tracks[0, :, 1, 1], (46 + 7.0) / H * 2 - 1, atol=1e-3)
    assert (np.abs(rule[0, :, 0] - tracks[0, :, 0, 0]) > 0.2).all()  # where the rule's box sits between them


def test_glimpse_attention_pools_the_candidates_its_scores_pick():
    features = np.zeros((1, 2, 3, 4), np.float32)
    features[0, :, 1] = 5.0  # candidate 1 stands out at both steps
    tracks = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)
    pool = GlimpseAttention(hidden=4)
    pooled, track = (keras.ops.convert_to_numpy(v) for v in pool([features, tracks]))
    assert pooled.shape == (1, 2, 4) and track.shape == (1, 2, 3)
    pool.score_hidden.kernel.assign(np.eye(4, dtype=np.float32))
    pool.score.kernel.assign(np.full((4, 1), 10.0, np.float32))  # a high score for large features
    pooled, track = (keras.ops.convert_to_numpy(v) for v in pool([features, tracks]))
    np.testing.assert_allclose(pooled, 5.0, atol=1e-3)
    np.testing.assert_allclose(track, tracks[:, :, 1], atol=1e-3)
    pool.score.kernel.assign(np.zeros((4, 1), np.float32))  # no preference: the mean
    pooled, track = (keras.ops.convert_to_numpy(v) for v in pool([features, tracks]))
    np.testing.assert_allclose(pooled, 5.0 / 3, atol=1e-5)
    np.testing.assert_allclose(track, tracks.mean(axis=2), atol=1e-5)


def test_a_training_step_reaches_the_glimpse_scores():
    keras.utils.set_random_seed(0)
    model = build_model("convnet_gru", **{**ACTOR, "view": "learned"})
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 40, 12), dtype=np.uint8)  # candidates that differ
    score = model.get_layer("glimpse_attention").score
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(np.array([1, 2]), model(x, training=True))
    assert float(tf.norm(tape.gradient(loss, score.kernel))) > 0  # the loss reaches which candidate is looked at


def test_mixed_float16_samples_in_float32_and_outputs_float32():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = build_model("convnet_gru", **ACTOR)
        probs = model.predict(moving_block(steps=3)[:, :, :32, :40].repeat(4, axis=-1), verbose=0)
        assert model.output.dtype == "float32" and np.isfinite(probs).all()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_the_view_is_a_recipe_setting_the_convnet_takes_by_default():
    assert recipes.get("improved", model="convnet_gru").view == "actor"
    assert recipes.get("improved").view == recipes.get("paper", model="convnet_gru").view == "frame"
    assert recipes.get("improved", ("actor_view",), model="convnet_gru").view == "frame"
    assert recipes.get("paper", view="actor").view == "actor"
    with pytest.raises(ValueError, match="view: unknown 'person'"):
        recipes.get("improved", view="person")
    with pytest.raises(ValueError, match="view: unknown 'person'"):
        build_model("gru", num_frames=2, height=8, width=8, num_classes=2, view="person")
    assert recipes.get("improved", model="convnet_gru", view="learned").view == "learned"


@pytest.mark.parametrize("height, side", [(24, 16), (64, 32), (96, 48), (128, 64), (240, 64)])
def test_the_crop_is_half_the_frame_height_in_steps_of_16_up_to_64(height, side):
    assert actor_view.default_size(height) == (side, side)
    model = build_model("convnet_gru", num_frames=2, height=height, width=height * 5 // 4, num_classes=3, view="actor")
    assert model.get_layer("actor_view").output[0].shape[2:4] == (side, side)
