"""ClipSpec: what one stored clip holds, and which frames of a video it takes.

A clip covers a video with `num_frames` equal segments (T, the model's time steps). Each segment
keeps `candidates` frames (K, odd; TSN's segment sampling: training draws one per segment each
epoch, evaluation takes the centre one, which is the frame a plain even spread of T picks), and
with `with_next` its partner too, the frame `next_gap` frames after each kept one (P = 2: the pair
whose difference is TSN's "RGB difference", motion over next_gap / fps seconds instead of over a
whole segment). With `flow` (which needs the pair) the optical flow from each kept frame to its
partner follows it, as two grey images, x then y (P = 4; pipeline.flow says how it is computed and
quantised). A gap of 2 doubles the motion the flow sees against nearly the same sensor-noise error
(prepare's default: ahead at night on validation, by less than the spread; BUILD_NOTES, real video).
With `flow_average` = A > 1 the flow runs between the means of A frames centred on the kept frame and
on its partner (clamped at the video's ends), so sensor noise new in every frame averages out: on
the night copy of weizmann-dev at gap 2, A = 3 halves DIS's error on the static background. With
`frame_average` = F > 1 each stored frame (and partner) is the mean of F frames centred on it, the
same averaging for the pixels the model sees (sensor noise falls by the square root of F, a moving
edge blurs over F frames).

Stored order, for segment t, candidate j and member p: position (t * K + j) * P + p.
The model takes, per clip, one candidate of each segment with its members stacked on the channel
axis: uint8 [T, H, W, 3 * P]. No TensorFlow here: prepare's workers use this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


def _centred(index: int, count: int, num_available: int) -> list[int]:
    """`count` (odd) frame indices centred on `index`, each clamped to [0, num_available)."""
    half = count // 2
    return [min(max(i, 0), num_available - 1) for i in range(index - half, index + half + 1)]


def sample_indices(num_available: int, num_frames: int) -> list[int]:
    """Indices of `num_frames` frames spread evenly over `num_available` frames.

    Each index is the centre of one of `num_frames` equal stretches, so the first and last
    stretches are treated alike. With fewer frames than asked, frames repeat in order.
    """
    if num_available < 1 or num_frames < 1:
        raise ValueError(f"need num_available >= 1 and num_frames >= 1, got {num_available}, {num_frames}")
    return [min(num_available - 1, ((2 * k + 1) * num_available) // (2 * num_frames)) for k in range(num_frames)]


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """The clip settings: carried by the manifest, a training run's state and an export."""

    num_frames: int = 10
    height: int = 240
    width: int = 320
    jpeg_quality: int = 90
    candidates: int = 1
    with_next: bool = False
    flow: bool = False
    next_gap: int = 1  # frames from a kept frame to its partner (with_next); 1: the next frame
    flow_average: int = 1  # frames averaged at each end of the flow (odd, with flow); 1: the two frames alone
    frame_average: int = 1  # frames averaged into each stored frame and partner (odd); 1: the frame itself

    def __post_init__(self) -> None:
        for name in ("num_frames", "height", "width", "candidates", "next_gap", "flow_average", "frame_average"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        if self.candidates % 2 == 0:
            raise ValueError(f"candidates must be odd (one of them is the centre), got {self.candidates}")
        if self.flow and not self.with_next:
            raise ValueError("flow needs with_next: the flow runs from each kept frame to its partner")
        if self.next_gap != 1 and not self.with_next:
            raise ValueError(f"next_gap {self.next_gap} needs with_next (or flow): it is the distance to the partner frame")
        if self.flow_average % 2 == 0:
            raise ValueError(f"flow_average must be odd (frames centred on each end of the flow), got {self.flow_average}")
        if self.flow_average != 1 and not self.flow:
            raise ValueError(f"flow_average {self.flow_average} needs flow: it is how many frames each end of the flow averages")
        if self.frame_average % 2 == 0:
            raise ValueError(f"frame_average must be odd (frames centred on each stored frame), got {self.frame_average}")

    @property
    def frames_per_step(self) -> int:
        """P: images the model sees at each time step: the frame; its partner with_next; the
        flow's x and y images with flow."""
        return 1 + int(self.with_next) + 2 * int(self.flow)

    @property
    def stored_frames(self) -> int:
        """JPEGs in one record: T * K * P."""
        return self.num_frames * self.candidates * self.frames_per_step

    def member(self, position: int) -> str:
        """What the stored image at `position` is: 'frame', 'next', 'flow_x' or 'flow_y'."""
        return ("frame", "next", "flow_x", "flow_y")[position % self.frames_per_step]

    @property
    def channels(self) -> int:
        """Channels of one time step of the model's input: 3 * P."""
        return 3 * self.frames_per_step

    @property
    def centre(self) -> int:
        """The candidate evaluation and serving take in every segment."""
        return self.candidates // 2

    def model_input_shape(self) -> tuple[int, int, int, int]:
        """[T, H, W, 3 * P]: one clip as the model takes it (uint8)."""
        return (self.num_frames, self.height, self.width, self.channels)

    def plan(self, num_available: int) -> list[int]:
        """The decoded-frame index of each stored image, in stored order, for a video of
        `num_available` frames (a flow image: the frame it starts from; a partner past the end: the
        last frame). With K = 1 and no pair this is sample_indices(n, T)."""
        kept = sample_indices(num_available, self.num_frames * self.candidates)
        if not self.with_next:
            return kept
        return [i for k in kept for i in (k, min(k + self.next_gap, num_available - 1)) + ((k, k) if self.flow else ())]

    def averaged(self, index: int, num_available: int) -> list[int]:
        """The frames one end of a flow averages: flow_average frames centred on `index`, each
        clamped to the video (so at an end the edge frame counts more than once)."""
        return _centred(index, self.flow_average, num_available)

    def frame_sources(self, index: int, num_available: int) -> list[int]:
        """The frames a stored frame (or partner) at decoded index `index` is the mean of:
        frame_average frames centred on it, clamped like `averaged`."""
        return _centred(index, self.frame_average, num_available)

    def reads(self, num_available: int) -> list[int]:
        """Every decoded-frame index the stored images are made from, ascending, once each: the
        plan's frames, with flow_average > 1 the frames each flow averages, and with
        frame_average > 1 the frames each stored frame averages."""
        plan = self.plan(num_available)
        wanted = set(plan)
        for start in range(0, len(plan), self.frames_per_step):
            for index in plan[start:start + (2 if self.with_next else 1)]:  # the frame, its partner
                wanted.update(self.frame_sources(index, num_available))
                if self.flow:
                    wanted.update(self.averaged(index, num_available))
        return sorted(wanted)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ClipSpec":
        """Refuses unknown keys (a typo would otherwise fall back to a default silently)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"clip spec: unknown field(s) {unknown}")
        return cls(**data)


# What `python -m pipeline.prepare` stores by default: three candidate frames per segment, each
# with the frame two later and the optical flow between them, each end the mean of three frames
# (what the default model learns from).
PREPARED = ClipSpec(candidates=3, with_next=True, flow=True, next_gap=2, flow_average=3)
