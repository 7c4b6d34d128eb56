"""Built-in data: short, dark, noisy clips of the 12 NoctAct classes, each with its own motion
(the command: `python -m pipeline.synthetic`).

An "actor" (a dim body with a head and a hand) moves on a dark noisy background; each class
moves differently (a run crosses the frame, boxing jabs, waving circles above the head...).
Videos come in mixed sizes (portrait and landscape), frame rates, lengths and containers,
written with OpenCV. File names are `actorNN_clipMMM.ext`, so `--group_regex='^(actor\\d+)_'`
keeps each actor in one split.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Callable, Sequence

import cv2
import numpy as np

from pipeline import index

CLASS_NAMES = (
    "Drink",
    "Picking",
    "Push",
    "Run",
    "Throwing objects",
    "boxing",
    "lifting weights",
    "receiving the phone",
    "stand",
    "walking on stairs",
    "walking with flashlight",
    "waving",
)
# (extension, fourcc): containers and codecs that OpenCV's bundled FFmpeg writes.
FORMATS = (("mp4", "mp4v"), ("avi", "MJPG"), ("mkv", "XVID"), ("mov", "mp4v"))
SIZES = ((160, 120), (128, 96), (96, 128), (176, 144), (120, 120))  # (width, height)
RATES = (10, 15, 24, 30)
GROUP_REGEX = r"^(actor\d+)_"


@dataclasses.dataclass(frozen=True)
class Pose:
    """Where the actor's parts are at one moment, in units of the frame (0..1).

    body: centre of the body; hand: offset of the hand from the body centre; extra: an optional
    bright object (thrown object, phone, flashlight beam), or None.
    """

    body: tuple[float, float]
    hand: tuple[float, float]
    extra: tuple[float, float] | None = None
    beam: bool = False


def _osc(t: float, cycles: float) -> float:
    return math.sin(2 * math.pi * cycles * t)


# Each class: t in [0, 1] and the clip's direction d (+1 or -1) to the actor's pose.
MOTIONS: dict[str, Callable[[float, int], Pose]] = {
    "Drink": lambda t, d: Pose((0.5, 0.55), (0.05 * d, 0.1 - 0.22 * max(0.0, _osc(t, 1.0)))),
    "Picking": lambda t, d: Pose((0.5, 0.55 + 0.18 * max(0.0, _osc(t, 1.0))), (0.06 * d, 0.15)),
    "Push": lambda t, d: Pose((0.5 + d * (0.25 * t - 0.12), 0.55), (d * (0.08 + 0.08 * abs(_osc(t, 2.0))), -0.02)),
    "Run": lambda t, d: Pose((0.5 + d * (0.9 * t - 0.45), 0.55 + 0.03 * _osc(t, 4.0)), (0.05 * _osc(t, 4.0), 0.05)),
    "Throwing objects": lambda t, d: Pose(
        (0.5 - 0.2 * d, 0.55), (0.06 * d, -0.05), (0.5 - 0.15 * d + d * 0.6 * t, 0.45 - 0.6 * t + 0.8 * t * t)
    ),
    "boxing": lambda t, d: Pose((0.5, 0.55), (d * (0.06 + 0.1 * abs(_osc(t, 3.0))), -0.08)),
    "lifting weights": lambda t, d: Pose((0.5, 0.55), (0.0, -0.12 - 0.12 * abs(_osc(t, 2.0)))),
    "receiving the phone": lambda t, d: Pose(
        (0.5, 0.55), (0.05 * d, 0.1 - 0.2 * min(1.0, 2 * t)), (0.5 + 0.05 * d, 0.65 - 0.2 * min(1.0, 2 * t)) if t > 0.25 else None
    ),
    "stand": lambda t, d: Pose((0.5 + 0.01 * _osc(t, 0.5), 0.55), (0.06 * d, 0.12)),
    "walking on stairs": lambda t, d: Pose((0.5 + d * (0.5 * t - 0.25), 0.7 - 0.35 * t), (0.04 * _osc(t, 3.0), 0.08)),
    "walking with flashlight": lambda t, d: Pose((0.5 + d * (0.4 * t - 0.2), 0.55), (0.08 * d, 0.0), beam=True),
    "waving": lambda t, d: Pose((0.5, 0.55), (0.09 * _osc(t, 2.0), -0.25 + 0.04 * math.cos(4 * math.pi * t))),
}


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    """What one generated video looks like."""

    label_name: str
    actor: int
    index: int
    width: int
    height: int
    fps: int
    seconds: float
    extension: str
    fourcc: str
    seed: int
    hard: bool = False


def _draw_actor(img: np.ndarray, pose: Pose, w: int, h: int, scale: float, light: float, direction: int) -> None:
    """Draw the actor (body, head, hand) and any bright object or flashlight beam, in place."""
    s = min(w, h)
    bx, by = int(pose.body[0] * w), int(pose.body[1] * h)
    body_color = (70 * light, 80 * light, 95 * light)
    cv2.ellipse(img, (bx, by), (max(2, int(0.07 * s * scale)), max(3, int(0.2 * s * scale))), 0, 0, 360, body_color, -1)
    cv2.circle(img, (bx, by - int(0.26 * s * scale)), max(2, int(0.06 * s * scale)), body_color, -1)
    hx, hy = bx + int(pose.hand[0] * s * 1.6 * scale), by + int(pose.hand[1] * s * 1.6 * scale)
    cv2.circle(img, (hx, hy), max(2, int(0.045 * s * scale)), (150 * light, 160 * light, 170 * light), -1)
    if pose.extra is not None:
        size = max(1, int(0.035 * s * min(1.0, 1.5 * scale)))
        cv2.circle(img, (int(pose.extra[0] * w), int(pose.extra[1] * h)), size, (235, 240, 250), -1)
    if pose.beam:
        tip = (hx + direction * int(0.45 * w), hy + int(0.05 * h))
        cv2.fillConvexPoly(
            img, np.array([(hx, hy), (tip[0], tip[1] - int(0.12 * h)), (tip[0], tip[1] + int(0.12 * h))]), (180, 200, 210)
        )


def _draw_frame(pose: Pose, w: int, h: int, scale: float, light: float, noise: float, rng: np.random.Generator, direction: int) -> np.ndarray:
    """One BGR frame: dark gradient background, sensor noise, the actor and any bright object."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    base = (12 + 10 * y) * light
    img = np.repeat(np.repeat(base[:, :, None], w, axis=1), 3, axis=2)
    _draw_actor(img, pose, w, h, scale, light, direction)
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def render(spec: VideoSpec) -> list[np.ndarray]:
    """The BGR frames of one clip, as OpenCV writes them."""
    if spec.hard:
        return render_hard(spec)
    rng = np.random.default_rng(spec.seed)
    direction = 1 if rng.random() < 0.5 else -1
    scale = 0.8 + 0.05 * (spec.actor % 5)  # each actor has its own size
    light = float(rng.uniform(0.7, 1.3))
    noise = float(rng.uniform(3.0, 9.0))
    phase = float(rng.uniform(0.0, 0.15))
    motion = MOTIONS[spec.label_name]
    n = max(1, round(spec.fps * spec.seconds))
    return [
        _draw_frame(motion(min(1.0, phase + (1 - phase) * i / max(n - 1, 1)), direction), spec.width, spec.height, scale, light, noise, rng, direction)
        for i in range(n)
    ]


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who performs a hard clip: the same person (size, speed, brightness, place) in every class."""

    scale: float  # body size; small: far from the camera
    speed: float  # how much of the motion one clip covers per unit time
    brightness: float
    x: float  # where in the frame the action happens (offset of the body centre)
    y: float


def actor(index: int) -> Actor:
    rng = np.random.default_rng(1_000_003 * (index + 1))
    return Actor(
        scale=float(rng.uniform(0.55, 0.85)), speed=float(rng.uniform(0.7, 1.3)), brightness=float(rng.uniform(0.7, 1.0)),
        x=float(rng.uniform(-0.15, 0.15)), y=float(rng.uniform(0.0, 0.12)),
    )


@dataclasses.dataclass(frozen=True)
class Scene:
    """What a hard clip's camera sees besides the actor: clutter, lights, a moving distractor."""

    boxes: tuple[tuple[float, float, float, float, float], ...]  # x0, y0, x1, y1, grey level
    lamp: tuple[float, float, float]  # x, y, strength of a static light with glare
    distractor: tuple[float, float, float, float]  # start x, y, speed, size of a passing light
    shake: float  # camera shake, as a fraction of the frame
    light: float
    noise: float


