"""Faults a production job meets, injected for real: a full filesystem and a read-only one (small
tmpfs mounts: CI runs as root; skipped, with the reason, where mounting is not allowed), an output
or run directory removed while the job writes, a bucket that refuses a write (ram:// standing in
for gs://, refusing with TensorFlow's own error), two runs on one directory, a lock left by a killed
run, kill -9 at seeded points of prepare and inside training epochs. Each asserts the one line the
user sees, the exit code, and that the rerun ends where a clean run does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from pipeline import lock
from pipeline.sources import synthetic
from pipeline.writing import writer
from tests.conftest import ROOT, cached_clips, make_shards, run_module

PREPARE = ["--num_frames=4", "--height=32", "--width=40", "--group_regex=^(actor\\d+)_", "--num_workers=1", "--shard_size_mb=0.05",
           "--candidates=1", "--noflow"]


def shard_bytes(out_dir: str) -> dict[str, bytes]:
    return {n: open(os.path.join(out_dir, n), "rb").read() for n in sorted(os.listdir(out_dir)) if n.endswith(".tfrecord")}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("fault-videos"))
    synthetic.generate(root, clips_per_class=6, num_actors=6, seed=3)
    return root


@pytest.fixture(scope="module")
def clean_run(videos, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("clean") / "shards")
    result = run_module("pipeline.prepare", f"--data_dir={videos}", f"--output_dir={out}", *PREPARE)
    assert result.returncode == 0, result.stderr
    return out


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _mount_tmpfs(path: str, options: str) -> None:
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not allowed'}); needs root on Linux")


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def mount(name: str, options: str) -> str:
        path = str(tmp_path / name)
        _mount_tmpfs(path, options)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", path], capture_output=True)


def test_prepare_into_a_full_disk_is_one_line_and_the_same_command_resumes_to_a_clean_runs_bytes(videos, clean_run, tmpfs):
    disk = tmpfs("small", f"size={max(4096, _size(clean_run) // 2 // 4096 * 4096)}")
    out = os.path.join(disk, "shards")
    full = run_module("pipeline.prepare", f"--data_dir={videos}", f"--output_dir={out}", *PREPARE)
    last = full.stderr.strip().splitlines()[-1]
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert re.fullmatch(rf"prepare: error: {re.escape(out)}/\S+: No space left on device; free space and run the same "
                        "command again: it resumes", last), last
    subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
    again = run_module("pipeline.prepare", f"--data_dir={videos}", f"--output_dir={out}", *PREPARE)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming: " in again.stderr  # what was encoded before the disk filled was kept
    assert shard_bytes(out) == shard_bytes(clean_run) and len(shard_bytes(out)) > 1


def test_prepare_into_a_read_only_filesystem_is_one_line(videos, tmpfs):
    place = tmpfs("read-only", "ro,size=1m")
    out = os.path.join(place, "shards")
    result = run_module("pipeline.prepare", f"--data_dir={videos}", f"--output_dir={out}", *PREPARE)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"prepare: error: {out}: Read-only file system; choose a writable place, or remount it, then run the same command again")


def _wait_for_holder(directory: str, process: subprocess.Popen, timeout: float = 120) -> None:
    path = os.path.join(directory, lock.LOCK_FILE)
    deadline = time.monotonic() + timeout  # a hang bound, not a speed judgement
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(path) and f'"pid": {process.pid}' in open(path).read():
            return
        time.sleep(0.05)
    pytest.fail(f"{directory} was never held by pid {process.pid} (exit {process.poll()})")


def _start(command: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _refusal(out: str, pid: int, command: str) -> str:
    return (rf"{command}: error: {re.escape(out)}: in use by {command} \(pid {pid} on {re.escape(socket.gethostname())}, "
            r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\); wait for it to finish or stop it, then run this again")


def test_a_second_prepare_into_a_held_directory_is_refused_at_once_and_the_first_is_untouched(videos, clean_run, tmp_path):
    out = str(tmp_path / "shards")
    first = _start(["-m", "pipeline.prepare", f"--data_dir={videos}", f"--output_dir={out}", *PREPARE])
    _wait_for_holder(out, first)
    second = run_module("pipeline.prepare", f"--data_dir={videos}", f"--output_dir={out}", *PREPARE)
    _, err = first.communicate(timeout=600)
    assert second.returncode == 1 and re.fullmatch(_refusal(out, first.pid, "prepare"), second.stderr.strip().splitlines()[-1]), second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err[-2000:]
    assert shard_bytes(out) == shard_bytes(clean_run)


def test_prepare_whose_output_is_removed_mid_run_names_it_and_the_same_command_redoes_it(videos, clean_run, tmp_path):
    out = str(tmp_path / "shards")
    args = ["-m", "pipeline.prepare", f"--data_dir={videos}", f"--output_dir={out}", *PREPARE]
    first = _start(args)
    clips_dir = os.path.join(out, writer.WORK_DIR, "clips")
    _wait_until(first, lambda: cached_clips(clips_dir) >= 5)
    while os.path.exists(out):  # the job keeps writing while it is removed: remove until it stays gone
        shutil.rmtree(out, ignore_errors=True)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == (f"prepare: error: {out}: the directory is gone (removed while the job ran?); "
                                            "run the same command again: it redoes what was lost")
    again = run_module(*args[1:])
    assert again.returncode == 0, again.stderr[-2000:]
    assert shard_bytes(out) == shard_bytes(clean_run)


def test_a_second_training_on_a_held_run_dir_is_refused_and_the_first_finishes(clean_run, tmp_path):
    args = ["train.py", f"--data_dir={clean_run}", "--model=gru", f"--model_dir={tmp_path}", "--epochs=3", "--batch_size=8"]
    first = _start(args)
    _wait_for_holder(str(tmp_path / "gru"), first)
    second = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    _, err = first.communicate(timeout=600)
    assert second.returncode == 1 and re.fullmatch(_refusal(str(tmp_path / "gru"), first.pid, "train"), second.stderr.strip()), second.stderr
    assert first.returncode == 0 and os.path.exists(tmp_path / "gru" / "metrics.json"), err[-2000:]


def test_a_lock_left_by_a_killed_process_does_not_block_and_a_live_one_does(tmp_path):
    holder = _start(["-c", f"from pipeline import lock; import time\nwith lock.hold({str(tmp_path)!r}, 'prepare'):\n"
                           "    print('held', flush=True); time.sleep(600)"])
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(lock.LockedError, match=rf"in use by prepare \(pid {holder.pid} on "):
        with lock.hold(str(tmp_path), "prepare"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    with lock.hold(str(tmp_path), "prepare"):
        with lock.hold(str(tmp_path), "prepare"):  # this process again (command line, then library): no-op
            pass
    with lock.hold("ram://bucket/shards", "prepare"):  # remote: not locked, path untouched
        pass


def test_an_empty_split_is_said_at_the_end_with_the_counts_and_the_flags_to_change(tmp_path, caplog):
    manifest = make_shards(str(tmp_path), {"train": 6, "validation": 2, "test": 0})
    caplog.set_level("WARNING", logger="pipeline.writing.writer")
    writer._log_summary(manifest, planned=8, seconds=1.0)
    assert [r.getMessage() for r in caplog.records] == [
        "the test split is empty (8 clips: train 6, validation 2, test 0): too few clips or groups for the split; train.py "
        "needs clips in validation and test: add clips, change --split_fractions (or --group_regex), or use --num_folds"]


def _digest(stderr: str) -> str:
    found = re.findall(r"weights digest (\w+)", stderr)
    assert found, stderr[-2000:]
    return found[-1]


def _epochs_run(state_path) -> int:
    return json.loads(state_path.read_text())["epochs_run"] if state_path.exists() else 0


def _kill_inside(args: list[str], state_path, epoch: int, fraction: float, epoch_seconds: float) -> None:
    """Start the run and kill -9 it `fraction` of an epoch after it has saved `epoch` epochs: inside the next one."""
    process = _start(args)
    _wait_until(process, lambda: _epochs_run(state_path) >= epoch)
    time.sleep(fraction * epoch_seconds)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def test_a_run_killed_twice_inside_epochs_and_resumed_ends_with_the_uninterrupted_runs_weights(clean_run, tmp_path):
    """--seed and --deterministic: the same weights digest and metrics for a run killed with kill -9
    at two seeded points inside epochs 3 and 5 (a fraction of an epoch's time after epochs 2 and 4
    were saved) as for an uninterrupted one: the resume restarts the broken epoch from its start,
    with the augmentation, dropout and input position of the epoch boundary."""
    import numpy as np

    def args(model_dir) -> list[str]:
        return ["train.py", f"--data_dir={clean_run}", "--model=cnn_gru", f"--model_dir={model_dir}", "--epochs=6",
                "--batch_size=8", "--seed=3", "--deterministic"]

    env = dict(os.environ, PYTHONPATH=ROOT)
    whole = subprocess.run([sys.executable, *args(tmp_path / "whole")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    history = json.loads((tmp_path / "whole" / "cnn_gru" / "metrics.json").read_text())["history"]
    epoch_seconds = float(np.median([e["epoch_seconds"] for e in history[1:]]))  # the first one builds the model
    state_path = tmp_path / "killed" / "cnn_gru" / "state.json"
    fractions = np.random.default_rng(11).uniform(0.2, 0.8, size=2)
    _kill_inside(args(tmp_path / "killed"), state_path, 2, fractions[0], epoch_seconds)
    first_kill = _epochs_run(state_path)
    _kill_inside(args(tmp_path / "killed"), state_path, 4, fractions[1], epoch_seconds)
    second_kill = _epochs_run(state_path)
    assert 2 <= first_kill < second_kill < 6
    resumed = subprocess.run([sys.executable, *args(tmp_path / "killed")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and f"resuming after epoch {second_kill}" in resumed.stderr, resumed.stderr[-2000:]
    assert _digest(resumed.stderr) == _digest(whole.stderr)
    metrics = [json.loads((tmp_path / run / "cnn_gru" / "metrics.json").read_text()) for run in ("whole", "killed")]
    for key in ("test_accuracy", "test_loss", "best_epoch", "best_val_accuracy"):
        assert metrics[0][key] == metrics[1][key], key
    assert [e["loss"] for e in metrics[0]["history"]] == [e["loss"] for e in metrics[1]["history"]]


# A 403 as TensorFlow's gs:// client reports it (tests/test_cli has the other statuses).
REFUSAL = """Error executing an HTTP request: HTTP response code 403 with body '{
  "error": {"code": 403, "message": "job@proj.iam.gserviceaccount.com does not have storage.objects.create access."}
}
'
\t when initiating an upload to {path}"""


class _RefusingBucket:
    """tf.io.gfile, except that opening a file to write fails like a bucket refusing it, after `allowed` writes."""

    def __init__(self, gfile, allowed: int):
        self.gfile, self.allowed, self.refused = gfile, allowed, None

    def __getattr__(self, name):
        return getattr(self.gfile, name)

    def GFile(self, path, mode="r"):  # noqa: N802 (tf.io.gfile's name)
        import tensorflow as tf

        if "w" in mode:
            if self.allowed == 0:
                self.refused = path
                raise tf.errors.PermissionDeniedError(None, None, REFUSAL.replace("{path}", path))
            self.allowed -= 1
        return self.gfile.GFile(path, mode)


def test_a_bucket_that_refuses_a_write_mid_run_is_one_line_and_the_same_command_resumes_to_a_clean_runs_shards(
        video_tree, tmp_path, monkeypatch, capsys, caplog):
    """ram:// stands in for gs:// (reached only through tf.io.gfile); the refusal comes as TensorFlow's
    own PermissionDeniedError with the service's message."""
    from pipeline import cli, storage
    from pipeline.clip_spec import ClipSpec
    from tests.conftest import SMALL, split_tree

    names, by_split = split_tree(video_tree)
    settings = writer.Settings(clip=ClipSpec(**SMALL), shard_size_mb=0.02)
    clean = writer.write_dataset(by_split, names, str(tmp_path / "clean"), settings)
    out, gfile = "ram://refusing-bucket/shards", storage._gfile()
    bucket = _RefusingBucket(gfile, allowed=11)  # the run's fingerprint, then 5 clips (each its duration and record)
    monkeypatch.setattr(storage, "_gfile", lambda: bucket)
    with pytest.raises(SystemExit) as ended:
        cli._guarded(lambda argv: writer.write_dataset(by_split, names, out, settings), "prepare")(["prepare"])
    err = capsys.readouterr().err
    assert ended.value.code == 1 and "Traceback" not in err
    assert bucket.refused.startswith(f"{out}/{writer.WORK_DIR}/clips/")
    assert err.splitlines()[-1] == (
        f"prepare: error: {bucket.refused}: the bucket refused to write it (HTTP 403: job@proj.iam.gserviceaccount.com "
        "does not have storage.objects.create access.); give this account write access to the bucket, then run the "
        "same command again: it resumes")
    kept = [n for n in gfile.listdir(f"{out}/{writer.WORK_DIR}/clips") if n.endswith((".rec", ".skip"))]
    assert len(kept) == 5
    monkeypatch.setattr(storage, "_gfile", lambda: gfile)  # access granted
    with caplog.at_level("INFO"):
        again = writer.write_dataset(by_split, names, out, settings)
    assert f"resuming: 5 of {sum(map(len, by_split.values()))} clips already encoded" in caplog.text
    assert again == clean
    splits = list(clean.splits)
    assert [gfile.GFile(f"{out}/{s.file}", "rb").read() for s in again.shards(splits)] == [
        open(tmp_path / "clean" / s.file, "rb").read() for s in clean.shards(splits)]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> str:
    """A GRU trained one epoch on tiny clips (in-process): something to export."""
    import tensorflow as tf

    from models import experiment, trainer
    from pipeline import manifest as manifest_lib

    root = tmp_path_factory.mktemp("tiny-run")
    data = str(root / "data")
    make_shards(data, {"train": 8, "validation": 4, "test": 4}, num_frames=3, height=16, width=16)
    config = trainer.TrainConfig(data_dir=data, model_dir=str(root / "models"), epochs=1, batch_size=4, recipe="paper")
    experiment.train_and_evaluate("gru", config, tf.distribute.get_strategy(), manifest_lib.load(data))
    return config.model_dir


