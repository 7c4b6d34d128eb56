"""The command lines a person meets: mistakes answered in one line before TensorFlow loads, --help
that exits 0, operating-system errors without a traceback, quiet log lines, job progress.

The mistakes run as subprocesses with a `tensorflow` package on the path that refuses to import:
a command that loaded TensorFlow before answering fails these tests instead of being slow.
"""

from __future__ import annotations

import errno
import logging
import os
import pkgutil
import subprocess
import sys

import pytest

from pipeline import cli
from pipeline.progress import Progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    """A PYTHONPATH whose `tensorflow` raises on import."""
    path = tmp_path_factory.mktemp("poisoned")
    (path / "tensorflow").mkdir()
    (path / "tensorflow" / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    return str(path)


def run(no_tensorflow: str, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([no_tensorflow, ROOT])}
    return subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


MISTAKES = [
    (["train.py"], 2, "train: error: --data_dir is required (--help lists the flags)"),
    (["train.py", "--model=cnn_gruu", "--data_dir=x"], 2, "train: error: --model: unknown 'cnn_gruu'; choose one of "
     "simple_rnn, lstm, gru, cnn_simple_rnn, cnn_lstm, cnn_gru, mobilenet_gru, convnet_gru or all (--help lists the flags)"),
    (["train.py", "--epochs=ten"], 2, "train: error: flag --epochs=ten: invalid literal for int() with base 10: 'ten' "
     "(--help lists the flags)"),
    (["train.py", "--frame_input=rgb+rgb"], 2, "train: error: flag --frame_input=rgb+rgb: a '+' join of rgb, diff, "
     "next_diff, bg_diff, flow (--help lists the flags)"),
    (["train.py", "--augment=1.5"], 2, "train: error: flag --augment=1.5: 1.5 is not a number in the range [0.0, 1.0] "
     "(--help lists the flags)"),
    (["train.py", "--view=person"], 2, "train: error: flag --view=person: value should be one of <frame|actor|learned> "
     "(--help lists the flags)"),
    (["train.py", "--data_dir={empty}"], 1, "train: error: {empty}/manifest.json: no manifest; is {empty} the output dir "
     "of `python -m pipeline.prepare`?"),
    (["train.py", "--data_dir=/local", "--strategy=tpu"], 1, "train: error: --data_dir=/local: with --strategy=tpu, data "
     "and model dirs must be gs:// paths"),
    (["-m", "pipeline.prepare", "--data_dir={empty}", "--output_dir={empty}/out"], 1,
     "prepare: error: {empty}: no class folders (expected one folder of videos per class)"),
    (["-m", "pipeline.prepare", "--data_dir={empty}"], 2, "prepare: error: --output_dir is required (--help lists the flags)"),
    (["-m", "pipeline.prepare", "--data_dir={empty}", "--output_dir=o", "--candidates=2"], 2,
     "prepare: error: --candidates must be odd (one of them is the centre), got 2 (--help lists the flags)"),
    (["-m", "pipeline.prepare", "--data_dir={empty}", "--output_dir=o", "--noflow", "--next_gap=3"], 2,
     "prepare: error: --next_gap 3 needs with_next (or flow): it is the distance to the partner frame (--help lists the flags)"),
    (["-m", "pipeline.prepare", "--data_dir={empty}", "--output_dir=o", "--flow_average=2"], 2,
     "prepare: error: --flow_average must be odd (frames centred on each end of the flow), got 2 (--help lists the flags)"),
    (["-m", "pipeline.prepare", "--data_dir={empty}", "--output_dir=o", "--noflow", "--flow_average=3"], 2,
     "prepare: error: --flow_average 3 needs flow: it is how many frames each end of the flow averages (--help lists the flags)"),
    (["-m", "pipeline.prepare", "--data_dir={empty}", "--output_dir=o", "--frame_average=4"], 2,
     "prepare: error: --frame_average must be odd (frames centred on each stored frame), got 4 (--help lists the flags)"),
    (["-m", "pipeline.prepare", "--data_dir={empty}", "--output_dir=o", "--group_regex=("], 2,
     "prepare: error: flag --group_regex=(: not a regular expression with a capturing group (--help lists the flags)"),
    (["-m", "pipeline.predict", "--model=/nonexistent", "x.mp4"], 1, "predict: error: /nonexistent: not an export: no "
     "saved_model.pb, model.tflite or model.onnx (give EXPORT_DIR/<model>/<version> as export.py wrote it)"),
    (["export.py", "--model_dir=/nonexistent", "--export_dir=e"], 1,
     "export: error: /nonexistent: no such directory; give the --model_dir that train.py wrote"),
    (["export.py", "--model_dir={empty}", "--export_dir=e", "--model=cnn_gruu"], 2, "export: error: --model: unknown "
     "'cnn_gruu'; choose one of simple_rnn, lstm, gru, cnn_simple_rnn, cnn_lstm, cnn_gru, mobilenet_gru, convnet_gru or "
     "best (--help lists the flags)"),
    (["-m", "pipeline.verify", "{empty}"], 1, "verify: error: {empty}/manifest.json: no manifest; is {empty} the output "
     "dir of `python -m pipeline.prepare`?"),
    (["-m", "pipeline.download"], 2, "download: error: flag --output_dir=None: Flag --output_dir must have a value other "
     "than None. (--help lists the flags)"),
]


@pytest.mark.parametrize("command,code,message", MISTAKES, ids=[" ".join(m[0]) for m in MISTAKES])
def test_a_mistake_is_one_line_before_tensorflow_loads(no_tensorflow, tmp_path, command, code, message):
    empty = str(tmp_path)
    result = run(no_tensorflow, *[part.format(empty=empty) for part in command])
    assert (result.returncode, one_line(result)) == (code, message.format(empty=empty))
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["train.py"], ["export.py"], ["-m", "pipeline.prepare"], ["-m", "pipeline.predict"],
                                     ["-m", "pipeline.verify"], ["-m", "pipeline.synthetic"], ["-m", "pipeline.download"]])