def scene(rng: np.random.Generator) -> Scene:
    boxes = []
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = rng.uniform(0, 0.9), rng.uniform(0.1, 0.8)
        boxes.append((x0, y0, x0 + rng.uniform(0.05, 0.3), y0 + rng.uniform(0.05, 0.3), rng.uniform(15, 45)))
    return Scene(
        boxes=tuple(tuple(float(v) for v in b) for b in boxes),
        lamp=(float(rng.uniform(0, 1)), float(rng.uniform(0, 0.4)), float(rng.uniform(0.4, 1.0))),
        distractor=(float(rng.uniform(-0.3, 1.3)), float(rng.uniform(0.2, 0.9)), float(rng.uniform(-0.8, 0.8)), float(rng.uniform(0.02, 0.06))),
        shake=float(rng.uniform(0.0, 0.015)), light=float(rng.uniform(0.5, 0.9)), noise=float(rng.uniform(5.0, 10.0)),
    )


def _background(sc: Scene, w: int, h: int, t: float) -> np.ndarray:
    """Dark street: gradient, clutter boxes, a lamp with glare, a light passing by."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    img = np.repeat(np.repeat(((10 + 12 * y) * sc.light)[:, :, None], w, axis=1), 3, axis=2)
    for x0, y0, x1, y1, grey in sc.boxes:
        cv2.rectangle(img, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), (grey * sc.light,) * 3, -1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lx, ly, strength = sc.lamp
    glare = np.exp(-(((xx - lx * w) ** 2 + (yy - ly * h) ** 2) / (2 * (0.12 * min(w, h)) ** 2)))
    img += (200 * strength * glare)[:, :, None]
    dx, dy, speed, size = sc.distractor
    cv2.circle(img, (int((dx + speed * t) * w), int(dy * h)), max(1, int(size * min(w, h))), (150, 170, 200), -1)
    return img


def render_hard(spec: VideoSpec) -> list[np.ndarray]:
    """A hard clip: a small, dim actor (its own size, speed and place) in low light with glare,
    clutter, a passing light, camera shake and strong sensor noise."""
    rng = np.random.default_rng(spec.seed)
    person = actor(spec.actor)
    sc = scene(rng)
    direction = 1 if rng.random() < 0.5 else -1
    phase = float(rng.uniform(0.0, 0.2))
    motion = MOTIONS[spec.label_name]
    n = max(1, round(spec.fps * spec.seconds))
    w, h = spec.width, spec.height
    s = min(w, h)
    hot = rng.random((h, w)) < 0.001  # stuck bright pixels of this camera
    reach = 0.6 + 0.4 * person.scale  # a small (far) actor's moves span less of the frame

    def place(p: tuple[float, float]) -> tuple[float, float]:
        return 0.5 + (p[0] - 0.5) * reach + person.x, 0.5 + (p[1] - 0.5) * reach + 0.08 + person.y

    shake = np.cumsum(rng.normal(0, sc.shake * s, (n, 2)), axis=0) * 0.5
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        pose = motion(min(1.0, phase + person.speed * (1 - phase) * t), direction)
        placed = dataclasses.replace(pose, body=place(pose.body), extra=place(pose.extra) if pose.extra else None)
        img = _background(sc, w, h, t)
        _draw_actor(img, placed, w, h, person.scale, sc.light * person.brightness, direction)
        m = np.float32([[1, 0, shake[i, 0]], [0, 1, shake[i, 1]]])
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        img += rng.normal(0.0, sc.noise, img.shape).astype(np.float32)
        img[hot] = 255
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def write_video(path: str, frames: list[np.ndarray], fps: float, fourcc: str) -> None:
    """Write BGR frames with OpenCV under a hidden temporary name, then rename: `path` is never a
    partial video. Raises if the writer cannot be opened."""
    h, w = frames[0].shape[:2]
    is_color = frames[0].ndim == 3
    tmp = index.partial_path(path)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), isColor=is_color)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write {fourcc} video")
    for frame in frames:
        writer.write(frame)
    writer.release()
    os.replace(tmp, path)


def plan(clips_per_class: int, num_actors: int, seed: int, hard: bool = False) -> list[VideoSpec]:
    """Specs of every clip: varied sizes, rates, lengths and containers, seeded."""
    rng = np.random.default_rng(seed)
    specs = []
    for label_name in CLASS_NAMES:
        for i in range(clips_per_class):
            w, h = SIZES[rng.integers(len(SIZES))]
            ext, fourcc = FORMATS[rng.integers(len(FORMATS))]
            specs.append(
                VideoSpec(
                    label_name, i % num_actors, i, int(w), int(h), int(RATES[rng.integers(len(RATES))]),
                    float(rng.uniform(1.0, 2.5)), ext, fourcc, int(rng.integers(2**31)), hard,
                )
            )
    return specs


def generate(output_dir: str, clips_per_class: int = 24, num_actors: int = 6, seed: int = 0, hard: bool = False) -> list[str]:
    """Write the built-in data set under output_dir/<class>/; returns the paths written.
    hard=True: the hard mode (small dim actors, glare, clutter, shake, strong noise)."""
    paths = []
    for spec in plan(clips_per_class, num_actors, seed, hard):
        folder = os.path.join(output_dir, spec.label_name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"actor{spec.actor:02d}_clip{spec.index:03d}.{spec.extension}")
        if not os.path.exists(path):
            write_video(path, render(spec), spec.fps, spec.fourcc)
        paths.append(path)
    return paths


LONG_CLASSES = ("Run", "waving", "boxing", "lifting weights")


@dataclasses.dataclass(frozen=True)
class Action:
    """Where one action of a long video is: seconds from its start."""

    start: float
    end: float
    class_name: str


def generate_long(path: str, class_names: Sequence[str] = LONG_CLASSES, clips_per_action: int = 3, seed: int = 0,
                  hard: bool = False, size: tuple[int, int] = (160, 120), fps: int = 15) -> list[Action]:
    """Write one video of several actions back to back, each `clips_per_action` built-in clips of
    its class (their usual 1 to 2.5 s each), and PATH.segments.json with where each action is.
    Returns the actions."""
    unknown = [c for c in class_names if c not in MOTIONS]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}; the built-in classes are {', '.join(CLASS_NAMES)}")
    rng = np.random.default_rng(seed)
    frames, actions = [], []
    for action, name in enumerate(class_names):
        start = len(frames)
        for i in range(clips_per_action):
            spec = VideoSpec(name, action % 6, i, size[0], size[1], fps, float(rng.uniform(1.0, 2.5)), "mp4", "mp4v",
                             int(rng.integers(2**31)), hard)
            frames.extend(render(spec))
        actions.append(Action(round(start / fps, 3), round(len(frames) / fps, 3), name))
    write_video(path, frames, fps, "mp4v")
    with open(path + ".segments.json", "w") as f:
        json.dump([dataclasses.asdict(a) for a in actions], f, indent=1)
    return actions
