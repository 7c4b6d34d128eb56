"""Video file to a fixed-length clip of letterboxed RGB frames.

The one place that turns a video into model pixels: `prepare` and `predict` both call
`read_clip`, so training and serving see the same frames. No TensorFlow here: this module
runs in prepare's worker processes.

Decoding uses PyAV (FFmpeg), because it exposes what OpenCV hides: the real packets, the
display rotation and (for the benchmarks issue) the container's keyframe index. FFmpeg's scaler
turns a decoded frame into model pixels (`model_pixels`); OpenCV does the JPEG encoding.
"""

from __future__ import annotations

import dataclasses
import fractions
import os
from typing import Callable, Iterator, Mapping, Sequence

import av
import cv2
from av.video.reformatter import VideoReformatter
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


def sample_aspect(stream: av.video.stream.VideoStream) -> fractions.Fraction:
    """Displayed width over height of one stored pixel: 1 unless the stream says otherwise."""
    sar = stream.sample_aspect_ratio
    return fractions.Fraction(sar) if sar and sar > 0 else fractions.Fraction(1)


def _quarter_turns(frame: av.VideoFrame) -> int:
    """The display rotation, in quarter turns counter-clockwise."""
    return round(frame.rotation / 90) % 4


def displayed(frame: av.VideoFrame, sample_aspect: fractions.Fraction = fractions.Fraction(1)) -> np.ndarray:
    """RGB uint8 [h, w, 3] shaped and turned the way the file says it should be displayed:
    non-square pixels stretched to square ones (the narrow side grows), then the rotation."""
    rgb = frame.to_ndarray(format="rgb24")
    if sample_aspect != 1:
        h, w = rgb.shape[:2]
        size = (round(w * sample_aspect), h) if sample_aspect > 1 else (w, round(h / sample_aspect))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    turns = _quarter_turns(frame)
    if turns:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
    return rgb


def displayed_size(frame: av.VideoFrame, sample_aspect: fractions.Fraction = fractions.Fraction(1)) -> tuple[int, int]:
    """(height, width) of the frame as `displayed` shapes it."""
    h, w = frame.height, frame.width
    if sample_aspect > 1:
        w = round(w * sample_aspect)
    elif sample_aspect < 1:
        h = round(h / sample_aspect)
    return (w, h) if _quarter_turns(frame) % 2 else (h, w)


