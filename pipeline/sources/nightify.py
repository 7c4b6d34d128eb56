"""Night conditions on real motion: a darkened, noisy copy of a video tree.

    python -m pipeline.synthetic --nightify=SRC --output_dir=DST [--night_gain=0.25 ...]

Each frame is darkened (a gamma curve, then a gain: low light crushes the mid-tones), blurred a
little (a wide-open lens, motion smear), optionally made monochrome (an infrared camera), and
given sensor noise that changes every frame: read noise of fixed strength plus shot noise that
grows with the signal. The tree's layout (class folders) and file names are kept; every video is
written as MJPEG in .avi at its own frame rate, so the noise is not smoothed away by inter-frame
coding; frames are decoded by `pipeline.frames`, shaped as a player shows them (rotation, square
pixels), and stop at the first undecodable one. The settings and the per-video seeds go to DST/nightify.json; the same settings give the
same files, and a rerun skips the videos already written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import cv2
import numpy as np

from pipeline import index
from pipeline.frames import VideoError, displayed_frames, frame_rate

SETTINGS_FILE = "nightify.json"


@dataclasses.dataclass(frozen=True)
class Night:
    gain: float = 0.25  # exposure after the gamma curve: a mid-grey daylight pixel ends near level 20
    gamma: float = 1.5  # > 1 darkens mid-tones more than highlights
    blur: float = 0.8  # Gaussian sigma in pixels (0: none)
    read_noise: float = 4.0  # std in 8-bit levels, the same everywhere, new every frame
    shot_noise: float = 0.6  # std = shot_noise * sqrt(level): brighter pixels are noisier
    monochrome: bool = False  # one grey channel, like an infrared camera
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.gain <= 1 or self.gamma <= 0:
            raise ValueError(f"night: gain must be in (0, 1] and gamma > 0, got gain {self.gain}, gamma {self.gamma}")
        if min(self.blur, self.read_noise, self.shot_noise) < 0:
            raise ValueError("night: blur and noise must be >= 0")


def darken(rgb: np.ndarray, night: Night, rng: np.random.Generator) -> np.ndarray:
    """One frame at night: uint8 [h, w, 3] RGB to uint8 [h, w, 3] RGB (grey in all three if monochrome)."""
    x = (rgb.astype(np.float32) / 255.0) ** night.gamma * night.gain * 255.0
    if night.blur:
        x = cv2.GaussianBlur(x, (0, 0), night.blur)
    if night.monochrome:
        x = np.repeat(x @ np.array([[0.299], [0.587], [0.114]], np.float32), 3, axis=2)
    noise_shape = x.shape[:2] + ((1,) if night.monochrome else (3,))
    std = np.sqrt(night.read_noise**2 + night.shot_noise**2 * np.maximum(x, 0.0))
    noise = rng.standard_normal(noise_shape, dtype=np.float32)
    x = x + std * noise
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def video_seed(night: Night, source: str) -> int:
    """A seed per video from the settings' seed and its path: reruns and file order do not matter."""
    return int.from_bytes(hashlib.sha256(f"{night.seed}:{source}".encode()).digest()[:8], "little")


def nightify_video(src: str, dst: str, night: Night, seed: int) -> int:
    """Write the night copy of `src` to `dst` (MJPEG .avi, under a temporary name until complete);
    returns the frames written."""
    fps = frame_rate(src)
    rng = np.random.default_rng(seed)
    tmp = index.partial_path(dst)
    writer = None
    count = 0
    try:
        for rgb in displayed_frames(src):  # a rotated or anamorphic source is copied as it is shown
            out = darken(rgb, night, rng)
            if writer is None:
                writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"MJPG"), fps, (out.shape[1], out.shape[0]))
                if not writer.isOpened():
                    raise VideoError(f"{dst}: OpenCV cannot write MJPEG here")
            writer.write(cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise VideoError(f"{src}: no decodable video frame")
    os.replace(tmp, dst)
    return count


def nightify_tree(src_dir: str, dst_dir: str, night: Night) -> tuple[list[str], list[str]]:
    """The night copy of every video of a class-per-folder tree; returns (written paths, problems).
    A video that cannot be read is reported and skipped; the others are still written."""
    videos = index.index_tree(src_dir)
    os.makedirs(dst_dir, exist_ok=True)
    written, problems, seeds = [], [], {}
    for v in videos:
        out = os.path.join(dst_dir, os.path.splitext(v.source)[0] + ".avi")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        seeds[v.source] = video_seed(night, v.source)
        if not os.path.exists(out):
            try:
                nightify_video(v.path, out, night, seeds[v.source])
            except VideoError as e:
                problems.append(str(e))
                continue
        written.append(out)
    record = {"source": os.path.abspath(src_dir), "night": dataclasses.asdict(night), "seeds": seeds}
    with open(os.path.join(dst_dir, SETTINGS_FILE), "w") as f:
        json.dump(record, f, indent=1)
    return written, problems