@pytest.mark.parametrize("options, cause", [("ro,size=1m", "Read-only file system"), ("size=64k", "No space left on device")])
def test_export_into_a_read_only_or_full_filesystem_is_one_line_and_leaves_no_version(tiny_run, tmpfs, options, cause):
    place = tmpfs("export-place", options)
    result = run_module("export", f"--model_dir={tiny_run}", "--model=gru", f"--export_dir={place}/e")
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert re.fullmatch(rf"export: error: {re.escape(place)}/\S*[:;] {cause}; (free space|choose a writable place).+", last), last
    versions = os.listdir(os.path.join(place, "e", "gru")) if os.path.isdir(os.path.join(place, "e", "gru")) else []
    assert [v for v in versions if v.isdigit()] == []  # no half-written version for TF Serving to load


def test_predict_rows_to_a_read_only_filesystem_is_one_line(tiny_run, tmpfs, tmp_path):
    import export

    saved = export.export_model(tiny_run, "gru", str(tmp_path / "exported"))
    video = synthetic.generate(str(tmp_path / "v"), clips_per_class=1, num_actors=1, seed=0)[0]
    place = tmpfs("rows", "ro,size=1m")
    result = run_module("pipeline.predict", f"--model={saved}", "--window=1", f"--output={place}/rows.csv", video)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert re.fullmatch(rf"predict: error: {re.escape(place)}/rows.csv: Read-only file system; .+", result.stderr.strip().splitlines()[-1])


