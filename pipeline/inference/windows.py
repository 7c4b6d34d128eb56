"""Sliding windows over a video of any length, or a live source, in one sequential decode.

Each window of `window_frames` frames is sampled exactly as prepare samples a clip of that many
frames (ClipSpec.plan and reads, letterbox, flow, JPEG at the training data's quality), so a window sees
what training saw; window k starts at frame k * stride_frames. The decode runs once, front to
back: a frame is converted only when some window takes it and is dropped when no later window
can, so memory stays flat on an hour of video. Times are frame index over the stream's frame rate.

What goes wrong on the way (a stall longer than the read timeout, a decoder error, the frame size
changing, an input shorter than one window) is kept as a line in `WindowReader.events`; the
windows read until then stand. Opening a source that cannot be opened raises VideoError.
No TensorFlow here: a LiteRT or ONNX timeline runs without it.
"""

from __future__ import annotations

import dataclasses
import fractions
from typing import Iterator

import av
import numpy as np

from pipeline import frames, storage
from pipeline.clip_spec import ClipSpec
from pipeline.frames import is_live

@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where the windows fall, in frames of a stream of `fps` frames per second."""

    fps: float
    window_frames: int
    stride_frames: int

    @classmethod
    def of(cls, fps: float, window_seconds: float, stride_seconds: float) -> "Geometry":
        if window_seconds <= 0 or stride_seconds <= 0:
            raise ValueError(f"window and stride must be positive seconds, got {window_seconds} and {stride_seconds}")
        return cls(fps, max(1, round(window_seconds * fps)), max(1, round(stride_seconds * fps)))

    def windows_holding(self, frame: int) -> range:
        """The windows whose span [k * stride, k * stride + window) holds `frame`."""
        first = max(0, (frame - self.window_frames) // self.stride_frames + 1)
        return range(first, frame // self.stride_frames + 1)


@dataclasses.dataclass(frozen=True)
class Window:
    """One window: its place in the input and the clip prepare would store for it."""

    index: int
    start: float  # seconds
    end: float
    first_frame: int
    num_frames: int
    clip: frames.EncodedClip
    source: str

    @property
    def record(self) -> bytes:
        """The record prepare would write for this clip (label -1)."""
        from pipeline import records

        return records.unlabelled(self.clip, self.source)


class WindowReader:
    """Iterate the windows of `path` (a file, a gs:// object, or a live source PyAV opens)."""

    def __init__(self, path: str, spec: ClipSpec, window_seconds: float, stride_seconds: float, read_timeout: float = 10.0):
        self.path, self.spec = path, spec
        self.window_seconds, self.stride_seconds, self.read_timeout = window_seconds, stride_seconds, read_timeout
        self.events: list[str] = []  # what went wrong or was unusual, one line each
        self.failed = False  # the input stopped before its end (stall, decoder error)
        self.geometry: Geometry | None = None

    def __iter__(self) -> Iterator[Window]:
        if storage.is_remote(self.path) and not is_live(self.path):  # gs://: read from a local copy, named as given
            with storage.local_copy(self.path) as local:
                yield from self._read(local)
        else:
            yield from self._read(self.path)

    def _read(self, path: str) -> Iterator[Window]:
        with open_source(path, self.read_timeout) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            self.geometry = Geometry.of(frames.stream_rate(stream), self.window_seconds, self.stride_seconds)
            yield from self._windows(self._decoded(container, stream), frames.sample_aspect(stream))

    def _decoded(self, container, stream) -> Iterator[av.VideoFrame]:
        """Every frame in order; after a read or decoder error, the frames the decoder still holds."""
        try:
            for packet in container.demux(stream):
                yield from packet.decode()
        except (av.FFmpegError, OSError) as e:
            self.failed = True
            self.events.append(f"{self.path}: the input stopped: {e}")
        try:
            yield from stream.codec_context.decode(None)  # flush (the demuxer's end gives an empty packet too)
        except (av.FFmpegError, OSError):
            pass
        if is_live(self.path) and not self.failed:
            self.events.append(f"{self.path}: the stream ended")

    def _windows(self, decoded: Iterator[av.VideoFrame], aspect: fractions.Fraction) -> Iterator[Window]:
        g = self.geometry
        offsets = set(self.spec.reads(g.window_frames))
        kept: dict[int, np.ndarray] = {}
        size, emitted, count = None, 0, 0
        for i, frame in enumerate(decoded):
            count = i + 1
            if size is not None and (frame.width, frame.height) != size:
                self.events.append(f"{self.path}: frame size changed from {size[0]}x{size[1]} to {frame.width}x{frame.height} "
                                   f"at {i / g.fps:.1f} s; later frames are letterboxed from the new size")
            size = (frame.width, frame.height)
            wanted = i < g.window_frames or any(i - k * g.stride_frames in offsets for k in g.windows_holding(i))
            if wanted:
                kept[i] = frames.model_pixels(frame, self.spec.height, self.spec.width, aspect)
            if emitted * g.stride_frames + g.window_frames - 1 == i:
                yield self._window(emitted, emitted * g.stride_frames, g.window_frames, kept)
                emitted += 1
                for j in [j for j in kept if j < emitted * g.stride_frames]:
                    del kept[j]
        if emitted == 0 and count:
            self.events.append(f"{self.path}: {count / g.fps:.1f} s ({count} frames) is shorter than one "
                               f"{self.window_seconds:g} s window; classified as one window")
            yield self._window(0, 0, count, kept)
        elif emitted == 0:
            self.failed = True
            self.events.append(f"{self.path}: no decodable video frame")

    def _window(self, index: int, first: int, n: int, kept: dict[int, np.ndarray]) -> Window:
        plan = self.spec.plan(n)
        images = frames.stored_images({o: kept[first + o] for o in self.spec.reads(n)}, self.spec, n)
        jpegs = tuple(frames.encode_jpeg(images, self.spec.jpeg_quality))
        fps = self.geometry.fps
        clip = frames.EncodedClip(jpegs, tuple(first + o for o in plan), n, n / fps)
        return Window(index, first / fps, (first + n) / fps, first, n, clip, self.path)


def open_source(path: str, read_timeout: float) -> av.container.InputContainer:
    """Open a file as prepare does, or a live source with a timeout on opening and on each read
    (a capture device through video4linux). VideoError names the source when it cannot be opened."""
    if not is_live(path):
        return frames.open_video(path)
    try:
        container = av.open(path, format="v4l2" if path.startswith("/dev/video") else None,
                            timeout=(read_timeout, read_timeout), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as e:
        raise frames.VideoError(f"{path}: cannot open the stream: {e}") from None
    if not container.streams.video:
        container.close()
        raise frames.VideoError(f"{path}: no video stream")
    return container
