"""Optical flow from a frame to its partner `gap` frames later, as two grey images (TSN's flow images).

OpenCV's DIS (dense inverse search, the "medium" preset) on the grey letterboxed frames, the
size the clip is stored at; each end may be the mean of a few frames around it (ClipSpec.flow_average),
which averages out sensor noise that is new in every frame. Each component is quantised to a byte: 128 + 127 * f / bound, clipped
to [1, 255], where f is the displacement in pixels and `bound` = BOUND_FRACTION x the frame width
x the gap (2 pixels per frame of gap at a width of 80; walking moves about 1, running about 2, per
frame at 25 fps there), so a byte means the same speed whatever the gap.
Stored as grey JPEGs like the frames, so the records, the reader and the JPEG round trip stay one.
No TensorFlow here: prepare's workers use this module.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

BOUND_FRACTION = 0.025  # of the frame width, per frame of gap: the displacement stored as +-127
_dis = None


def _estimator():
    global _dis  # one per process: creating it costs more than a small frame's flow
    if _dis is None:
        _dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _dis


def bound(width: int, gap: int = 1) -> float:
    """The displacement, in pixels, that the bytes 255 and 1 stand for (+ and -)."""
    return BOUND_FRACTION * width * gap


def mean_image(images: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 images of one shape -> their mean, rounded, uint8 (one image: itself). The flow's
    averaged ends and ClipSpec.frame_average's stored frames are both this mean."""
    if len(images) == 1:
        return images[0]
    return np.rint(np.mean(np.stack(images).astype(np.float32), axis=0)).astype(np.uint8)


def _grey(frames: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 RGB [H, W, 3] frames -> their mean grey image, uint8 [H, W] (rounded)."""
    return mean_image([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def flow_images(start: Sequence[np.ndarray], end: Sequence[np.ndarray], gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB [H, W, 3] frames around a kept frame (`start`: one, or the ones its mean is taken
    over) and around its partner, `gap` frames later (`end`) -> (x, y) uint8 [H, W]: the quantised
    flow from the one mean grey image to the other."""
    field = _estimator().calc(_grey(start), _grey(end), None)
    scale = 127.0 / bound(start[0].shape[1], gap)
    quantised = np.clip(np.rint(128.0 + field * scale), 1, 255).astype(np.uint8)
    return quantised[..., 0], quantised[..., 1]


def displacement(images: np.ndarray, width: int, gap: int = 1) -> np.ndarray:
    """The inverse of the quantisation: uint8 flow bytes -> float32 pixels over the gap."""
    return (images.astype(np.float32) - 128.0) * (bound(width, gap) / 127.0)
