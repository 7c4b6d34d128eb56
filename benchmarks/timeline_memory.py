"""Peak memory of a timeline's windowing on 1 minute against 16 minutes of input: one sequential
decode keeps it flat.

    python benchmarks/timeline_memory.py --size=full    # 1280 x 720 at 25 fps: 1 min vs 16 min
    python benchmarks/timeline_memory.py --size=small   # CI: 320 x 180 at 10 fps: 6 s vs 96 s

The input is one minute (or 6 s) of textured moving 720p H.264 in MPEG-TS, and the same bytes 16
times over (TS streams concatenate). Each run reads every window of it (pipeline.inference.windows: decode,
letterbox, JPEG, record) at the clip settings of the demo (10 x 60 x 80, 1.73 s windows every
0.87 s) in its own process and reports its peak resident set size (ru_maxrss) and windows per
second. Goal: peak(16x) / peak(1x) <= 1.1.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import common
import numpy as np

SIZES = {"full": dict(width=1280, height=720, fps=25, seconds=60), "small": dict(width=320, height=180, fps=10, seconds=6)}
WINDOW, STRIDE = 1.733, 0.8665


def write_minute(path: str, s: dict) -> None:
    """Textured frames with a bright square crossing them, so the encoder spends real bytes."""
    import av

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 60, (s["height"], s["width"], 3), dtype=np.uint8)
    with av.open(path, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=s["fps"])
        stream.width, stream.height, stream.pix_fmt = s["width"], s["height"], "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        n = s["fps"] * s["seconds"]
        for i in range(n):
            img = np.roll(texture, i * 3, axis=1)
            x = int((i / n) * (s["width"] - 40))
            img[40:80, x:x + 40] = 220
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def child(path: str) -> None:
    from pipeline.clip_spec import ClipSpec
    from pipeline.inference import windows

    start = time.perf_counter()
    n = sum(1 for _ in windows.WindowReader(path, ClipSpec(10, 60, 80), WINDOW, STRIDE))
    seconds = time.perf_counter() - start
    print(json.dumps({"windows": n, "seconds": seconds, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def measure(path: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, __file__, "--child", path], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2])
    size = common.size_arg()
    s = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        one, many = os.path.join(tmp, "one.ts"), os.path.join(tmp, "many.ts")
        write_minute(one, s)
        with open(many, "wb") as f:
            data = open(one, "rb").read()
            for _ in range(16):
                f.write(data)
        short, long = measure(one), measure(many)
    common.report({
        "size": size, "input": f"{s['width']}x{s['height']} at {s['fps']} fps", "seconds_of_input": [s["seconds"], 16 * s["seconds"]],
        "windows": [short["windows"], long["windows"]], "peak_rss_bytes": [short["peak_rss_bytes"], long["peak_rss_bytes"]],
        "ratio": long["peak_rss_bytes"] / short["peak_rss_bytes"], "goal": 1.1,
        "windows_per_second": [short["windows"] / short["seconds"], long["windows"] / long["seconds"]],
        "input_seconds_per_second": [s["seconds"] / short["seconds"], 16 * s["seconds"] / long["seconds"]],
    })


if __name__ == "__main__":
    main()
