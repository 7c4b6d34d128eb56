"""Remote paths: everything prepare and train write goes through tf.io.gfile, so gs:// works.

TensorFlow's in-memory ram:// filesystem stands in for gs:// here: it is reached only through
tf.io.gfile (os.* cannot open it), so a local-only call anywhere on the path fails these tests.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from models import strategy as strategy_lib
from models import trainer
from pipeline import export_asset, index, make_dataset, storage
from pipeline import manifest as manifest_lib
from pipeline.clip_spec import ClipSpec
from pipeline.frames import VideoError, read_clip
from pipeline.writing import writer
from tests.conftest import SMALL, make_shards, split_tree

SETTINGS = writer.Settings(clip=ClipSpec(**SMALL), shard_size_mb=0.02)  # several shards per split


def test_path_handling_of_remote_and_local_forms(tmp_path):
    assert storage.is_remote("gs://bucket/shards") and not storage.is_remote("/data/shards")
    assert storage.relpath("gs://bucket/videos/Drink/a b.mp4", "gs://bucket/videos") == "Drink/a b.mp4"
    assert storage.relpath(str(tmp_path / "Drink" / "a.mp4"), str(tmp_path)) == "Drink/a.mp4"
    assert storage.abspath("gs://bucket/runs") == "gs://bucket/runs"
    assert storage.abspath("runs") == os.path.abspath("runs")
    assert manifest_lib.path_in("gs://bucket/shards") == "gs://bucket/shards/manifest.json"
    one = manifest_lib.Split((manifest_lib.Shard("train-00000-of-00001.tfrecord", 1, 1, ""),), (manifest_lib.Example("a/b.mp4", 0),))
    m = manifest_lib.Manifest(("a",), ClipSpec(), {"train": one, "validation": one, "test": one})
    assert manifest_lib.shard_paths("gs://b/s", m, "train") == ["gs://b/s/train-00000-of-00001.tfrecord"]
    with pytest.raises(OSError, match="ram://nothing/here.csv"):
        storage.read_bytes("ram://nothing/here.csv")
    storage.check_tpu_paths("tpu", data_dir="gs://b/shards", model_dir="gs://b/runs")


def test_remote_video_tree_indexes_and_decodes_like_the_local_one(video_tree):
    remote = "ram://remote-videos"
    storage.upload_tree(video_tree, remote)
    local_videos, remote_videos = index.index_tree(video_tree), index.index_tree(remote)
    assert [v.source for v in remote_videos] == [v.source for v in local_videos]
    assert [v.label_name for v in remote_videos] == [v.label_name for v in local_videos]
    for local, far in list(zip(local_videos, remote_videos))[:3]:
        a, b = read_clip(local.path, **SMALL), read_clip(far.path, **SMALL)
        np.testing.assert_array_equal(a.frames, b.frames)
        assert a.indices == b.indices
    with pytest.raises(VideoError, match=f"^{remote}/Drink/text.mp4: cannot open"):
        read_clip(f"{remote}/Drink/text.mp4", **SMALL)


def test_prepare_writes_the_same_shards_to_a_remote_output_dir(video_tree, tmp_path):
    names, by_split = split_tree(video_tree)
    local = writer.write_dataset(by_split, names, str(tmp_path / "local"), SETTINGS, num_workers=2)
    remote_dir = "ram://prepared"
    remote = writer.write_dataset(by_split, names, remote_dir, SETTINGS, num_workers=2)
    assert remote == local  # the same shard names, counts, sizes and sha256, the same examples
    assert manifest_lib.load(remote_dir) == manifest_lib.load(str(tmp_path / "local"))
    assert not tf.io.gfile.exists(remote_dir + "/" + writer.WORK_DIR)
    again = writer.write_dataset(by_split, names, remote_dir, SETTINGS, num_workers=2)  # complete: nothing to do
    assert again == manifest_lib.load(remote_dir)
    ds = make_dataset(remote_dir, "validation", 4, training=False)
    assert sum(int(labels.shape[0]) for _, labels in ds) == local.split("validation").num_examples


def test_training_writes_checkpoints_and_reports_to_a_remote_model_dir_and_export_reads_it(tmp_path):
    import keras

    import export
    from models import experiment, serving

    data = "ram://train-data"
    local = str(tmp_path / "data")
    make_shards(local, {"train": 8, "validation": 4, "test": 4})
    storage.upload_tree(local, data)
    config = trainer.TrainConfig(data_dir=data, model_dir="ram://runs", epochs=2, batch_size=4)
    strategy = strategy_lib.make_strategy("one_device")
    result = experiment.train_and_evaluate("cnn_gru", config, strategy, manifest_lib.load(data))
    assert result["epochs_run"] == 2 and result["num_test_examples"] == 4
    files = sorted(n.rstrip("/") for n in tf.io.gfile.listdir("ram://runs/cnn_gru"))
    assert files == ["best.keras", "confusion.png", "curves.png", "history.json", "latest-0002.keras", "logs", "metrics.json", "state.json"]
    assert json.loads(storage.read_text("ram://runs/cnn_gru/state.json"))["epochs_run"] == 2
    assert storage.read_bytes("ram://runs/cnn_gru/curves.png")[:4] == b"\x89PNG"

    saved = export.export_model("ram://runs", "best", "ram://exported")
    assert saved == "ram://exported/cnn_gru/1" and serving.next_version("ram://exported/cnn_gru") == 2
    assert {"saved_model.pb", "variables", "assets.extra"} <= set(storage.listdir(saved))
    assert export_asset.read(saved).label_names == ("class0", "class1", "class2")
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    served = tf.saved_model.load(saved).signatures["serving_default"](frames=tf.constant(frames))["probabilities"]
    expected = keras.models.load_model("ram://runs/cnn_gru/best.keras").predict(frames, verbose=0)
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)
    with pytest.raises(FileExistsError, match="ram://exported/cnn_gru/1 exists"):
        export.export_model("ram://runs", "cnn_gru", "ram://exported", version=1)
    with pytest.raises(FileNotFoundError, match="ram://runs/gru/best.keras: no best checkpoint"):
        export.export_model("ram://runs", "gru", "ram://exported")


def test_upload_tree_copies_everything_and_the_named_file_last(tmp_path, monkeypatch):
    for rel in ("saved_model.pb", "a.txt", "variables/v.index", "variables/v.data", "assets.extra/p.json"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text(rel)
    copied = []
    copy = tf.io.gfile.copy
    monkeypatch.setattr(tf.io.gfile, "copy", lambda src, dst, overwrite: (copied.append(dst), copy(src, dst, overwrite)))
    storage.upload_tree(str(tmp_path), "ram://up/1", last="saved_model.pb")
    assert len(copied) == 5 and copied[-1] == "ram://up/1/saved_model.pb"
    storage.upload_tree(str(tmp_path), "ram://up/2")
    assert len(copied) == 10
    for rel in ("saved_model.pb", "a.txt", "variables/v.index", "variables/v.data", "assets.extra/p.json"):
        assert storage.read_text("ram://up/1/" + rel) == storage.read_text("ram://up/2/" + rel) == rel
