"""Beyond one machine: tf.data service, TPU flag validation, strategy selection."""

import collections

import pytest
import tensorflow as tf

from models import strategy as strategy_lib
from pipeline import make_dataset, storage
from tests.conftest import make_shards
from tests.conftest import run_train as train


@pytest.fixture(scope="module")
def service():
    """A tf.data service dispatcher and two workers, in this process, on loopback."""
    dispatcher = tf.data.experimental.service.DispatchServer()
    address = dispatcher.target.split("://")[1]
    config = tf.data.experimental.service.WorkerConfig(dispatcher_address=address)
    workers = [tf.data.experimental.service.WorkerServer(config) for _ in range(2)]
    yield dispatcher.target
    del workers


def test_data_service_delivers_every_training_example_once_per_epoch(service, tmp_path):
    make_shards(str(tmp_path), {"train": 20, "validation": 4, "test": 0}, shards_per_split=4)
    ds = make_dataset(str(tmp_path), "train", 4, training=True, data_service=service, seed=0)
    ids = [int(round(f[0].mean() / 12)) for b, _ in ds.take(15).as_numpy_iterator() for f in b]
    for epoch in range(3):
        assert sorted(ids[20 * epoch : 20 * (epoch + 1)]) == list(range(20))
    augmented = make_dataset(str(tmp_path), "train", 4, training=True, data_service=service, seed=0, augment=True)
    labels = [int(x) for _, b in augmented.take(10).as_numpy_iterator() for x in b]
    assert collections.Counter(labels[:20]) == collections.Counter(labels[20:]) == {0: 7, 1: 7, 2: 6}


def test_data_service_is_for_training_input_only(service, tmp_path):
    make_shards(str(tmp_path), {"train": 4, "validation": 4, "test": 0})
    with pytest.raises(ValueError, match="only training input"):
        make_dataset(str(tmp_path), "validation", 2, training=False, data_service=service)


def test_tpu_needs_cloud_storage_paths():
    storage.check_tpu_paths("tpu", data_dir="gs://b/shards", model_dir="gs://b/runs")
    storage.check_tpu_paths("mirrored", data_dir="/local", model_dir="runs")
    with pytest.raises(ValueError, match="--data_dir=/local/shards: with --strategy=tpu"):
        storage.check_tpu_paths("tpu", data_dir="/local/shards", model_dir="gs://b/runs")
    with pytest.raises(ValueError, match="--model_dir=runs: with --strategy=tpu"):
        storage.check_tpu_paths("tpu", data_dir="gs://b/shards", model_dir="runs")
    result = train("--strategy=tpu", "--data_dir=/local/shards", "--model_dir=gs://b/runs", "--model=gru")
    assert result.returncode != 0 and "must be gs:// paths" in result.stderr


def test_strategy_selection():
    assert isinstance(strategy_lib.make_strategy("one_device"), tf.distribute.OneDeviceStrategy)
    mirrored = strategy_lib.make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == len(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    with pytest.raises(ValueError, match="unknown 'gpu'"):
        strategy_lib.make_strategy("gpu")
    assert strategy_lib.per_replica_batch(64, mirrored) == 64 // mirrored.num_replicas_in_sync


def test_train_reads_through_the_data_service(service, tmp_path):
    data = str(tmp_path / "data")
    make_shards(data, {"train": 16, "validation": 6, "test": 6}, shards_per_split=4)
    result = train(f"--data_dir={data}", "--model=cnn_gru", f"--model_dir={tmp_path / 'm'}", "--epochs=2",
                   "--batch_size=4", f"--data_service={service}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "m" / "cnn_gru" / "metrics.json").exists()
