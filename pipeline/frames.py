"""Video file to a fixed-length clip of letterboxed RGB frames.

The one place that turns a video into model pixels: `prepare` and `predict` both call
`read_clip`, so training and serving see the same frames. No TensorFlow here: this module
runs in prepare's worker processes.

Decoding uses PyAV (FFmpeg), because it exposes what OpenCV hides: the real packets, the
display rotation and (for the benchmarks issue) the container's keyframe index. OpenCV does
the resizing and JPEG encoding.
"""

from __future__ import annotations

import dataclasses
import fractions
import os
from typing import Callable, Iterator, Mapping, Sequence

import av
import cv2
import numpy as np

from pipeline import flow, sampler, storage
from pipeline.clip_spec import ClipSpec, sample_indices

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
LIVE_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://", "/dev/")


class VideoError(Exception):
    """A video that cannot give a clip: the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """A sampled clip.

    frames: uint8 [num_frames, height, width, 3], RGB.
    indices: for each frame, its index among the video's decoded frames.
    frames_decoded: how many frames the video really holds (decoded, not the container's count).
    frame_rate: frames per second of the video stream (`frame_rate`).
    """

    frames: np.ndarray
    indices: tuple[int, ...]
    frames_decoded: int
    frame_rate: float = 25.0

    @property
    def seconds(self) -> float:
        """The video's duration: the frames it really holds over its frame rate."""
        return self.frames_decoded / self.frame_rate


def is_video_file(name: str) -> bool:
    """True when the file name has a known video extension, in any case."""
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def is_live(path: str) -> bool:
    """A network stream or a capture device, rather than a file read from storage."""
    return path.startswith(LIVE_PREFIXES)


def letterbox(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad with black, centred, to the height:width aspect ratio, then resize (area interpolation).

    frame: uint8 [h, w, 3]. Returns uint8 [height, width, 3].
    """
    h, w = frame.shape[:2]
    # Integer cross-multiplication decides which side to pad, so no float rounding flips it.
    if w * height > h * width:  # too wide: pad top and bottom
        padded_h = (w * height + width // 2) // width
        top = (padded_h - h) // 2
        frame = cv2.copyMakeBorder(frame, top, padded_h - h - top, 0, 0, cv2.BORDER_CONSTANT, value=0)
    elif w * height < h * width:  # too tall: pad left and right
        padded_w = (h * width + height // 2) // height
        left = (padded_w - w) // 2
        frame = cv2.copyMakeBorder(frame, 0, 0, left, padded_w - w - left, cv2.BORDER_CONSTANT, value=0)
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame)
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def open_video(path: str) -> av.container.InputContainer:
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.FFmpegError as e:
        raise VideoError(f"{path}: cannot open as a video: {e}") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container


def _count_packets(path: str) -> int:
    """Video packets that really hold data: read from the file, not the container's header."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        count = 0
        try:
            for packet in container.demux(stream):
                if packet.size > 0:
                    count += 1
        except av.FFmpegError:
            pass  # a truncated file: what was read so far is what it holds
    return count


def _decoded_frames(path: str) -> Iterator[av.VideoFrame]:
    """Every decodable frame in order; stops quietly at the first decoder error (truncated data)."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame
        except av.FFmpegError:
            return


def _sample_aspect(path: str) -> fractions.Fraction:
    """Displayed width over height of one stored pixel: 1 unless the file says otherwise."""
    with open_video(path) as container:
        sar = container.streams.video[0].sample_aspect_ratio
    return fractions.Fraction(sar) if sar and sar > 0 else fractions.Fraction(1)


def displayed(frame: av.VideoFrame, sample_aspect: fractions.Fraction = fractions.Fraction(1)) -> np.ndarray:
    """RGB uint8 [h, w, 3] shaped and turned the way the file says it should be displayed:
    non-square pixels stretched to square ones (the narrow side grows), then the rotation."""
    rgb = frame.to_ndarray(format="rgb24")
    if sample_aspect != 1:
        h, w = rgb.shape[:2]
        size = (round(w * sample_aspect), h) if sample_aspect > 1 else (w, round(h / sample_aspect))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    quarter_turns = round(frame.rotation / 90) % 4  # degrees counter-clockwise
    if quarter_turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=quarter_turns))
    return rgb


def displayed_frames(path: str) -> Iterator[np.ndarray]:
    """Every decodable frame of `path` in order, RGB uint8 [h, w, 3] shaped as a player shows it
    (square pixels, rotation applied); for tools that copy a video (nightify)."""
    sample_aspect = _sample_aspect(path)
    for frame in _decoded_frames(path):
        yield displayed(frame, sample_aspect)


def frame_rate(path: str) -> float:
    """Frames per second of the video stream (its average rate, else FFmpeg's guess, else 25)."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate or 25)


def _converter(path: str, height: int, width: int) -> Callable[[av.VideoFrame], np.ndarray]:
    """Decoded frame of `path` to model pixels: displayed shape, letterboxed to height x width."""
    sample_aspect = _sample_aspect(path)
    return lambda frame: letterbox(displayed(frame, sample_aspect), height, width)


def _collect(path: str, plan: Sequence[int], convert: Callable[[av.VideoFrame], np.ndarray]) -> tuple[dict[int, np.ndarray], int]:
    """One sequential decode: convert the planned frames, count every frame."""
    wanted = set(plan)
    kept: dict[int, np.ndarray] = {}
    count = 0
    for index, frame in enumerate(_decoded_frames(path)):
        if index in wanted:
            kept[index] = convert(frame)
        count = index + 1
    return kept, count


def read_clip(path: str, num_frames: int, height: int, width: int) -> Clip:
    """Decode `path` and keep `num_frames` frames spread evenly over the frames it really holds."""
    return read_frames(path, lambda n: sample_indices(n, num_frames), height, width)


def read_frames(path: str, plan_for: Callable[[int], list[int]], height: int, width: int) -> Clip:
    """Decode `path` and keep the frames `plan_for(frames it really holds)` names, in that order
    (an index may repeat).

    Frame-accurate: frame i of the clip is exactly decoded frame `indices[i]` (in display
    order), bit for bit what a full sequential decode gives. The fast path (`sampler`) decodes
    only what those frames need; a file it cannot vouch for (truncated, an index that promises
    other frames than the data holds, odd timestamps) is decoded sequentially instead, and the
    plan is made on the frames really decoded. Raises VideoError naming the file when there is no
    decodable frame. A remote path (gs://...) is copied to a temporary local file first.
    """
    if storage.is_remote(path):
        with storage.local_copy(path) as local:
            try:
                return read_frames(local, plan_for, height, width)
            except VideoError as e:
                raise VideoError(str(e).replace(local, path)) from None
    fast = sampler.read_planned(path, open_video, plan_for, _converter(path, height, width))
    if fast is not None:
        kept, plan, decoded = fast
        return Clip(np.stack([kept[i] for i in plan]), tuple(plan), decoded, frame_rate(path))
    return read_frames_sequential(path, plan_for, height, width)


def read_clip_sequential(path: str, num_frames: int, height: int, width: int) -> Clip:
    """read_clip by decoding every frame in order: the reference method."""
    return read_frames_sequential(path, lambda n: sample_indices(n, num_frames), height, width)


def read_frames_sequential(path: str, plan_for: Callable[[int], list[int]], height: int, width: int) -> Clip:
    """read_frames by decoding every frame in order: the reference method, and the fallback."""
    guess = _count_packets(path)
    convert = _converter(path, height, width)
    plan = plan_for(max(guess, 1))
    kept, decoded = _collect(path, plan, convert)
    if decoded == 0:
        raise VideoError(f"{path}: no decodable video frame")
    if decoded != guess:
        plan = plan_for(decoded)
        kept, decoded_again = _collect(path, plan, convert)
        if decoded_again != decoded or not set(plan) <= kept.keys():
            raise VideoError(f"{path}: decoder gave {decoded} then {decoded_again} frames; unstable file")
    return Clip(np.stack([kept[i] for i in plan]), tuple(plan), decoded, frame_rate(path))


def encode_jpeg(frames, quality: int) -> list[bytes]:
    """JPEG-encode each RGB frame (uint8 [H, W, 3]) or grey image (uint8 [H, W]), e.g. frames:
    uint8 [T, H, W, 3]. Deterministic for fixed input."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    out = []
    for frame in frames:
        ok, buf = cv2.imencode(".jpg", frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise VideoError(f"JPEG encoding failed for a frame of shape {frame.shape}")
        out.append(buf.tobytes())
    return out


@dataclasses.dataclass(frozen=True)
class EncodedClip:
    """A clip as prepare stores it: a JPEG per stored frame (ClipSpec order), where each came
    from, and the video's length (frames, seconds)."""

    jpegs: tuple[bytes, ...]
    indices: tuple[int, ...]
    frames_decoded: int
    seconds: float = 0.0


def read_encoded_clip(job: tuple[str, ClipSpec]) -> EncodedClip:
    """prepare's (and predict's) per-video task: (path, spec) to the stored frames of the clip
    the spec describes, JPEG-encoded at its quality. Runs in a worker process."""
    path, spec = job
    clip = read_frames(path, spec.reads, spec.height, spec.width)
    n = clip.frames_decoded
    jpegs = tuple(encode_jpeg(stored_images(dict(zip(clip.indices, clip.frames)), spec, n), spec.jpeg_quality))
    return EncodedClip(jpegs, tuple(spec.plan(n)), n, clip.seconds)


def stored_images(frame_at: Mapping[int, np.ndarray], spec: ClipSpec, num_available: int) -> list[np.ndarray]:
    """The images a record stores, in spec.plan(num_available) order, from the frames spec.reads
    names (`frame_at`: decoded index -> letterboxed RGB frame): the frames themselves, and with
    spec.flow each time step's flow images (x, y: grey) from its frame to its partner (each end the
    mean of spec.flow_average frames around it)."""
    plan = spec.plan(num_available)
    images = [frame_at[i] for i in plan]
    if spec.flow:
        for start in range(0, len(images), spec.frames_per_step):
            ends = [[frame_at[i] for i in spec.averaged(plan[start + p], num_available)] for p in (0, 1)]
            images[start + 2], images[start + 3] = flow.flow_images(ends[0], ends[1], spec.next_gap)
    return images
