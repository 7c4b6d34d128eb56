"""prepare's plan on its own: no videos, no files, no TensorFlow."""

import dataclasses

import pytest

from pipeline.clip_spec import ClipSpec
from pipeline.index import Video
from pipeline.writing import plan

NAMES = ("jump", "run", "walk")


def _videos(split: str, count: int) -> list[Video]:
    return [Video(f"/data/{NAMES[i % 3]}/{split}{i}.mp4", f"{NAMES[i % 3]}/{split}{i}.mp4", NAMES[i % 3]) for i in range(count)]


def test_tasks_are_numbered_in_split_then_video_order_with_label_ids():
    planned = plan.make_plan({"train": _videos("t", 4), "validation": _videos("v", 2)}, NAMES)
    assert [(p.task, p.split, p.video.source, p.label) for p in planned] == [
        (0, "train", "jump/t0.mp4", 0), (1, "train", "run/t1.mp4", 1), (2, "train", "walk/t2.mp4", 2),
        (3, "train", "jump/t3.mp4", 0), (4, "validation", "jump/v0.mp4", 0), (5, "validation", "run/v1.mp4", 1)]
    assert plan.video_job(planned[1], plan.Settings()) == ("/data/run/t1.mp4", ClipSpec())


def test_the_fingerprint_changes_with_every_input_that_changes_the_bytes_and_nothing_else():
    by_split = {"train": _videos("t", 4), "test": _videos("s", 2)}
    base = plan.fingerprint(plan.Settings(), NAMES, plan.make_plan(by_split, NAMES))
    assert base == plan.fingerprint(plan.Settings(), NAMES, plan.make_plan(dict(by_split), NAMES)) and len(base) == 64
    changed = [
        plan.fingerprint(plan.Settings(clip=ClipSpec(height=64)), NAMES, plan.make_plan(by_split, NAMES)),
        plan.fingerprint(plan.Settings(shard_size_mb=1.0), NAMES, plan.make_plan(by_split, NAMES)),
        plan.fingerprint(plan.Settings(), NAMES[::-1], plan.make_plan(by_split, NAMES[::-1])),
        plan.fingerprint(plan.Settings(), NAMES, plan.make_plan({"train": by_split["train"][::-1], "test": by_split["test"]}, NAMES)),
    ]
    assert len({base, *changed}) == 5
    # Where a video is read from is not in the bytes: a moved data dir keeps its fingerprint.
    moved = {s: [dataclasses.replace(v, path="/elsewhere/" + v.source) for v in vs] for s, vs in by_split.items()}
    assert plan.fingerprint(plan.Settings(), NAMES, plan.make_plan(moved, NAMES)) == base


def test_shards_are_cut_by_record_bytes_in_plan_order_per_split():
    planned = plan.make_plan({"train": _videos("t", 7), "validation": _videos("v", 2), "test": []}, NAMES)
    kept = [p for p in planned if p.task != 3]  # task 3 was skipped
    sizes = {p.task: 1000 for p in kept}
    jobs = plan.plan_shards(kept, sizes, shard_bytes=2500, split_names=("train", "validation", "test"))
    assert jobs == [
        plan.ShardJob("train", "train-00000-of-00003.tfrecord", (0, 1)),
        plan.ShardJob("train", "train-00001-of-00003.tfrecord", (2, 4)),
        plan.ShardJob("train", "train-00002-of-00003.tfrecord", (5, 6)),
        plan.ShardJob("validation", "validation-00000-of-00001.tfrecord", (7, 8)),
    ]  # 6000 bytes of train in 3 shards; the empty test split gets none
    one = plan.plan_shards(kept, sizes, shard_bytes=10**6, split_names=("train",))
    assert one == [plan.ShardJob("train", "train-00000-of-00001.tfrecord", (0, 1, 2, 4, 5, 6))]


def test_settings_refuse_sizes_that_cannot_work():
    assert plan.Settings(shard_size_mb=0.5).shard_bytes == 2**19
    with pytest.raises(ValueError, match="must be positive"):
        plan.Settings(shard_size_mb=0)
    with pytest.raises(ValueError, match="must be positive"):
        plan.Settings(video_timeout=-1)