def test_every_model_and_recipe_trains_to_the_same_weights_twice_with_seed_and_deterministic(tmp_path):
    """Reproducibility beyond the one model the kill -9 test trains: each of the eight models, under
    both recipes (the improved one with its augmentation and motion input: optical flow for
    ConvNet_GRU), two runs, one digest."""
    data = str(tmp_path / "data")
    make_shards(data, {"train": 8, "validation": 4, "test": 4}, num_frames=3, height=16, width=16, flow=True)  # as prepare's defaults
    digests = []
    for run in ("a", "b"):
        result = run_module("train", f"--data_dir={data}", "--model=all", "--recipe=paper,improved", f"--model_dir={tmp_path / run}",
                            "--epochs=1", "--batch_size=4", "--seed=5", "--deterministic", timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        digests.append(sorted(re.findall(r"(\w+): trained 1 epochs; weights digest (\w+)", result.stderr)))
    assert len(digests[0]) == 16 and digests[0] == digests[1]
    assert len({d for _, d in digests[0]}) == 16  # sixteen different models, not one digest for all


def test_training_onto_a_full_disk_is_one_line_and_the_same_command_resumes(tmp_path, tmpfs):
    data = str(tmp_path / "data")
    make_shards(data, {"train": 8, "validation": 4, "test": 4}, num_frames=3, height=16, width=16)
    disk = tmpfs("train-disk", "size=12m")  # a GRU checkpoint here is about 5 MB: room for epoch 1's two, not epoch 2's
    args = [f"--data_dir={data}", "--model=gru", f"--model_dir={disk}/runs", "--epochs=3", "--batch_size=4", "--seed=1"]
    full = run_module("train", *args)
    last = full.stderr.strip().splitlines()[-1]
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert re.fullmatch(rf"train: error: {re.escape(disk)}/runs/gru/\S+[:;] No space left on device; free space and run the same "
                        r"command again: it resumes", last), last
    state = json.load(open(os.path.join(disk, "runs", "gru", "state.json")))
    assert 1 <= state["epochs_run"] < 3  # the epochs finished before the disk filled are kept, named by state.json
    subprocess.run(["mount", "-o", "remount,size=128m", disk], check=True)
    again = run_module("train", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"gru: resuming after epoch {state['epochs_run']}" in again.stderr
    assert json.load(open(os.path.join(disk, "runs", "gru", "metrics.json")))["epochs_run"] == 3


def test_training_whose_run_dir_is_removed_mid_run_names_it_and_the_same_command_trains_again(tmp_path):
    data = str(tmp_path / "data")
    make_shards(data, {"train": 8, "validation": 4, "test": 4}, num_frames=3, height=16, width=16)
    runs = str(tmp_path / "runs")
    args = ["train.py", f"--data_dir={data}", "--model=gru", f"--model_dir={runs}", "--epochs=40", "--batch_size=4"]
    first = _start(args)
    state = os.path.join(runs, "gru", "state.json")
    _wait_until(first, lambda: os.path.exists(state))
    while os.path.exists(runs):  # epoch 1 is saved: take the run away while later epochs write
        shutil.rmtree(runs, ignore_errors=True)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == (f"train: error: {runs}: the directory is gone (removed while the job ran?); "
                                            "run the same command again: it redoes what was lost")
    again = run_module("train", f"--data_dir={data}", "--model=gru", f"--model_dir={runs}", "--epochs=2", "--batch_size=4")
    assert again.returncode == 0 and json.load(open(os.path.join(runs, "gru", "metrics.json")))["epochs_run"] == 2, again.stderr[-2000:]


def _wait_until(process: subprocess.Popen, condition, timeout: float = 300) -> None:
    """Poll until `condition()` holds or `process` ends (the timeout is a hang bound, not a speed judgement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None and not condition():
        time.sleep(0.01)


def _kill_when_encoded(args: list[str], clips_dir: str, count: int) -> int:
    """Start prepare, kill -9 it once `count` clips are cached; returns how many were."""
    proc = _start(["-m", "pipeline.prepare", *args])
    _wait_until(proc, lambda: cached_clips(clips_dir) >= count)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return cached_clips(clips_dir)


def test_prepare_killed_at_seeded_points_resumes_each_time_to_a_clean_runs_bytes(videos, clean_run, tmp_path):
    import numpy as np

    out = str(tmp_path / "shards")
    args = [f"--data_dir={videos}", f"--output_dir={out}", *PREPARE]
    clips_dir = os.path.join(out, writer.WORK_DIR, "clips")
    points = sorted(int(k) for k in np.random.default_rng(17).choice(np.arange(3, 60), size=2, replace=False))
    done = [_kill_when_encoded(args, clips_dir, k) for k in points]
    assert done[0] >= points[0] and done[1] >= max(points[1], done[0]) and not os.path.exists(os.path.join(out, "manifest.json"))
    final = run_module("pipeline.prepare", *args)
    assert final.returncode == 0, final.stderr[-2000:]
    assert f"resuming: {done[1]} of 72 clips already encoded" in final.stderr
    assert shard_bytes(out) == shard_bytes(clean_run)
