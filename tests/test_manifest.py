"""The typed manifest: one reader and writer, folds and their roles, malformed files named once."""

import json
import os

import pytest

from pipeline import manifest as manifest_lib
from pipeline.clip_spec import ClipSpec
from tests.conftest import make_shards


def test_round_trip_of_a_written_manifest(tmp_path):
    m = make_shards(str(tmp_path), {"train": 5, "validation": 2, "test": 2})
    loaded = manifest_lib.load(str(tmp_path))
    assert loaded == m and loaded.count(["train", "test"]) == 7
    assert [e.label for e in loaded.examples("validation")] == [0, 1]
    assert loaded.roles() == manifest_lib.Roles(("train",), ("validation",), ("test",))


def _fold_manifest(k: int) -> manifest_lib.Manifest:
    split = manifest_lib.Split((manifest_lib.Shard("x", 1, 1, "0"),), (manifest_lib.Example("a/x.mp4", 0, "g"),))
    return manifest_lib.Manifest(("a", "b"), ClipSpec(), {manifest_lib.fold_name(i): split for i in range(k)}, num_folds=k)


def test_median_seconds_of_the_known_durations():
    examples = tuple(manifest_lib.Example(f"{i}.mp4", 0, "", s) for i, s in enumerate((3.0, 0.0, 1.0, 2.0, 10.0)))
    split = manifest_lib.Split((manifest_lib.Shard("x", 5, 1, "0"),), examples)
    m = manifest_lib.Manifest(("a",), ClipSpec(), {"train": split, "validation": split, "test": split})
    assert m.median_seconds("train") == 2.5  # of 1, 2, 3, 10: the unknown (0) left out
    assert m.median_seconds(["train", "test"]) == 2.5
    unknown = manifest_lib.Split((), (manifest_lib.Example("x.mp4", 0),))
    assert manifest_lib.Manifest(("a",), ClipSpec(), {"train": unknown}).median_seconds("train") == 0.0


def test_fold_roles_test_one_validate_the_next_train_the_rest():
    m = _fold_manifest(6)
    assert m.roles(0) == manifest_lib.Roles(("fold2", "fold3", "fold4", "fold5"), ("fold1",), ("fold0",))
    assert m.roles(5) == manifest_lib.Roles(("fold1", "fold2", "fold3", "fold4"), ("fold0",), ("fold5",))
    tested = [m.roles(i).test[0] for i in range(6)]
    assert sorted(tested) == sorted(m.splits)  # every fold tested exactly once
    with pytest.raises(manifest_lib.ManifestError, match="fold must be one of 0..5"):
        m.roles(6)
    fixed = manifest_lib.Manifest(("a",), ClipSpec(), {}, num_folds=0)
    with pytest.raises(manifest_lib.ManifestError, match="fixed splits, not folds"):
        fixed.roles(1)


def test_fold_manifest_survives_json():
    m = _fold_manifest(3)
    assert manifest_lib.from_json(json.loads(json.dumps(m.to_json()))) == m


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("label_names"), "missing field 'label_names'"),
    (lambda d: d.update(format_version=7), "format_version 7"),
    (lambda d: d["clip"].update(candidates=2), "field 'clip': candidates must be odd"),
    (lambda d: d["splits"].pop("test"), "field 'splits' has"),
    (lambda d: d["splits"]["train"]["examples"][0].update(label=9), "splits.train: label out of range"),
    (lambda d: d["splits"]["train"]["shards"][0].update(num_examples=99), "splits.train: shards hold"),
    (lambda d: d["splits"]["train"]["shards"][0].pop("sha256"), "splits.train: malformed shard"),
])
def test_malformed_manifest_fails_once_naming_file_and_field(tmp_path, change, message):
    make_shards(str(tmp_path), {"train": 4, "validation": 2, "test": 2})
    path = os.path.join(tmp_path, "manifest.json")
    data = json.load(open(path))
    change(data)
    json.dump(data, open(path, "w"))
    with pytest.raises(manifest_lib.ManifestError, match=message) as e:
        manifest_lib.load(str(tmp_path))
    assert str(e.value).startswith(path)


def test_version_1_manifest_is_read_as_plain_clips(tmp_path):
    m = make_shards(str(tmp_path), {"train": 3, "validation": 1, "test": 1}, num_frames=4, height=8, width=12)
    old = m.to_json()
    del old["clip"], old["num_folds"]
    old.update(format_version=1, num_frames=4, height=8, width=12, settings={"jpeg_quality": 80})
    for split in old["splits"].values():
        for e in split["examples"]:
            del e["group"]
    loaded = manifest_lib.from_json(old)
    assert loaded.clip == ClipSpec(4, 8, 12, 80) and loaded.count("train") == 3 and loaded.num_folds == 0
