"""prepare's per-clip cost at its defaults against a plain full decode, on H.264 mp4s like NoctAct's.

    python benchmarks/prepare_cost.py --size=full     # 12 clips per kind, 1280x720, 30 fps, 10-15 s
    python benchmarks/prepare_cost.py --size=small    # CI: 2 clips per kind, 320x180, 3 s

The files are prepare_speed.py's (x264 with B-frames, per-frame sensor noise; short GOPs: a
keyframe every second, long GOPs: every 250 frames). Every method reads the same files with one
worker process per core, the way prepare's own pool does, and each is timed twice, alternating
with the others (the faster run counts: these machines are noisy):
  full_decode       decode every frame with PyAV (FFmpeg), nothing else: the baseline
  defaults          prepare's whole per-video step at its defaults (`frames.read_encoded_clip` with
                    clip_spec.PREPARED at 240 x 320: decode the frames the plan reads, exactly,
                    turn them into model pixels, 30 optical flows, JPEG)
  defaults_before   the same step as it was before this benchmark's issue (34): each frame converted
                    to RGB at its full size and resized by OpenCV, the scaler set up per frame
  exact_decode      only the decoding that `defaults` does (the sampler with nothing converted):
                    the floor of any exact reader of these frames
  one_candidate     the defaults with one candidate per segment (`--candidates=1`, flow kept): 10
                    frames, their partners and averaged flow frames, 10 flows, 40 JPEGs
  one_frame         the original's one frame per time step (`frames.read_clip`, 10 frames)
Prints one JSON object: seconds per kind and each method's time over the full decode.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.prepare_speed import SIZES, full_decode, size_from_argv, videos_by_kind  # noqa: E402
from pipeline import frames, sampler  # noqa: E402
from pipeline.clip_spec import PREPARED  # noqa: E402

SPEC = dataclasses.replace(PREPARED, height=240, width=320)
ONE_CANDIDATE = dataclasses.replace(SPEC, candidates=1)


def defaults(path: str) -> int:
    return len(frames.read_encoded_clip((path, SPEC)).jpegs)


def one_candidate(path: str) -> int:
    return len(frames.read_encoded_clip((path, ONE_CANDIDATE)).jpegs)


def _old_pixels(frame, height: int, width: int, sample_aspect) -> np.ndarray:
    """The conversion before issue 34: RGB at the full size, padded to the aspect, OpenCV's area resize."""
    rgb = frames.displayed(frame, sample_aspect)
    h, w = rgb.shape[:2]
    if w * height > h * width:
        padded_h = (w * height + width // 2) // width
        top = (padded_h - h) // 2
        rgb = cv2.copyMakeBorder(rgb, top, padded_h - h - top, 0, 0, cv2.BORDER_CONSTANT, value=0)
    elif w * height < h * width:
        padded_w = (h * width + height // 2) // height
        left = (padded_w - w) // 2
        rgb = cv2.copyMakeBorder(rgb, 0, 0, left, padded_w - w - left, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def defaults_before(path: str) -> int:
    real = frames.model_pixels
    frames.model_pixels = _old_pixels
    try:
        return defaults(path)
    finally:
        frames.model_pixels = real


def exact_decode(path: str) -> int:
    with frames.open_video(path) as container:
        got = sampler.read_planned(container, SPEC.reads, lambda frame: None)
    return len(got[0]) if got else 0


def one_frame(path: str) -> int:
    return len(frames.read_clip(path, 10, 240, 320).indices)


METHODS = {"full_decode": full_decode, "defaults": defaults, "defaults_before": defaults_before,
           "exact_decode": exact_decode, "one_candidate": one_candidate, "one_frame": one_frame}


def _time(pool: ProcessPoolExecutor, method, paths: list[str]) -> float:
    start = time.perf_counter()
    list(pool.map(method, paths))
    return time.perf_counter() - start


def main() -> None:
    size = size_from_argv()
    spec = SIZES[size]
    workers = os.cpu_count() or 1
    out = {"size": size, "workers": workers, "clips_per_kind": spec["clips"], "resolution": f"{spec['width']}x{spec['height']}"}
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(workers) as pool:
        for kind, paths in videos_by_kind(tmp, spec):
            for method in METHODS.values():  # warm every method once (imports, the flow estimator, the scaler)
                list(pool.map(method, paths[:workers]))
            runs = {name: [] for name in METHODS}
            for _ in range(2):
                for name, method in METHODS.items():
                    runs[name].append(_time(pool, method, paths))
            seconds = {name: min(r) for name, r in runs.items()}
            out[kind] = {
                "seconds": seconds,
                "over_full_decode": {name: seconds[name] / seconds["full_decode"] for name in METHODS if name != "full_decode"},
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
