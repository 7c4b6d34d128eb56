"""The record schema: one `tf.train.Example` per clip.

The only place that names feature keys or says how a clip is encoded. The writer, the input
function, verify, export's record signature and predict all go through here.

Schema version 2 (the manifest's format_version 2 and its `clip` spec): N = ClipSpec.stored_frames
= T segments x K candidates x P (2 with the partner frame; 4 with the flow's x and y images after
it), in ClipSpec order; version 1 is the case K = 1, P = 1 (N = T).

| key                      | type         | value                                             |
|--------------------------|--------------|---------------------------------------------------|
| clip/frames              | bytes  x N   | JPEG of each stored image, H x W: an RGB frame, or |
|                          |              | a grey flow image (pipeline.flow)                  |
| clip/frame_indices       | int64  x N   | index of each stored frame among decoded frames    |
|                          |              | (a flow image: the frame its flow starts from)     |
| clip/frames_decoded      | int64        | frames the source video really holds               |
| clip/label               | int64        | label id (position in the manifest's label_names)  |
| clip/label_name          | bytes        | label name, UTF-8                                  |
| clip/source              | bytes        | source path relative to the data dir, UTF-8, '/'   |
| clip/seconds             | float        | the source's duration: frames_decoded / frame rate  |
|                          |              | (absent in older records: read as 0, unknown)      |
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from pipeline.clip_spec import ClipSpec

FRAMES = "clip/frames"
FRAME_INDICES = "clip/frame_indices"
FRAMES_DECODED = "clip/frames_decoded"
LABEL = "clip/label"
LABEL_NAME = "clip/label_name"
SOURCE = "clip/source"
SECONDS = "clip/seconds"


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def encode(
    jpegs: Sequence[bytes],
    frame_indices: Sequence[int],
    frames_decoded: int,
    label: int,
    label_name: str,
    source: str,
    seconds: float = 0.0,
) -> bytes:
    """Serialize one clip. Deterministic: the same clip gives the same bytes on every run."""
    if len(jpegs) != len(frame_indices):
        raise ValueError(f"{len(jpegs)} frames but {len(frame_indices)} frame indices")
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                FRAMES: _bytes(jpegs),
                FRAME_INDICES: _ints(frame_indices),
                FRAMES_DECODED: _ints([frames_decoded]),
                LABEL: _ints([label]),
                LABEL_NAME: _bytes([label_name.encode("utf-8")]),
                SOURCE: _bytes([source.encode("utf-8")]),
                SECONDS: tf.train.Feature(float_list=tf.train.FloatList(value=[float(seconds)])),
            }
        )
    )
    # Protobuf maps serialize in an unspecified order unless asked to be deterministic.
    return example.SerializeToString(deterministic=True)


def feature_spec(num_frames: int) -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec for records of `num_frames` stored frames (ClipSpec.stored_frames)."""
    return {
        FRAMES: tf.io.FixedLenFeature([num_frames], tf.string),
        FRAME_INDICES: tf.io.FixedLenFeature([num_frames], tf.int64),
        FRAMES_DECODED: tf.io.FixedLenFeature([], tf.int64),
        LABEL: tf.io.FixedLenFeature([], tf.int64),
        LABEL_NAME: tf.io.FixedLenFeature([], tf.string),
        SOURCE: tf.io.FixedLenFeature([], tf.string),
        SECONDS: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    }


def unlabelled(clip, source: str) -> bytes:
    """The record of a clip read for classification (a pipeline.frames.EncodedClip): label -1,
    no label name, `source` as given."""
    return encode(clip.jpegs, clip.indices, clip.frames_decoded, -1, "", source, clip.seconds)


def seconds_of(serialized: bytes) -> float:
    """The source duration a serialized record carries (0.0: an older record without it)."""
    values = tf.train.Example.FromString(serialized).features.feature[SECONDS].float_list.value
    return round(float(values[0]), 3) if values else 0.0


def parse(serialized: tf.Tensor, num_frames: int) -> dict[str, tf.Tensor]:
    """Parse a batch of serialized records (string [B]) into a dict of [B, ...] tensors; num_frames
    is the stored frame count (ClipSpec.stored_frames)."""
    return tf.io.parse_example(serialized, feature_spec(num_frames))


def decode_frames(jpegs: tf.Tensor, num_frames: int, height: int, width: int) -> tf.Tensor:
    """JPEG strings [num_frames] to uint8 [num_frames, height, width, 3].

    INTEGER_ACCURATE matches the IDCT of the libjpeg that OpenCV uses, so decoded pixels agree
    with what prepare encoded. A frame of another size fails here instead of being reshaped.
    """
    frames = [
        tf.io.decode_jpeg(jpegs[i], channels=3, dct_method="INTEGER_ACCURATE") for i in range(num_frames)
    ]
    clip = tf.stack(frames)
    size_ok = tf.debugging.assert_equal(
        tf.shape(clip)[1:3], tf.constant([height, width]), message=f"frame size differs from {height}x{width}"
    )
    with tf.control_dependencies([size_ok]):
        clip = tf.identity(clip)
    clip.set_shape([num_frames, height, width, 3])  # static only: the assertion above checked it
    return clip


def view_positions(spec: ClipSpec, choice: tf.Tensor) -> tf.Tensor:
    """Stored positions of one view: candidate choice[t] (int32 [T]) of each segment t, with its
    pair. Returns int32 [T * P] in the order (t, p)."""
    t = tf.range(spec.num_frames, dtype=tf.int32)
    first = (t * spec.candidates + tf.cast(choice, tf.int32)) * spec.frames_per_step
    return tf.reshape(first[:, None] + tf.range(spec.frames_per_step, dtype=tf.int32)[None, :], [-1])


def centre_choice(spec: ClipSpec) -> tf.Tensor:
    """The view evaluation and serving take: the centre candidate of every segment. int32 [T]."""
    return tf.fill([spec.num_frames], tf.constant(spec.centre, tf.int32))


def random_choice(spec: ClipSpec, seed: tf.Tensor) -> tf.Tensor:
    """TSN's training draw: one candidate per segment, uniformly, stateless. int32 [T]."""
    return tf.random.stateless_uniform([spec.num_frames], seed, 0, spec.candidates, dtype=tf.int32)


def decode_view(jpegs: tf.Tensor, spec: ClipSpec, choice: tf.Tensor) -> tf.Tensor:
    """A record's JPEGs (string [stored_frames]) to the model's input for one view: uint8
    [T, H, W, 3 * P], each time step's frame and (with_next) its partner stacked on channels.
    Only the T * P chosen JPEGs are decoded."""
    chosen = tf.gather(jpegs, view_positions(spec, choice))
    frames = decode_frames(chosen, spec.num_frames * spec.frames_per_step, spec.height, spec.width)
    if spec.frames_per_step == 1:
        return frames
    pairs = tf.reshape(frames, [spec.num_frames, spec.frames_per_step, spec.height, spec.width, 3])
    stacked = tf.reshape(tf.transpose(pairs, [0, 2, 3, 1, 4]), spec.model_input_shape())
    return stacked
