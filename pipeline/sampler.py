"""Decode only what the planned frames need: a sampler faster than decoding the whole video.

1. Read the packets without decoding them (cheap): their count is the real frame count, their
   presentation times give display order, their keyframe flags say where decoding can start.
2. Plan the T frames (evenly spread over display order) and, in decode order, the stretch each
   needs: from the last keyframe at or before it.
3. Decode stretch by stretch. Jump (seek) to a stretch's keyframe when it lies ahead of where
   the decoder is, instead of decoding everything in between; within a stretch, tell the decoder
   to skip non-reference frames (nothing else depends on them) unless one is a planned frame.

Every kept frame is exactly the planned frame, bit for bit what a full sequential decode gives:
reference frames are all decoded from their keyframe. When the file does not allow this (no
presentation times, duplicates, a frame that never comes out, a seek that lands elsewhere),
`read_planned` returns None and the caller decodes sequentially.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Callable

import av
import numpy as np


@dataclasses.dataclass(frozen=True)
class PacketIndex:
    """Per packet, in decode order: presentation time and keyframe flag."""

    pts: tuple[int, ...]
    keyframe: tuple[bool, ...]

    @property
    def display_order(self) -> list[int]:
        """Presentation times sorted: display index -> pts."""
        return sorted(self.pts)


def read_index(container: av.container.InputContainer) -> PacketIndex | None:
    """Demux every video packet (no decoding). None when the file is not plainly consistent:
    a read error, a count other than the container's, missing or repeated presentation times."""
    stream = container.streams.video[0]
    pts, key = [], []
    try:
        for packet in container.demux(stream):
            if packet.size > 0:
                pts.append(packet.pts)
                key.append(bool(packet.is_keyframe))
    except av.FFmpegError:
        return None  # truncated or damaged: only a full decode can tell what it holds
    if stream.frames and stream.frames != len(pts):
        return None  # the index promises other frames than the data holds
    if not pts or any(p is None for p in pts) or len(set(pts)) != len(pts) or not key[0]:
        return None
    return PacketIndex(tuple(pts), tuple(key))


class _Fallback(Exception):
    """The fast path cannot guarantee exact frames for this file."""


def read_planned(
    container: av.container.InputContainer,
    plan_for: Callable[[int], list[int]],
    convert: Callable[[av.VideoFrame], np.ndarray],
) -> tuple[dict[int, np.ndarray], list[int], int] | None:
    """Decode only the frames `plan_for(num_frames)` asks for, from a freshly opened `container`.

    Returns ({display index: converted frame}, plan, number of frames), or None to ask for a
    sequential decode instead.
    """
    index = read_index(container)
    if index is None:
        return None
    display = index.display_order
    plan = plan_for(len(display))
    wanted = {display[i]: i for i in set(plan)}  # pts -> display index
    try:
        kept = _decode_wanted(container, index, wanted, convert)  # starts with a seek
    except (_Fallback, av.FFmpegError):
        return None
    return kept, plan, len(display)


# Frames a decoder may hold back for reordering before it gives out the goal (H.264 allows at most
# 16): a goal still missing this far past it will never come out, so the file is decoded whole.
_REORDER_LIMIT = 64


