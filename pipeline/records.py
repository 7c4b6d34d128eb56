"""The record schema: one `tf.train.Example` per clip.

The only place that names feature keys or says how a clip is encoded. The writer, the input
function, verify, export's record signature and predict all go through here.

| key                      | type         | value                                             |
|--------------------------|--------------|---------------------------------------------------|
| clip/frames              | bytes  x T   | JPEG of each RGB frame, H x W                      |
| clip/frame_indices       | int64  x T   | index of each kept frame among decoded frames      |
| clip/frames_decoded      | int64        | frames the source video really holds               |
| clip/label               | int64        | label id (position in the manifest's label_names)  |
| clip/label_name          | bytes        | label name, UTF-8                                  |
| clip/source              | bytes        | source path relative to the data dir, UTF-8, '/'   |
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

FRAMES = "clip/frames"
FRAME_INDICES = "clip/frame_indices"
FRAMES_DECODED = "clip/frames_decoded"
LABEL = "clip/label"
LABEL_NAME = "clip/label_name"
SOURCE = "clip/source"


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
            }
        )
    )
    # Protobuf maps serialize in an unspecified order unless asked to be deterministic.
    return example.SerializeToString(deterministic=True)


def feature_spec(num_frames: int) -> dict[str, tf.io.FixedLenFeature]:
    """The parsing spec for records of `num_frames` frames."""
    return {
        FRAMES: tf.io.FixedLenFeature([num_frames], tf.string),
        FRAME_INDICES: tf.io.FixedLenFeature([num_frames], tf.int64),
        FRAMES_DECODED: tf.io.FixedLenFeature([], tf.int64),
        LABEL: tf.io.FixedLenFeature([], tf.int64),
        LABEL_NAME: tf.io.FixedLenFeature([], tf.string),
        SOURCE: tf.io.FixedLenFeature([], tf.string),
    }


def parse(serialized: tf.Tensor, num_frames: int) -> dict[str, tf.Tensor]:
    """Parse a batch of serialized records (string [N]) into a dict of [N, ...] tensors."""
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
