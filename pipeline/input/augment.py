"""Training augmentation for night footage, the same for every frame of a clip.

One random draw per clip (never per frame, which would fake motion): horizontal flip,
brightness, contrast and gamma jitter (night video varies most in exposure and sensor gain;
applied as one 256-level table to the clip's pixels), and a small crop resized back to the
frame size. Stateless random ops with a seed per clip,
so a seeded pipeline augments the same way on every run.

A strength in (0, 1] scales every range (1: the full ranges below; 0.5: half the crop, half
the brightness shift, the square root of the contrast and gamma factors); the flip is kept.
"""

from __future__ import annotations

import math

import tensorflow as tf

MIN_CROP = 0.85  # crop side, as a fraction of the frame, at strength 1
BRIGHTNESS = 0.08  # added, on [0, 1] pixels
CONTRAST = (0.75, 1.3)  # factors: scaled on a log scale
GAMMA = (0.7, 1.4)  # < 1 brightens dark frames


def ranges(strength: float) -> dict[str, tuple[float, float]]:
    """The draw ranges at a strength in (0, 1]."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"augmentation strength must be in (0, 1], got {strength}")
    factor = lambda r: (math.exp(strength * math.log(r[0])), math.exp(strength * math.log(r[1])))  # noqa: E731
    return {
        "crop": (1.0 - strength * (1.0 - MIN_CROP), 1.0),
        "brightness": (-strength * BRIGHTNESS, strength * BRIGHTNESS),
        "contrast": factor(CONTRAST),
        "gamma": factor(GAMMA),
    }


def _exposure_table(frames: tf.Tensor, gamma: tf.Tensor, contrast: tf.Tensor, brightness: tf.Tensor) -> tf.Tensor:
    """The exposure jitter as a table, uint8 level -> float32 level in [0, 1]: gamma, then contrast
    about the clip's mean level after gamma, then brightness. The mean comes from the clip's exact
    histogram: a float mean over a whole clip, split over threads, rounds differently from run to
    run (and the per-pixel arithmetic, fused or not, with it), which made --deterministic training
    runs end apart; a 256-entry table and a gather do not."""
    levels = tf.range(256, dtype=tf.float64) / 255.0
    curve = tf.pow(levels, tf.cast(gamma, tf.float64))
    counts = tf.math.bincount(tf.reshape(tf.cast(frames, tf.int32), [-1]), minlength=256, maxlength=256, dtype=tf.int64)
    mean = tf.reduce_sum(tf.cast(counts, tf.float64) * curve) / tf.cast(tf.size(frames), tf.float64)
    table = (curve - mean) * tf.cast(contrast, tf.float64) + mean + tf.cast(brightness, tf.float64)
    return tf.cast(tf.clip_by_value(table, 0.0, 1.0), tf.float32)


def augment_clip(frames: tf.Tensor, seed: tf.Tensor, strength: float = 1.0, flow: bool = False) -> tf.Tensor:
    """frames: uint8 [T, H, W, C] (C = 3, or 6 with each frame's partner: both get the same draw;
    12 with flow: the last 6 channels are the flow's x and y images, which the flip and crop move
    and rescale as a flow field and the exposure jitter leaves alone); seed: int64 [2].
    Returns uint8 [T, H, W, C]."""
    r = ranges(strength)
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    shape = tf.shape(frames)
    h, w = shape[1], shape[2]
    draw = lambda i, bounds: tf.random.stateless_uniform([], seeds[i], *bounds)  # noqa: E731
    images = frames[..., :6] if flow else frames
    table = _exposure_table(images, draw(3, r["gamma"]), draw(4, r["contrast"]), draw(5, r["brightness"]))
    x = tf.gather(table, tf.cast(images, tf.int32))
    if flow:  # flow bytes as they are (the table would change them): centred on 128, in units of 1/255
        x = tf.concat([x, tf.cast(frames[..., 6:], tf.float32) / 255.0], axis=-1)
    flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
    x = tf.cond(flip, lambda: tf.reverse(x, axis=[2]), lambda: x)
    scale = draw(1, r["crop"])
    offset = tf.random.stateless_uniform([2], seeds[2], 0.0, 1.0) * (1.0 - scale)
    box = tf.stack([offset[0], offset[1], offset[0] + scale, offset[1] + scale])
    t = tf.shape(x)[0]
    x = tf.image.crop_and_resize(x, tf.tile(box[None], [t, 1]), tf.range(t), tf.stack([h, w]))
    if flow:
        x = tf.concat([x[..., :6], _moved_flow(x[..., 6:], flip, scale)], axis=-1)
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)


def _moved_flow(images: tf.Tensor, flip: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Flow images (x: channels 0-2, y: 3-5; byte / 255, 128 / 255 = no motion) after the frames
    were flipped and a crop of side `scale` was resized to the frame: the flip turns x around, the
    zoom multiplies every displacement by 1 / scale. Bytes stay clipped to [1, 255] as stored."""
    centre = 128.0 / 255.0
    sign = tf.where(flip, -1.0, 1.0)
    factors = tf.stack([sign, sign, sign, 1.0, 1.0, 1.0]) / scale
    return tf.clip_by_value(centre + (images - centre) * factors, 1.0 / 255.0, 1.0)
