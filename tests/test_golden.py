"""The golden test: a fixed small input gives exactly the shard bytes and the manifest recorded in
tests/golden/ (issue 15: refactors must not change what prepare writes).

The input is made here: six Motion-JPEG clips (OpenCV's writer: the same bytes on every run, which
libx264 does not give) of textured flat frames, in three class folders. A change that alters the output on purpose (a new record field, another JPEG
setting) regenerates the record, and says why in its commit:

    python -m tests.test_golden --update
"""

import json
import os
import sys

from pipeline import index
from pipeline import manifest as manifest_lib
from pipeline.clip_spec import ClipSpec
from pipeline.writing import shards, writer
from tests import videos

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "prepare.json")
SETTINGS = writer.Settings(clip=ClipSpec(num_frames=4, height=24, width=32, candidates=3, with_next=True, flow=True),
                           shard_size_mb=0.01, split_fractions=(0.5, 0.25, 0.25), seed=3)


def make_input(root: str) -> None:
    for c, name in enumerate(("bend", "jump", "wave")):
        for k in range(2):
            folder = os.path.join(root, name)
            os.makedirs(folder, exist_ok=True)
            frames = videos.flat_frames(20 + 5 * k + c, height=48, width=64, noise=5 + c)
            videos.write_opencv(os.path.join(folder, f"actor{k}_{name}.avi"), frames, fps=10 + 5 * k, fourcc="MJPG")


def prepare(root: str, out: str) -> dict:
    make_input(root)
    names, found = index.resolve_labels(index.index_tree(root), None)
    by_split = index.split_videos(index.assign_groups(found, None), SETTINGS.split_fractions, SETTINGS.seed)
    m = writer.write_dataset(by_split, names, out, SETTINGS, num_workers=1)
    files = sorted(n for n in os.listdir(out) if shards.is_shard_file_name(n))
    return {"manifest": m.to_json(), "shards": {n: shards.file_sha256(os.path.join(out, n)) for n in files}}


def test_prepare_writes_the_recorded_bytes_and_manifest(tmp_path):
    got = prepare(str(tmp_path / "videos"), str(tmp_path / "out"))
    golden = json.load(open(GOLDEN))
    assert got["shards"] == golden["shards"]
    assert got["manifest"] == golden["manifest"]
    assert manifest_lib.from_json(golden["manifest"]).count(["train", "validation", "test"]) == 6


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        record = prepare(os.path.join(tmp, "videos"), os.path.join(tmp, "out"))
    with open(GOLDEN, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {GOLDEN}: {len(record['shards'])} shards")
