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
    path: str,
    container_opener: Callable[[str], av.container.InputContainer],
    plan_for: Callable[[int], list[int]],
    convert: Callable[[av.VideoFrame], np.ndarray],
) -> tuple[dict[int, np.ndarray], list[int], int] | None:
    """Decode only the frames `plan_for(num_frames)` asks for.

    Returns ({display index: converted frame}, plan, number of frames), or None to ask for a
    sequential decode instead.
    """
    with container_opener(path) as container:
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


def _jump_next(todo: list[int], goal: int, keys: list[int], at: int) -> bool:
    """True when no planned frame after `goal` can be reached by decoding on from `at`."""
    later = [t for t in todo if t > goal and t >= at]
    if any(t < at for t in todo if t != goal):
        return False  # another planned frame is already inside the decoder: keep decoding
    return not later or keys[bisect.bisect_right(keys, later[0]) - 1] > at


def _decode_wanted(container, index: PacketIndex, wanted: dict[int, int], convert) -> dict[int, np.ndarray]:
    stream = container.streams.video[0]
    ctx = stream.codec_context
    ctx.thread_type = "SLICE"  # frame threading would apply skip settings late; slices are safe
    position = {p: i for i, p in enumerate(index.pts)}  # pts -> decode position
    keys = [i for i, k in enumerate(index.keyframe) if k]
    todo = sorted(position[p] for p in wanted)  # decode positions still to produce
    kept: dict[int, np.ndarray] = {}
    packets = None  # demux iterator; None until the first seek or read
    at = 0  # decode position of the next packet the iterator gives

    def take(frames) -> None:
        for frame in frames:
            if frame.pts in wanted and wanted[frame.pts] not in kept:
                kept[wanted[frame.pts]] = convert(frame)

    while todo:
        goal = todo[0]
        start = keys[bisect.bisect_right(keys, goal) - 1]
        if packets is None or start > at:
            if packets is not None:
                take(ctx.decode(None))  # frames still inside the decoder before jumping
                todo = [t for t in todo if wanted[index.pts[t]] not in kept]
                if goal not in todo:
                    continue
            container.seek(index.pts[start], stream=stream, backward=True)
            ctx.flush_buffers()
            packets = (p for p in container.demux(stream) if p.size > 0)
            first = next(packets, None)
            if first is None or position.get(first.pts, goal + 1) > start:
                raise _Fallback  # the seek landed after the keyframe we need
            at = position[first.pts]
            pending = [first]
        else:
            pending = []
        while goal in todo:
            if at > goal and _jump_next(todo, goal, keys, at):
                # The goal is inside the decoder, held back only for reordering, and the next
                # planned frame needs a jump anyway: drain instead of decoding further frames.
                take(ctx.decode(None))
                packets = None
                if wanted[index.pts[goal]] not in kept:
                    raise _Fallback
                break
            packet = pending.pop() if pending else next(packets, None)
            if packet is None:  # end of stream: drain, then the goal must be out
                take(ctx.decode(None))
                if wanted[index.pts[goal]] not in kept:
                    raise _Fallback
                break
            ctx.skip_frame = "DEFAULT" if packet.pts in wanted else "NONREF"
            take(ctx.decode(packet))
            at = position.get(packet.pts, at) + 1
            todo = [t for t in todo if wanted[index.pts[t]] not in kept]
            if at > goal + 64 and goal in todo:  # far past the goal and it never came out
                raise _Fallback
        todo = [t for t in todo if wanted[index.pts[t]] not in kept]
    return kept