class _Decoder:
    """One video's decoder and where it stands in decode order: `at` is the position of the next
    packet it will be fed, `todo` the planned positions not yet out (frames leave a decoder in
    display order, so a fed frame may still be inside it), `kept` the converted planned frames.

    Three steps, each safe for exactness:
    - seek: jump to a keyframe and flush; what follows decodes exactly as from the file's start,
      since nothing after a keyframe refers to frames before it.
    - feed: decode one packet; a packet no planned frame is made from is decoded as NONREF, which
      skips it only when no later frame refers to it, so every reference frame is still exact.
    - drain: flush the decoder, giving out every frame it holds back; after it the decoder only
      starts again with a seek.
    """

    def __init__(self, container, index: PacketIndex, wanted: dict[int, int], convert) -> None:
        self.container = container
        self.stream = container.streams.video[0]
        self.ctx = self.stream.codec_context
        self.ctx.thread_type = "SLICE"  # frame threading would apply skip settings late; slices are safe
        self.pts = index.pts
        self.position = {p: i for i, p in enumerate(index.pts)}  # pts -> decode position
        self.keys = [i for i, k in enumerate(index.keyframe) if k]
        self.wanted = wanted  # pts -> display index
        self.convert = convert
        self.kept: dict[int, np.ndarray] = {}
        self.todo = sorted(self.position[p] for p in wanted)
        self.packets = None  # demux iterator: None until a seek, and again after a drain
        self.pending: list = []  # the packet a seek read to check where it landed
        self.at = 0

    def keyframe_before(self, position: int) -> int:
        """The last keyframe at or before `position`: where decoding it can start."""
        return self.keys[bisect.bisect_right(self.keys, position) - 1]

    def is_out(self, position: int) -> bool:
        return self.wanted[self.pts[position]] in self.kept

    def seek(self, start: int) -> None:
        self.container.seek(self.pts[start], stream=self.stream, backward=True)
        self.ctx.flush_buffers()
        self.packets = (p for p in self.container.demux(self.stream) if p.size > 0)
        first = next(self.packets, None)
        if first is None or self.position.get(first.pts, start + 1) > start:
            raise _Fallback  # the seek landed after the keyframe we need
        self.at = self.position[first.pts]
        self.pending = [first]

    def feed(self) -> bool:
        """Decode the next packet; False at the end of the stream."""
        packet = self.pending.pop() if self.pending else next(self.packets, None)
        if packet is None:
            return False
        self.ctx.skip_frame = "DEFAULT" if packet.pts in self.wanted else "NONREF"
        self._take(self.ctx.decode(packet))
        self.at = self.position.get(packet.pts, self.at) + 1
        return True

    def drain(self) -> None:
        self._take(self.ctx.decode(None))
        self.packets, self.pending = None, []

    def should_drain(self, goal: int) -> bool:
        """With the goal fed but held back (at > goal): drain now rather than feed on, when no
        other planned frame is inside the decoder and the next one lies past a keyframe ahead
        of `at` (it needs a seek anyway, and the frames in between would be decoded for nothing)."""
        if any(t < self.at for t in self.todo if t != goal):
            return False  # another planned frame is inside the decoder too: feeding brings it out
        after = next((t for t in self.todo if t != goal), None)  # todo is sorted: the next planned frame
        return after is None or self.keyframe_before(after) > self.at

    def decode_until_out(self, goal: int) -> None:
        """Feed from where the decoder stands until the goal has come out."""
        while not self.is_out(goal):
            if self.at > goal and self.should_drain(goal) or not self.feed():
                self.drain()  # the goal is inside the decoder, or the stream ended: flush it out
                if not self.is_out(goal):
                    raise _Fallback
            elif self.at > goal + _REORDER_LIMIT and not self.is_out(goal):
                raise _Fallback

    def _take(self, frames) -> None:
        for frame in frames:
            if frame.pts in self.wanted and self.wanted[frame.pts] not in self.kept:
                self.kept[self.wanted[frame.pts]] = self.convert(frame)
        self.todo = [t for t in self.todo if not self.is_out(t)]


def _decode_wanted(container, index: PacketIndex, wanted: dict[int, int], convert) -> dict[int, np.ndarray]:
    """The planned frames, decoding from the keyframe before each one not yet reached, in decode
    order: one seek per stretch that lies ahead of the decoder, none within a stretch."""
    decoder = _Decoder(container, index, wanted, convert)
    while decoder.todo:
        goal = decoder.todo[0]
        start = decoder.keyframe_before(goal)
        if decoder.packets is None or start > decoder.at:
            if decoder.packets is not None:
                decoder.drain()  # frames still inside the decoder come out before the jump
                if decoder.is_out(goal):
                    continue
            decoder.seek(start)
        decoder.decode_until_out(goal)
    return decoder.kept
