"""A trained model as a SavedModel for TF Serving or plain TensorFlow.

Signatures:
    serving_default(frames uint8 [None, T, H, W, 3P])  (P = 2: each frame and its partner)
    classify_records(records string [None])      serialized clips in the shard format
both -> probabilities float32 [None, C], class_id int64 [None], class_name string [None].
For reuse across overlapping windows (a timeline), when every time step's input depends on that
step's images only (frame inputs rgb, next_diff, flow, seen whole; not diff or bg_diff, nor the
actor view, which look at other steps), the model also comes in two halves:
    frame_features(frames uint8 [None, H, W, 3P]) -> features float32 [None, F]   per time step
    classify_features(features float32 [None, T, F]) -> as serving_default
so a frame two windows share is run through the front end once.

The label names are constants in the graph. `assets.extra/preprocessing.json`
(`pipeline.export_asset`) says how to turn a video into a record (the ClipSpec) and the label
names, for `pipeline.predict`. classify_records takes the centre candidate of each segment, as
evaluation does.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from pipeline import export_asset, records, storage
from pipeline.clip_spec import ClipSpec


def portable(model: keras.Model) -> keras.Model:
    """Make recurrent layers trace their generic kernels.

    On a machine with a GPU, Keras traces LSTM/GRU as CudnnRNNV3, an op that exists only with
    cuDNN: a SavedModel exported there would not load on a CPU server. Weights are the same.
    """
    for layer in model._flatten_layers(include_self=False):
        if hasattr(layer, "use_cudnn"):
            layer.use_cudnn = False
    return model


def _outputs(probabilities: tf.Tensor, label_names: Sequence[str]) -> dict[str, tf.Tensor]:
    class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
    names = tf.constant(list(label_names), tf.string)
    return {
        "probabilities": tf.cast(probabilities, tf.float32),
        "class_id": class_id,
        "class_name": tf.gather(names, class_id),
    }


FEATURES_LAYER = "frame_features"
CROSS_STEP_LAYERS = ("frame_difference", "background_difference", "actor_view", "learned_view")  # inputs that look at other time steps


def splits_per_step(model: keras.Model) -> bool:
    """Whether the model's front end runs on each time step's images alone (so it can be split)."""
    names = {layer.name for layer in model._flatten_layers(include_self=False)}
    return FEATURES_LAYER in names and not names & set(CROSS_STEP_LAYERS)


def halves(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(front end: frames [B, T, H, W, 3P] -> features [B, T, F], head: features -> probabilities),
    sharing the model's weights."""
    features = model.get_layer(FEATURES_LAYER).output
    return keras.Model(model.input, features, name="front_end"), keras.Model(features, model.output, name="head")


def export(model: keras.Model, path: str, label_names: Sequence[str], clip: ClipSpec, clip_seconds: float = 0.0) -> None:
    """Write `model` (trained on clips of `clip`, from videos of median duration `clip_seconds`) as
    a SavedModel at `path` (which must not exist yet)."""
    t, h, w, c = clip.model_input_shape()
    if tuple(model.input.shape[1:]) != (t, h, w, c):
        raise ValueError(f"model takes {tuple(model.input.shape[1:])}, the clip spec gives {(t, h, w, c)}")
    portable(model)

    def classify_frames(frames: tf.Tensor) -> dict[str, tf.Tensor]:
        # A placeholder's static shape is not checked when a server feeds it: check here, so a
        # request of another shape fails instead of being reshaped into the model.
        actual = tf.shape(frames)
        padded = tf.concat([actual, tf.zeros([5], tf.int32)], axis=0)  # compares even at another rank
        ok = tf.logical_and(tf.equal(tf.size(actual), 5), tf.reduce_all(tf.equal(padded[1:5], [t, h, w, c])))
        shape_ok = tf.debugging.Assert(ok, [f"frames must be uint8 [batch, {t}, {h}, {w}, {c}]; got shape", actual])
        with tf.control_dependencies([shape_ok]):
            frames = tf.identity(frames)
        return _outputs(model(frames, training=False), label_names)

    def classify_records(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = records.parse(serialized, clip.stored_frames)
        centre = records.centre_choice(clip)
        frames = tf.map_fn(
            lambda jpegs: records.decode_view(jpegs, clip, centre), parsed[records.FRAMES],
            fn_output_signature=tf.TensorSpec([t, h, w, c], tf.uint8),
        )
        return classify_frames(frames)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", classify_frames, [tf.TensorSpec([None, t, h, w, c], tf.uint8, name="frames")])
    archive.add_endpoint("classify_records", classify_records, [tf.TensorSpec([None], tf.string, name="records")])
    if splits_per_step(model):
        _add_halves(archive, model, clip, label_names)
    archive.write_out(path, verbose=False)
    export_asset.write(path, export_asset.ExportAsset(clip, tuple(label_names), clip_seconds))


def _add_halves(archive: keras.export.ExportArchive, model: keras.Model, clip: ClipSpec, label_names: Sequence[str]) -> None:
    """frame_features and classify_features: the two halves of serving_default."""
    t, h, w, c = clip.model_input_shape()
    front, head = halves(model)
    size = int(front.output.shape[-1])

    def frame_features(frames: tf.Tensor) -> dict[str, tf.Tensor]:
        # The front end takes T steps at a time: pad to a multiple of T (each step is computed on its own).
        n = tf.shape(frames)[0]
        padded = tf.concat([frames, tf.zeros([(-n) % t, h, w, c], tf.uint8)], axis=0)
        features = front(tf.reshape(padded, [-1, t, h, w, c]), training=False)
        return {"features": tf.cast(tf.reshape(features, [-1, size])[:n], tf.float32)}

    def classify_features(features: tf.Tensor) -> dict[str, tf.Tensor]:
        return _outputs(head(features, training=False), label_names)

    archive.track(front)
    archive.track(head)
    archive.add_endpoint("frame_features", frame_features, [tf.TensorSpec([None, h, w, c], tf.uint8, name="frames")])
    archive.add_endpoint("classify_features", classify_features, [tf.TensorSpec([None, t, size], tf.float32, name="features")])


def next_version(base: str) -> int:
    """The next free integer version under `base` (TF Serving's layout), starting at 1."""
    if not storage.isdir(base):
        return 1
    versions = [int(n) for n in storage.listdir(base) if n.isdigit()]
    return max(versions, default=0) + 1
