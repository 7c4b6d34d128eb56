"""prepare's frame sampling against three baselines, on H.264 mp4s like NoctAct's.

    python benchmarks/prepare_speed.py --size=full     # 12 clips per kind, 1280x720, 30 fps, 10-15 s
    python benchmarks/prepare_speed.py --size=small    # CI: 2 clips per kind, 320x180, 3 s

Two kinds of file, both with B-frames: phone-style short GOPs (a keyframe every second) and long
GOPs (a keyframe every 250 frames). Every method reads the same files with the same number of
worker processes. Baselines:
  full_decode     decode every frame with PyAV (FFmpeg), nothing else
  seek            the original's method: OpenCV, CAP_PROP_POS_FRAMES to int(k * count / 10), read
  keyframes_only  decode only keyframes (skip_frame=NONKEY): the floor
Ours (`read_clip`) does more work than the baselines (RGB conversion and letterboxing of the 10
frames). Prints one JSON object; ratios are time(baseline) / time(ours).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline import frames  # noqa: E402

SIZES = {
    "full": dict(clips=12, width=1280, height=720, seconds=(10.0, 15.0)),
    "small": dict(clips=2, width=320, height=180, seconds=(3.0, 3.0)),
}
KINDS = {"short_gop": 30, "long_gop": 250}
FPS = 30


def make_video(path: str, width: int, height: int, n: int, gop: int, seed: int) -> None:
    """A dark scene with sensor noise that changes every frame (as at night: high gain) and a
    moving bright shape; H.264 (x264 veryfast, crf 23, 3 B-frames, fixed GOP)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 40, (height, width * 2, 3), dtype=np.uint8)
    noise = [rng.integers(0, 12, (height, width, 3), dtype=np.uint8) for _ in range(16)]
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = 3
        stream.options = {"preset": "veryfast", "crf": "23", "sc_threshold": "0", "keyint_min": str(gop)}
        for i in range(n):
            img = texture[:, (i // 4) % width : (i // 4) % width + width] + noise[(i * 7) % 16]
            x = int((0.1 + 0.8 * i / n) * width)
            cv2.circle(img, (x, height // 2), height // 8, (200, 210, 220), -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def full_decode(path: str) -> int:
    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))


def keyframes_only(path: str) -> int:
    with av.open(path) as c:
        c.streams.video[0].codec_context.skip_frame = "NONKEY"
        return sum(1 for _ in c.decode(video=0))


def seek(path: str) -> int:
    cap = cv2.VideoCapture(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    got = 0
    for k in range(10):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(k * total / 10))
        ok, _ = cap.read()
        got += ok
    cap.release()
    return got


def ours(path: str) -> int:
    return len(frames.read_clip(path, 10, 240, 320).indices)


METHODS = {"full_decode": full_decode, "seek": seek, "keyframes_only": keyframes_only, "ours": ours}


def _time(method, paths: list[str], workers: int) -> float:
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(full_decode, paths[:workers]))  # warm the pool (imports) before timing
        start = time.perf_counter()
        list(pool.map(method, paths))
        return time.perf_counter() - start


def size_from_argv() -> str:
    """The --size=... argument (full by default)."""
    size = "full"
    for arg in sys.argv[1:]:
        if arg.startswith("--size="):
            size = arg.split("=", 1)[1]
    return size


def videos_by_kind(tmp: str, spec: dict) -> Iterator[tuple[str, list[str]]]:
    """(kind, the paths of its spec["clips"] videos, made in `tmp`) for each kind of KINDS; the
    same files on every run (seeded lengths and content)."""
    rng = np.random.default_rng(0)
    for kind, gop in KINDS.items():
        paths = []
        for i in range(spec["clips"]):
            n = int(FPS * rng.uniform(*spec["seconds"]))
            paths.append(os.path.join(tmp, f"{kind}_{i}.mp4"))
            make_video(paths[-1], spec["width"], spec["height"], n, gop, seed=i)
        yield kind, paths


def main() -> None:
    size = size_from_argv()
    spec = SIZES[size]
    workers = os.cpu_count() or 1
    out = {"size": size, "workers": workers, "clips_per_kind": spec["clips"], "resolution": f"{spec['width']}x{spec['height']}"}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, paths in videos_by_kind(tmp, spec):
            seconds = {name: _time(fn, paths, workers) for name, fn in METHODS.items()}
            better_naive = min(seconds["full_decode"], seconds["seek"])
            out[kind] = {
                "seconds": seconds,
                "speedup_vs_better_of_full_decode_and_seek": better_naive / seconds["ours"],
                "ours_vs_keyframes_only_floor": seconds["ours"] / seconds["keyframes_only"],
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
