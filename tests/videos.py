"""Test videos made on the spot. Frame i is a flat grey of level `level(i)`, so a sampling bug
shows as a wrong number, not a blurry image."""

from __future__ import annotations

import fractions
import os

import av
import cv2
import numpy as np


def level(i: int) -> int:
    return 8 + 8 * (i % 30)


def index_of(frame: np.ndarray) -> int:
    """The frame index a flat frame encodes (inverse of `level`, for up to 30 frames)."""
    return int(round((float(frame.mean()) - 8) / 8))


def flat_frames(n: int, height: int = 48, width: int = 64, noise: int = 0) -> list[np.ndarray]:
    """n frames of level(i); `noise` adds zero-mean texture so the encoder spends real bytes."""
    rng = np.random.default_rng(n)
    out = []
    for i in range(n):
        frame = np.full((height, width, 3), level(i), np.int16)
        if noise:
            frame += rng.integers(-noise, noise + 1, frame.shape, dtype=np.int16)
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def write_opencv(path: str, frames: list[np.ndarray], fps: float = 15, fourcc: str = "mp4v") -> str:
    h, w = frames[0].shape[:2]
    color = frames[0].ndim == 3
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), isColor=color)
    assert writer.isOpened(), path
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def write_h264(
    path: str,
    frames: list[np.ndarray],
    fps: int = 30,
    gop: int = 12,
    bframes: int = 2,
    rotation: int = 0,
    sample_aspect: fractions.Fraction | None = None,
    faststart: bool = False,
    pts_ms: list[int] | None = None,
) -> str:
    """H.264 (libx264, B-frames) in mp4/mkv with PyAV. pts_ms gives a variable frame rate;
    sample_aspect makes the pixels non-square (displayed width over height of one pixel)."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(path, "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = bframes
        stream.options = {"crf": "10", "sc_threshold": "0"}
        if pts_ms is not None:
            stream.codec_context.time_base = fractions.Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        if sample_aspect is not None:
            stream.codec_context.sample_aspect_ratio = sample_aspect
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: str, fraction: float) -> str:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * fraction))
    return path
