"""Two MultiWorkerMirroredStrategy workers as processes on 127.0.0.1 ports (TF_CONFIG)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from models import strategy as strategy_lib, trainer
from tests.conftest import ROOT, make_shards


def start_workers(command: list[str], log_dir) -> list[tuple[subprocess.Popen, str]]:
    """Both workers of a two-worker cluster running `command`; returns (process, log path) pairs."""
    workers = []
    for index, tf_config in enumerate(strategy_lib.local_cluster_configs(2)):
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=tf_config)
        log = str(log_dir / f"worker{index}-{time.monotonic_ns()}.log")
        with open(log, "w") as out:
            workers.append((subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log))
    return workers


def finish(workers, timeout: float = 300) -> list[str]:
    """Wait for both workers; returns their logs, failing if either failed."""
    logs = []
    for process, log in workers:
        process.wait(timeout)
        logs.append(open(log).read())
        assert process.returncode == 0, logs[-1][-3000:]
    return logs


def digests(log: str) -> list[str]:
    return re.findall(r"weights digest (\w+)", log)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("mw"))
    make_shards(out, {"train": 16, "validation": 6, "test": 6}, shards_per_split=4)
    return out


def test_each_worker_reads_its_own_half_of_every_epoch(data, tmp_path):
    workers = start_workers(["-m", "tests.multi_worker_input", data, "4"], tmp_path)
    ids = [json.loads(log.strip().splitlines()[-1]) for log in finish(workers, timeout=120)]
    assert len(ids[0]) == len(ids[1]) == 8
    assert not set(ids[0]) & set(ids[1])
    assert sorted(ids[0] + ids[1]) == list(range(16))


def test_two_workers_train_the_same_weights_and_only_the_chief_writes(data, tmp_path):
    model_dir = tmp_path / "m"
    args = ["train.py", f"--data_dir={data}", "--model=cnn_gru", f"--model_dir={model_dir}", "--epochs=3",
            "--batch_size=4", "--strategy=multi_worker"]
    chief, other = finish(start_workers(args, tmp_path))
    assert "CollectiveAllReduceStrategy with 2 replica(s)" in chief
    assert len(digests(chief)) == 1 and digests(chief) == digests(other)
    assert "not the chief" in other and "test accuracy" not in other
    metrics = json.loads((model_dir / "cnn_gru" / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["epochs_run"] == 3 and metrics["num_test_examples"] == 6
    assert [e["epoch"] for e in metrics["history"]] == [1, 2, 3]
    assert sorted(os.listdir(model_dir / "cnn_gru")) == [  # .lock: the chief held the run dir (pipeline.lock)
        ".lock", "best.keras", "confusion.png", "curves.png", "history.json", "latest-0003.keras", "logs", "metrics.json", "state.json"]


def test_a_non_chief_checkpointing_callback_writes_nothing(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    from pipeline.clip_spec import ClipSpec
    from pipeline.manifest import Manifest, Split

    empty = Split((), ())
    state = trainer.new_state("m", Manifest(("a",), ClipSpec(1, 1, 1), {"train": empty, "validation": empty, "test": empty}), "paper", "rgb")
    for chief, run_dir in ((False, tmp_path / "other"), (True, tmp_path / "chief")):
        run_dir.mkdir()
        callback = trainer.Checkpointing(str(run_dir), json.loads(json.dumps(state)), 8, patience=0, is_chief=chief)
        callback.set_model(model)
        callback.on_epoch_begin(0)
        callback.on_epoch_end(0, {"loss": 1.0, "val_accuracy": 0.5})
        assert callback.state["epochs_run"] == 1 and callback.state["best_val_accuracy"] == 0.5
    assert os.listdir(tmp_path / "other") == []
    assert sorted(os.listdir(tmp_path / "chief")) == ["best.keras", "history.json", "latest-0001.keras", "state.json"]


def test_a_killed_worker_restarted_with_its_peer_resumes(data, tmp_path):
    model_dir = tmp_path / "m"
    args = ["train.py", f"--data_dir={data}", "--model=gru", f"--model_dir={model_dir}", "--epochs=40",
            "--batch_size=4", "--strategy=multi_worker"]
    workers = start_workers(args, tmp_path)
    state_path = model_dir / "gru" / "state.json"
    deadline = time.monotonic() + 240
    while not (state_path.exists() and json.loads(state_path.read_text())["epochs_run"] >= 3):
        assert time.monotonic() < deadline and workers[0][0].poll() is None, open(workers[0][1]).read()[-3000:]
        time.sleep(0.2)
    workers[1][0].send_signal(signal.SIGKILL)
    chief, log = workers[0]
    chief.wait(120)  # the chief sees its peer gone and stops with a clear error
    assert chief.returncode != 0
    assert "a worker of the cluster stopped" in open(log).read()
    done = json.loads(state_path.read_text())["epochs_run"]
    assert 3 <= done < 40
    chief_log, other_log = finish(start_workers(args, tmp_path))
    assert f"resuming after epoch {done}" in chief_log and f"resuming after epoch {done}" in other_log
    assert digests(chief_log) == digests(other_log)
    state = json.loads(state_path.read_text())
    assert state["epochs_run"] == 40 and [e["epoch"] for e in state["history"]] == list(range(1, 41))