def test_help_exits_0_with_the_commands_own_flags(no_tensorflow, command):
    result = run(no_tensorflow, *command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert "\nflags:\n" in result.stdout and ROOT not in result.stdout  # no module path as a section header
    if command == ["train.py"]:
        assert "  --model: One of simple_rnn, lstm, gru" in result.stdout
        assert "(default: convnet_gru)" in " ".join(result.stdout.split())  # however the line wraps
        assert "--helpfull" in result.stdout and "--logtostderr" not in result.stdout  # absl's own flags left out


@pytest.mark.parametrize("code,expected", [
    (errno.ENOSPC, "/out/a.rec: No space left on device; free space and run the same command again: it resumes"),
    (errno.EACCES, "/out/a.rec: Permission denied; check the permissions, then run the same command again"),
    (errno.EROFS, "/out/a.rec: Read-only file system; choose a writable place, or remount it, then run the same command again"),
])
def test_an_os_error_is_described_by_path_cause_and_what_to_do(code, expected):
    assert cli.describe_os_error(OSError(code, os.strerror(code), "/out/a.rec")) == expected


def test_a_missing_file_names_itself_and_a_directory_removed_mid_run_is_named_as_gone(tmp_path):
    missing = str(tmp_path / "a.rec")
    assert cli.describe_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", missing)) == (
        f"{missing}: No such file or directory; check the path")
    deep = str(tmp_path / "out" / ".prepare" / "clips" / "000008.rec.tmp")  # out/ was taken away while the job wrote
    assert cli.describe_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", deep)) == (
        f"{tmp_path / 'out'}: the directory is gone (removed while the job ran?); run the same command again: "
        "it redoes what was lost")
    assert cli.describe_os_error(FileNotFoundError(errno.ENOENT, "No such file", "gs://b/out/x")) == (
        "gs://b/out/x: No such file; check the path")  # remote: not probed


