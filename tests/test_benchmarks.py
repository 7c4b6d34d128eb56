"""Each benchmark runs at its small size and prints the figures it promises (CI smoke run;
the full-size tables are in BUILD_NOTES.md)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(script: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), "--size=small"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{"):])


def test_prepare_speed():
    out = run("prepare_speed.py")
    for kind in ("short_gop", "long_gop"):
        seconds = out[kind]["seconds"]
        assert set(seconds) == {"full_decode", "seek", "keyframes_only", "ours"} and min(seconds.values()) > 0
        # the printed ratios are the ones its own timings give (a baseline swapped or inverted fails)
        better = min(seconds["full_decode"], seconds["seek"])
        assert out[kind]["speedup_vs_better_of_full_decode_and_seek"] == pytest.approx(better / seconds["ours"])
        assert out[kind]["ours_vs_keyframes_only_floor"] == pytest.approx(seconds["ours"] / seconds["keyframes_only"])


def test_prepare_cost():
    out = run("prepare_cost.py")
    for kind in ("short_gop", "long_gop"):
        seconds, ratios = out[kind]["seconds"], out[kind]["over_full_decode"]
        assert set(seconds) == {"full_decode", "defaults", "defaults_before", "exact_decode", "one_candidate", "one_frame"} and min(seconds.values()) > 0
        for name, ratio in ratios.items():  # each printed ratio is its own timings' (a baseline swapped or inverted fails)
            assert ratio == pytest.approx(seconds[name] / seconds["full_decode"])
        # the defaults decode exactly what exact_decode does and then convert, flow and encode: never less time
        assert seconds["defaults"] > seconds["exact_decode"]
        # one candidate's frames are a subset of the defaults' (its centre ones), with a third of the flows
        assert seconds["defaults"] > seconds["one_candidate"]


def test_prepare_defaults():
    out = run("prepare_defaults.py")
    assert out["videos"] == 12 and min(out["seconds"].values()) > 0
    assert out["time_ratio_defaults_to_one_frame"] == pytest.approx(out["seconds"]["defaults"] / out["seconds"]["one_frame"])
    assert out["time_ratio_defaults_to_single_frame_flow"] == pytest.approx(
        out["seconds"]["defaults"] / out["seconds"]["single_frame_flow"])
    # averaging changes what the flow images hold, not how many there are
    assert abs(out["shard_bytes"]["single_frame_flow"] - out["shard_bytes"]["defaults"]) < 0.2 * out["shard_bytes"]["defaults"]
    # 12 images per time step instead of one: the stored bytes grow by several times, whatever the noise
    ratio = out["bytes_ratio_defaults_to_one_frame"]
    assert ratio == pytest.approx(out["shard_bytes"]["defaults"] / out["shard_bytes"]["one_frame"]) and 3 < ratio < 12


@pytest.mark.parametrize("script", ["input_speed.py", "train_input_bound.py"])
def test_throughput_ratios(script):
    out = run(script)
    assert 0 < out["ratio"] < 10 and out["goal"] in (0.8, 0.95)


def test_memory():
    out = run("memory.py")
    assert out["clips"] == [16, 128] and all(b > 50e6 for b in out["peak_rss_bytes"])
    assert 0.5 < out["ratio"] < 2 and 0.5 < out["held_ratio"] < 2
    assert all(h > 50e6 for h in out["held_rss_bytes"])


def test_timeline_memory():
    out = run("timeline_memory.py")
    assert out["seconds_of_input"] == [6, 96] and out["windows"] == [5, 105]  # 1.73 s windows every 0.87 s at 10 fps
    assert all(b > 50e6 for b in out["peak_rss_bytes"]) and 0.5 < out["ratio"] < 2
    assert all(w > 0 for w in out["windows_per_second"])


def test_export_formats():
    out = run("export_formats.py")
    formats = out["models"]["cnn_gru"]["formats"]
    assert out["models"]["cnn_gru"]["test_clips"] == 48
    assert sorted(formats) == ["onnx", "saved_model", "tflite", "tflite-float16", "tflite-int8"]
    for name in ("tflite", "onnx"):  # float32 exports: the same function
        assert formats[name]["agreement"] >= 0.99 and formats[name]["max_abs_difference"] < 1e-5
    assert formats["tflite-int8"]["bytes"] < formats["tflite-float16"]["bytes"] < formats["tflite"]["bytes"]
    assert all(f["latency_ms"] > 0 and 0 <= f["accuracy"] <= 1 for f in formats.values())


def test_timeline_reuse():
    out = run("timeline_reuse.py")
    assert out["windows"] >= 4
    for name in ("cnn_gru", "mobilenet_gru"):
        figures = out["models"][name]
        assert figures["windows_per_second_whole"] > 0 and figures["windows_per_second_reusing"] > 0
        assert 0.4 <= figures["steps_computed_share"] < 0.8 and figures["max_abs_difference"] < 1e-5


def test_storage():
    out = run("storage.py")
    for q in ("50", "90"):
        assert 0 < out["per_quality"][q]["bytes_per_clip"] < out["raw_bytes_per_clip"]
        figures = out["per_quality"][q]
        assert 0 <= figures["test_accuracy"] <= figures["test_top3_accuracy"] <= 1 and figures["num_test_examples"] > 0
    assert out["per_quality"]["50"]["bytes_per_clip"] < out["per_quality"]["90"]["bytes_per_clip"]


def test_multi_worker():
    out = run("multi_worker.py")
    assert out["one_worker_clips_per_second"] > 0 and out["two_workers_clips_per_second"] > 0
    assert abs(out["ratio"] - out["two_workers_clips_per_second"] / out["one_worker_clips_per_second"]) < 0.01


def test_cli_errors():
    out = run("cli_errors.py")
    assert out["python_pass_seconds"] > 0 and out["import_tensorflow_seconds"] > 0
    for name, figures in out["mistakes"].items():
        assert figures["seconds"] > 0 and figures["vs_python_pass"] > 0
        if name.endswith("--help"):
            assert figures["exit_code"] == 0
        else:
            assert figures["exit_code"] in (1, 2) and ": error: " in figures["first_line"], (name, figures)


def test_actor_view():
    out = run("actor_view.py")
    assert set(out["train_clips_per_second"]) == set(out["forward_seconds_per_clip"]) == {"frame", "actor"}
    assert out["train_speed_ratio_actor_to_frame"] == pytest.approx(
        out["train_clips_per_second"]["actor"] / out["train_clips_per_second"]["frame"])
    assert out["forward_time_ratio_actor_to_frame"] == pytest.approx(
        out["forward_seconds_per_clip"]["actor"] / out["forward_seconds_per_clip"]["frame"])
    assert out["params"]["actor"] < out["params"]["frame"]  # a 32 x 32 crop at 64 x 80: fewer features per step
