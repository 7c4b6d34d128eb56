"""Finding videos, labels, groups and the stratified grouped split."""

import collections
import os

import pytest

from pipeline import index
from pipeline.index import DatasetError, Video


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").close()


def test_index_tree_finds_videos_by_extension_in_any_case(tmp_path):
    for rel in ["b/x.MP4", "b/sub/y.webm", "a/z.avi", "a/notes.txt", "a/.hidden.mp4", "c/readme.md", "top.mp4"]:
        _touch(str(tmp_path / rel))
    found = index.index_tree(str(tmp_path))
    assert [(v.source, v.label_name) for v in found] == [("a/z.avi", "a"), ("b/sub/y.webm", "b"), ("b/x.MP4", "b")]
    names, kept = index.resolve_labels(found, None)
    assert names == ["a", "b"] and len(kept) == 3


def test_label_names_flag_sets_ids_and_filters(tmp_path):
    for rel in ["walk/1.mp4", "run/2.mp4", "other/3.mp4"]:
        _touch(str(tmp_path / rel))
    names, kept = index.resolve_labels(index.index_tree(str(tmp_path)), ["walk", "run"])
    assert names == ["walk", "run"] and sorted(v.label_name for v in kept) == ["run", "walk"]


@pytest.mark.parametrize("setup, message", [("missing", "does not exist"), ("empty", "no class folders"), ("novideo", "no video files")])
def test_unusable_data_dir_is_a_clear_error(tmp_path, setup, message):
    root = tmp_path / "data"
    if setup != "missing":
        root.mkdir()
    if setup == "novideo":
        _touch(str(root / "cls" / "a.txt"))
    with pytest.raises(DatasetError, match=message) as e:
        index.index_tree(str(root))
    assert str(root) in str(e.value)


def test_index_csv_with_group_and_fixed_split(tmp_path):
    (tmp_path / "list.csv").write_text("path,label,group,split\nv/a.mp4,run,p1,test\nv/b.mp4,walk,p2,\n")
    found = index.index_csv(str(tmp_path / "list.csv"))
    assert [(v.source, v.label_name, v.group, v.split) for v in found] == [("v/a.mp4", "run", "p1", "test"), ("v/b.mp4", "walk", "p2", "")]
    assert found[0].path == os.path.join(str(tmp_path), "v/a.mp4")
    (tmp_path / "bad.csv").write_text("path,label,split\nv/a.mp4,run,holdout\n")
    with pytest.raises(DatasetError, match="bad.csv:2: split 'holdout'"):
        index.index_csv(str(tmp_path / "bad.csv"))


def _videos(per_class, classes=("a", "b", "c"), actors=1):
    return [Video(f"/{c}/actor{i % actors}_{i}.mp4", f"{c}/actor{i % actors}_{i}.mp4", c) for c in classes for i in range(per_class)]


def test_split_is_stratified_seeded_and_complete():
    vids = index.assign_groups(_videos(40), None)
    split = index.split_videos(vids, (0.7, 0.15, 0.15), seed=3)
    for label in "abc":
        counts = [sum(v.label_name == label for v in split[s]) for s in index.SPLITS]
        assert counts == [28, 6, 6]
    assert sorted(v.source for s in split.values() for v in s) == sorted(v.source for v in vids)
    assert split == index.split_videos(vids, (0.7, 0.15, 0.15), seed=3)
    assert split != index.split_videos(vids, (0.7, 0.15, 0.15), seed=4)


def test_group_regex_keeps_each_group_in_one_split():
    vids = index.assign_groups(_videos(60, actors=20), r"^(actor\d+)_")  # 20 groups of 9 clips
    split = index.split_videos(vids, (0.7, 0.15, 0.15), seed=0)
    where = collections.defaultdict(set)
    for s, vs in split.items():
        for v in vs:
            where[v.group].add(s)
    assert len(where) == 20 and all(len(s) == 1 for s in where.values())
    assert [len(split[s]) for s in index.SPLITS] == [126, 27, 27]


def test_folds_put_each_actor_in_exactly_one_fold():
    vids = index.assign_groups(_videos(60, actors=6), r"^(actor\d+)_")  # 6 actors, 30 clips each
    folds = index.split_folds(vids, 6, seed=0)
    assert list(folds) == [f"fold{i}" for i in range(6)]
    assert all(len({v.group for v in f}) == 1 for f in folds.values())  # leave-one-actor-out
    assert sorted(v.source for f in folds.values() for v in f) == sorted(v.source for v in vids)
    three = index.split_folds(vids, 3, seed=0)
    assert [len({v.group for v in f}) for f in three.values()] == [2, 2, 2]
    assert three == index.split_folds(vids, 3, seed=0)


def test_folds_refuse_too_few_groups_and_fixed_splits():
    vids = index.assign_groups(_videos(12, actors=2), r"^(actor\d+)_")
    with pytest.raises(DatasetError, match="--num_folds=3 needs at least 3 groups, found 2"):
        index.split_folds(vids, 3)
    with pytest.raises(DatasetError, match="fixed split"):
        index.split_folds([Video("/x/a.mp4", "a.mp4", "a", "g1", "test"), Video("/x/b.mp4", "b.mp4", "a", "g2")], 2)


def test_group_regex_must_match_every_file_and_capture():
    with pytest.raises(DatasetError, match="does not match"):
        index.assign_groups([Video("/x/clip.mp4", "x/clip.mp4", "x")], r"^(actor\d+)_")
    with pytest.raises(DatasetError, match="no capturing group"):
        index.assign_groups([], r"actor")