def test_an_os_error_in_a_command_is_one_line_and_its_traceback_needs_verbosity(monkeypatch, capsys):
    def full_disk(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/out/shard.tfrecord")

    guarded = cli._guarded(full_disk, "prepare")
    monkeypatch.setattr(cli, "verbose", lambda: False)
    with pytest.raises(SystemExit) as stop:
        guarded(["prepare"])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and err == (
        "prepare: error: /out/shard.tfrecord: No space left on device; free space and run the same command again: it resumes\n")
    monkeypatch.setattr(cli, "verbose", lambda: True)
    with pytest.raises(SystemExit):
        guarded(["prepare"])
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and err.endswith("it resumes\n")


def test_a_bug_is_not_turned_into_one_line(monkeypatch):
    def bug(argv):
        raise KeyError("oops")

    with pytest.raises(KeyError):
        cli._guarded(bug, "train")(["train"])


def test_log_lines_carry_the_time_and_the_level_but_no_thread_or_source():
    record = logging.LogRecord("absl", logging.INFO, "/work/train.py", 123, "trained %d epochs", (3,), None)
    warning = logging.LogRecord("absl", logging.WARNING, "/work/train.py", 123, "no %s", ("metrics.json",), None)
    plain = cli._PlainFormatter()
    line = plain.format(record)
    assert line[2] == line[5] == ":" and line[8:] == " trained 3 epochs"
    assert plain.format(warning)[8:] == " WARNING: no metrics.json"


def test_job_progress_skips_what_was_done_before_so_the_rate_is_the_work_done_now(caplog):
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    job = Progress(30, "train", unit="epoch", every=0.0)
    job.describe("run 1/3 gru")
    job.skip(10)  # a resumed run's epochs
    job.update(1)
    job.describe("run 2/3 lstm")
    job.update(1)
    assert job.done == 12 and job._initial == 10
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "run 1/3 gru: 0/30 epochs done" and lines[1].startswith("run 1/3 gru: 11/30 epochs, ")
    assert lines[2].startswith("run 2/3 lstm: 11/30 epochs done, ETA ") and lines[3].startswith("run 2/3 lstm: 12/30 epochs, ")


def test_the_demo_echoes_commands_that_paste_back_into_a_shell_as_they_ran():
    words = ["python", "-m", "pipeline.prepare", "--group_regex=^(actor\\d+)_", "--output_dir=/runs/my demo", "it's", "--a=b"]
    script = 'source <(sed -n "/^shown()/,/^}/p" run.sh); line=$(shown "$@"); echo "$line"; eval "set -- ${line#+ }"; printf "%s\\n" "$@"'
    result = subprocess.run(["bash", "-c", script, "bash", *words], cwd=ROOT, capture_output=True, text=True, timeout=30)
    shown, *back = result.stdout.splitlines()
    assert shown == "+ python -m pipeline.prepare '--group_regex=^(actor\\d+)_' '--output_dir=/runs/my demo' 'it'\\''s' --a=b"
    assert back == words


def test_tensorflow_retracing_notes_are_dropped_and_other_warnings_kept():
    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("tensorflow", logging.WARNING, "x.py", 1, message, (), None)

    note = "5 out of the last 13 calls to <function f at 0x7f> triggered tf.function retracing. Tracing is expensive"
    assert cli._drop_retracing_notes(record(note)) is False
    assert cli._drop_retracing_notes(record("Gradients do not exist for variables")) is True


# The modules that load TensorFlow when imported: the record schema and the tf.data side. Every other
# module of pipeline/ (found by walking the package, so a new one is checked too) must not.
TENSORFLOW_MODULES = {"pipeline.records", "pipeline.input.dataset", "pipeline.input.augment"}


def no_tensorflow_modules() -> list[str]:
    import pipeline

    found = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")]
    return ["pipeline", *sorted(set(found) - TENSORFLOW_MODULES), "models", "models.kinds"]


def test_the_module_walk_finds_every_stage():
    modules = no_tensorflow_modules()
    for expected in ("pipeline.prepare", "pipeline.writing.writer", "pipeline.writing.beam_engine", "pipeline.inference.runtimes",
                     "pipeline.sources.nightify", "pipeline.synthetic", "pipeline.download", "pipeline.frames"):
        assert expected in modules
    assert not TENSORFLOW_MODULES & set(modules) and len(modules) >= 35


def test_the_prepare_side_and_the_command_lines_import_without_tensorflow(no_tensorflow):
    # prepare's decoding workers import these; the command lines check their flags with them.
    modules = no_tensorflow_modules()
    result = run(no_tensorflow, "-c", f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\nprint('ok')")
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr[-2000:]


def test_a_tensorflow_op_error_loses_its_node_prefix_and_gains_the_advice():
    message = ("{{function_node __wrapped__SaveV2_dtypes_29_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
               "/out/variables/part-0; No space left on device [Op:SaveV2]")
    assert cli.describe_op_error(message) == "/out/variables/part-0; No space left on device; free space and run the same command again: it resumes"
    assert cli.describe_op_error("gs://b/x: permission refused\nmore") == "gs://b/x: permission refused"


def test_a_tensorflow_op_error_under_a_removed_directory_names_the_directory(tmp_path):
    gone = tmp_path / "runs"
    message = f"{gone}/cnn_gru/logs/train/events.out.tfevents.1; No such file or directory [Op:WriteSummary]"
    assert cli.describe_op_error(message) == (
        f"{gone}: the directory is gone (removed while the job ran?); run the same command again: it redoes what was lost")
    (tmp_path / "here").mkdir()
    present = f"{tmp_path}/here/x.tfrecord; No such file or directory"
    assert cli.describe_op_error(present) == f"{present}; check the path"


# What TensorFlow's gs:// client says (tsl curl_http_request and gcs_file_system): the HTTP status
# and the service's JSON body on the first lines, what it was doing on the last.
REFUSED_UPLOAD = """Error executing an HTTP request: HTTP response code 403 with body '{
  "error": {
    "code": 403,
    "message": "job@proj.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object.",
    "errors": [{"reason": "forbidden"}]
  }
}
'
\t when initiating an upload to gs://noct-bucket/shards/.prepare/clips/000003.rec.tmp"""
UNAVAILABLE = ("All 10 retry attempts failed. The last failure: Error executing an HTTP request: libcurl code 28 "
               "meaning 'Timeout was reached', error details: SSL connection timeout\n"
               "\t when reading metadata of gs://noct-bucket/shards/manifest.json")


def test_a_buckets_refusal_names_the_object_the_cause_and_what_to_do():
    assert cli.describe_op_error(REFUSED_UPLOAD) == (
        "gs://noct-bucket/shards/.prepare/clips/000003.rec.tmp: the bucket refused to write it (HTTP 403: "
        "job@proj.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage "
        "object.); give this account write access to the bucket, then run the same command again: it resumes")
    assert cli.describe_op_error(UNAVAILABLE) == (
        "gs://noct-bucket/shards/manifest.json: the storage service failed after 10 tries (no answer); check the "
        "network and the service's status, then run the same command again: it resumes")
    reading = "Error executing an HTTP request: HTTP response code 404\n\t when reading gs://nobucket/runs/state.json"
    assert cli.describe_op_error(reading) == (
        "gs://nobucket/runs/state.json: no such bucket or object (HTTP 404); check the bucket's name and the path")
    assert cli.describe_storage_error("/out/x; No space left on device") is None