def fitted_size(h: int, w: int, height: int, width: int) -> tuple[int, int]:
    """(rows, columns) an h x w picture takes inside height x width at its own aspect ratio: the
    whole of one side, the other rounded (integer cross-multiplication, so no float rounding
    decides which side is full)."""
    if w * height > h * width:  # too wide: full width, bars top and bottom
        return max(1, (h * width + w // 2) // w), width
    if w * height < h * width:  # too tall: full height, bars left and right
        return height, max(1, (w * height + h // 2) // h)
    return height, width


_reformatter = None


def _scaler() -> VideoReformatter:
    """One per process: it keeps FFmpeg's scaler set up between frames of the same size, which
    a frame's own `reformat` sets up anew every time (2 to 3 times the cost at 720p)."""
    global _reformatter
    if _reformatter is None:
        _reformatter = VideoReformatter()
    return _reformatter


def model_pixels(frame: av.VideoFrame, height: int, width: int, sample_aspect: fractions.Fraction = fractions.Fraction(1)) -> np.ndarray:
    """A decoded frame as the model sees it: uint8 RGB [height, width, 3], the displayed picture
    (square pixels, rotation) scaled to fit at its own aspect ratio (area averaging) and centred on
    black bars. FFmpeg's scaler converts the colours and scales in one pass from the decoder's own
    planes: a fifth of the time of converting at the full size and resizing after (BUILD_NOTES,
    "prepare's cost"), where the pixels differ from that by 0.7 of a level on average."""
    turns = _quarter_turns(frame)
    rows, cols = fitted_size(*displayed_size(frame, sample_aspect), height, width)
    scaled_h, scaled_w = (cols, rows) if turns % 2 else (rows, cols)
    rgb = _scaler().reformat(frame, width=scaled_w, height=scaled_h, format="rgb24", interpolation="AREA").to_ndarray()
    if turns:
        rgb = np.rot90(rgb, k=turns)
    if (rows, cols) == (height, width):
        return np.ascontiguousarray(rgb)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - rows) // 2, (width - cols) // 2
    out[top:top + rows, left:left + cols] = rgb
    return out


def displayed_frames(path: str) -> Iterator[np.ndarray]:
    """Every decodable frame of `path` in order, RGB uint8 [h, w, 3] shaped as a player shows it
    (square pixels, rotation applied); for tools that copy a video (nightify)."""
    with open_video(path) as container:
        aspect = sample_aspect(container.streams.video[0])
    for frame in _decoded_frames(path):
        yield displayed(frame, aspect)


def stream_rate(stream: av.video.stream.VideoStream) -> float:
    """Frames per second of `stream`: its average rate, else FFmpeg's guess, else 25."""
    return float(stream.average_rate or stream.guessed_rate or 25)


def frame_rate(path: str) -> float:
    """Frames per second of the video stream (its average rate, else FFmpeg's guess, else 25)."""
    with open_video(path) as container:
        return stream_rate(container.streams.video[0])


def _converter(stream: av.video.stream.VideoStream, height: int, width: int) -> Callable[[av.VideoFrame], np.ndarray]:
    """Decoded frame of `stream` to model pixels."""
    aspect = sample_aspect(stream)
    return lambda frame: model_pixels(frame, height, width, aspect)


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
    (an index may repeat): `decode_frames` stacked into a Clip."""
    return decode_frames(path, plan_for, height, width).clip()


@dataclasses.dataclass(frozen=True)
class DecodedFrames:
    """The frames a plan names, each once: frame_at maps a decoded-frame index to its model pixels
    (uint8 [height, width, 3], RGB); plan is the plan made on the frames the video really holds."""

    frame_at: Mapping[int, np.ndarray]
    plan: tuple[int, ...]
    frames_decoded: int
    frame_rate: float

    def clip(self) -> Clip:
        return Clip(np.stack([self.frame_at[i] for i in self.plan]), self.plan, self.frames_decoded, self.frame_rate)


def decode_frames(path: str, plan_for: Callable[[int], list[int]], height: int, width: int) -> DecodedFrames:
    """Decode the frames `plan_for(frames `path` really holds)` names.

    Frame-accurate: the frame at index i is exactly decoded frame i (in display order), bit for
    bit what a full sequential decode gives. The fast path (`sampler`) decodes only what those
    frames need; a file it cannot vouch for (truncated, an index that promises other frames than
    the data holds, odd timestamps) is decoded sequentially instead, and the plan is made on the
    frames really decoded. Raises VideoError naming the file when there is no decodable frame. A
    remote path (gs://...) is copied to a temporary local file first.
    """
    if storage.is_remote(path):
        with storage.local_copy(path) as local:
            try:
                return decode_frames(local, plan_for, height, width)
            except VideoError as e:
                raise VideoError(str(e).replace(local, path)) from None
    with open_video(path) as container:  # opened once: the index, the shape and rate, the decode
        stream = container.streams.video[0]
        rate = stream_rate(stream)
        fast = sampler.read_planned(container, plan_for, _converter(stream, height, width))
    if fast is not None:
        kept, plan, decoded = fast
        return DecodedFrames(kept, tuple(plan), decoded, rate)
    return decode_sequential(path, plan_for, height, width)


def read_clip_sequential(path: str, num_frames: int, height: int, width: int) -> Clip:
    """read_clip by decoding every frame in order: the reference method."""
    return read_frames_sequential(path, lambda n: sample_indices(n, num_frames), height, width)


def read_frames_sequential(path: str, plan_for: Callable[[int], list[int]], height: int, width: int) -> Clip:
    """read_frames by decoding every frame in order: the reference method."""
    return decode_sequential(path, plan_for, height, width).clip()


def decode_sequential(path: str, plan_for: Callable[[int], list[int]], height: int, width: int) -> DecodedFrames:
    """decode_frames by decoding every frame in order: the reference method, and the fallback."""
    guess = _count_packets(path)
    with open_video(path) as container:
        stream = container.streams.video[0]
        convert, rate = _converter(stream, height, width), stream_rate(stream)
    plan = plan_for(max(guess, 1))
    kept, decoded = _collect(path, plan, convert)
    if decoded == 0:
        raise VideoError(f"{path}: no decodable video frame")
    if decoded != guess:
        plan = plan_for(decoded)
        kept, decoded_again = _collect(path, plan, convert)
        if decoded_again != decoded or not set(plan) <= kept.keys():
            raise VideoError(f"{path}: decoder gave {decoded} then {decoded_again} frames; unstable file")
    return DecodedFrames(kept, tuple(plan), decoded, rate)


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
    decoded = decode_frames(path, spec.reads, spec.height, spec.width)
    n = decoded.frames_decoded
    jpegs = tuple(encode_jpeg(stored_images(decoded.frame_at, spec, n), spec.jpeg_quality))
    return EncodedClip(jpegs, tuple(spec.plan(n)), n, n / decoded.frame_rate)


def stored_images(frame_at: Mapping[int, np.ndarray], spec: ClipSpec, num_available: int) -> list[np.ndarray]:
    """The images a record stores, in spec.plan(num_available) order, from the frames spec.reads
    names (`frame_at`: decoded index -> letterboxed RGB frame): the frames themselves (each the
    rounded mean of spec.frame_average frames around it), and with spec.flow each time step's flow
    images (x, y: grey) from its frame to its partner (each end the mean of spec.flow_average
    frames around it)."""
    plan = spec.plan(num_available)
    pictures = {"frame", "next"}  # the flow's places are filled below
    images = [flow.mean_image([frame_at[j] for j in spec.frame_sources(i, num_available)]) if spec.member(p) in pictures else None
              for p, i in enumerate(plan)]
    if spec.flow:
        for start in range(0, len(images), spec.frames_per_step):
            ends = [[frame_at[i] for i in spec.averaged(plan[start + p], num_available)] for p in (0, 1)]
            images[start + 2], images[start + 3] = flow.flow_images(ends[0], ends[1], spec.next_gap)
    return images
