"""What prepare's defaults cost: three candidate frames per segment, each with its partner two
frames later and the optical flow between the means of the three frames around each
(clip_spec.PREPARED), against the
original's one frame per time step (`--candidates=1 --noflow`) and against the defaults with the
flow between single frames (`--flow_average=1`), on the same videos.

    python benchmarks/prepare_defaults.py --size=full                 # 48 built-in videos at 240 x 320
    python benchmarks/prepare_defaults.py --size=small                # CI: 12 short videos at 60 x 80
    python benchmarks/prepare_defaults.py --data_dir=DIR --height=64 --width=80   # a video tree of your own

Each setting prepares the videos twice, alternating with the others (these machines are noisy: the
faster of the two counts), with all cores decoding. Prints one JSON object: seconds and shard bytes
of each, the defaults' ratios to the one-frame baseline and their time ratio to single-frame flow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline import index  # noqa: E402
from pipeline.clip_spec import PREPARED, ClipSpec  # noqa: E402
from pipeline.sources import synthetic  # noqa: E402

SIZES = {"full": dict(clips_per_class=4, height=240, width=320), "small": dict(clips_per_class=1, height=60, width=80)}


def prepare_seconds(by_split, names, out_dir: str, clip: ClipSpec, workers: int) -> tuple[float, int]:
    """(seconds, shard bytes) of one prepare of the videos into a fresh `out_dir`."""
    from pipeline.writing import writer

    start = time.perf_counter()
    manifest = writer.write_dataset(by_split, names, out_dir, writer.Settings(clip=clip), num_workers=workers)
    seconds = time.perf_counter() - start
    return seconds, sum(s.num_bytes for s in manifest.shards(list(manifest.splits)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--data_dir", help="a class-per-folder video tree instead of generated videos")
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    args = parser.parse_args()
    logging.getLogger("pipeline").setLevel(logging.ERROR)  # each run's summary (and small sizes' empty splits)
    size = SIZES[args.size]
    height, width = args.height or size["height"], args.width or size["width"]
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as work:
        videos = args.data_dir
        if not videos:
            videos = os.path.join(work, "videos")
            synthetic.generate(videos, clips_per_class=size["clips_per_class"], num_actors=4, seed=0)
        names, found = index.resolve_labels(index.index_tree(videos), None)
        by_split = index.split_videos(index.assign_groups(found, None), (0.7, 0.15, 0.15), 0)
        settings = {
            "one_frame": ClipSpec(height=height, width=width),
            "defaults": dataclasses.replace(PREPARED, height=height, width=width),
            "single_frame_flow": dataclasses.replace(PREPARED, height=height, width=width, flow_average=1),
        }
        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in settings}
        for attempt in range(2):
            for name, clip in settings.items():
                runs[name].append(prepare_seconds(by_split, names, os.path.join(work, f"{name}-{attempt}"), clip, workers))
    seconds = {name: min(s for s, _ in r) for name, r in runs.items()}
    sizes = {name: r[0][1] for name, r in runs.items()}
    print(json.dumps({
        "videos": len(found), "height": height, "width": width, "workers": workers,
        "seconds": seconds, "shard_bytes": sizes,
        "time_ratio_defaults_to_one_frame": seconds["defaults"] / seconds["one_frame"],
        "bytes_ratio_defaults_to_one_frame": sizes["defaults"] / sizes["one_frame"],
        "time_ratio_defaults_to_single_frame_flow": seconds["defaults"] / seconds["single_frame_flow"],
    }, indent=2))


if __name__ == "__main__":
    main()
