"""export.py and predict: signatures, portability, same answers, bad requests, no train/serve skew."""

import importlib
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from models import serving, trainer
from pipeline import export_asset, make_dataset, predict, records
from pipeline import manifest as manifest_lib
from pipeline.clip_spec import ClipSpec
from pipeline.sources import synthetic
from pipeline.writing import writer
from tests.conftest import ROOT, SMALL, run_module, split_tree

MODEL = "cnn_lstm"
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")  # decides cuDNN at trace time


@pytest.fixture(scope="module")
def trained(video_tree, tmp_path_factory):
    """Built-in videos prepared at 4 x 24 x 32, cnn_lstm trained for one epoch, then exported."""
    root = tmp_path_factory.mktemp("export")
    shards, models, exported = str(root / "shards"), str(root / "models"), str(root / "exported")
    names, by_split = split_tree(video_tree)
    manifest = writer.write_dataset(by_split, names, shards, writer.Settings(clip=ClipSpec(**SMALL)), num_workers=2)
    config = trainer.TrainConfig(data_dir=shards, model_dir=models, epochs=1, batch_size=4)
    trainer.train(MODEL, config, tf.distribute.get_strategy(), manifest)
    result = run_module("export", f"--model_dir={models}", f"--model={MODEL}", f"--export_dir={exported}")
    assert result.returncode == 0, result.stderr[-2000:]
    return {"shards": shards, "models": models, "exported": exported, "saved": os.path.join(exported, MODEL, "1"), "manifest": manifest}


def _ops(saved_model_dir):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(open(os.path.join(saved_model_dir, "saved_model.pb"), "rb").read())
    graph = proto.meta_graphs[0].graph_def
    return {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}


def test_versioned_layout_and_refusal_to_overwrite(trained):
    assert sorted(n for n in os.listdir(os.path.join(trained["exported"], MODEL)) if n != ".lock") == ["1"]
    again = run_module("export", f"--model_dir={trained['models']}", f"--model={MODEL}", f"--export_dir={trained['exported']}", "--version=1")
    assert again.returncode != 0 and "exists; choose another --version" in again.stderr
    asset = export_asset.read(trained["saved"])
    assert 1.0 <= asset.clip_seconds <= 2.5  # the generator's clips last 1 to 2.5 s
    assert asset == export_asset.ExportAsset(ClipSpec(4, 24, 32, 90), trained["manifest"].label_names, trained["manifest"].median_seconds("train"))


def test_an_export_while_another_writes_the_same_model_is_refused_and_writes_nothing(trained):
    import export
    from pipeline import lock

    base = os.path.join(trained["exported"], MODEL)
    env = dict(os.environ, PYTHONPATH=ROOT)
    holder = subprocess.Popen([sys.executable, "-c", f"from pipeline import lock; import time\nwith lock.hold({base!r}, 'export'):\n"
                               "    print('held', flush=True); time.sleep(600)"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        before = sorted(os.listdir(base))
        with pytest.raises(lock.LockedError, match=rf"{re.escape(base)}: in use by export \(pid {holder.pid} on "):
            export.export_model(trained["models"], MODEL, trained["exported"])
        assert sorted(os.listdir(base)) == before
    finally:
        holder.kill()
        holder.wait(timeout=60)


def test_best_picks_the_highest_test_accuracy(tmp_path):
    import export

    for name, acc in (("gru", 0.4), ("cnn_gru", 0.7), ("lstm", 0.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"test_accuracy": acc}))
    assert export.best_model(str(tmp_path)) == "cnn_gru"
    with pytest.raises(FileNotFoundError, match="train a model first"):
        export.best_model(str(tmp_path / "none"))


def test_saved_model_cli_lists_both_signatures(trained):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run([cli, "show", "--dir", trained["saved"], "--all"], capture_output=True, text=True, timeout=120).stdout
    assert "signature_def['serving_default']" in out and "signature_def['classify_records']" in out
    assert "inputs['frames']" in out and "DT_UINT8" in out and "shape: (-1, 4, 24, 32, 3)" in out
    assert "inputs['records']" in out and "DT_STRING" in out
    for name in ("probabilities", "class_id", "class_name"):
        assert f"outputs['{name}']" in out


def test_export_made_on_a_gpu_machine_has_no_cudnn_only_ops(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(keras_tf_rnn, "_is_gpu_available", lambda: True)  # as Keras sees a GPU host
    model = keras.models.load_model(os.path.join(trained["models"], MODEL, trainer.BEST))
    spec = tf.TensorSpec([None, 4, 24, 32, 3], tf.uint8)
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph.as_graph_def()
    traced = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert "CudnnRNNV3" in traced  # the control: the training path is cuDNN-eligible
    serving.export(model, str(tmp_path / "m"), ["a"] * 12, ClipSpec(4, 24, 32))
    ops = _ops(str(tmp_path / "m"))
    assert not {op for op in ops if "Cudnn" in op}
    assert {"While", "ParseExampleV2", "DecodeJpeg"} <= ops  # generic RNN loop; the pipeline's parsing


def _test_batch(trained):
    frames, labels = next(iter(make_dataset(trained["shards"], "validation", 6, training=False)))
    raw = next(iter(tf.data.TFRecordDataset(manifest_lib.shard_paths(trained["shards"], trained["manifest"], "validation")).batch(6)))
    return frames, labels, raw


def test_same_answers_as_keras_through_either_signature(trained):
    model = keras.models.load_model(os.path.join(trained["models"], MODEL, trainer.BEST))
    loaded = tf.saved_model.load(trained["saved"])
    frames, _, raw = _test_batch(trained)
    expected = model.predict(frames, verbose=0)
    by_frames = loaded.signatures["serving_default"](frames=frames)
    by_records = loaded.signatures["classify_records"](records=raw)
    np.testing.assert_allclose(by_frames["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(by_records["probabilities"].numpy(), expected, atol=1e-5)
    ids = by_frames["class_id"].numpy()
    assert by_frames["class_id"].dtype == tf.int64 and list(ids) == list(expected.argmax(axis=1))
    names = trained["manifest"].label_names
    assert [n.decode() for n in by_records["class_name"].numpy()] == [names[i] for i in ids]


def test_fresh_process_importing_nothing_from_the_project(trained, tmp_path):
    frames, _, raw = _test_batch(trained)
    np.save(tmp_path / "frames.npy", frames.numpy())
    (tmp_path / "records.json").write_text(json.dumps([r.hex() for r in raw.numpy()]))
    script = f"""
import sys
PROJECT = ("pipeline", "models", "train", "export", "tests", "benchmarks")
class Forbid:  # any import of the project's code fails in this process
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PROJECT:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Forbid())
import json, numpy as np, tensorflow as tf
try:
    import pipeline
    raise SystemExit("the project is importable here")
except ImportError:
    pass
m = tf.saved_model.load({trained['saved']!r})
a = m.signatures["serving_default"](frames=tf.constant(np.load("frames.npy")))
recs = [bytes.fromhex(h) for h in json.load(open("records.json"))]
b = m.signatures["classify_records"](records=tf.constant(recs))
assert not [n for n in sys.modules if n.split(".")[0] in PROJECT]
print(json.dumps({{"a": a["probabilities"].numpy().tolist(), "b": b["probabilities"].numpy().tolist(),
                   "names": [n.decode() for n in b["class_name"].numpy()]}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    loaded = tf.saved_model.load(trained["saved"])
    here = loaded.signatures["serving_default"](frames=frames)["probabilities"].numpy()
    np.testing.assert_allclose(np.array(out["a"]), here, atol=1e-5)
    np.testing.assert_allclose(np.array(out["b"]), here, atol=1e-5)
    assert set(out["names"]) <= set(trained["manifest"].label_names)


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((2, 4, 24, 32, 3), np.float32),  # dtype
        np.zeros((4, 24, 32, 3), np.uint8),  # rank
        np.zeros((2, 5, 24, 32, 3), np.uint8),  # frame count
        np.zeros((2, 4, 24, 30, 3), np.uint8),  # size
    ],
    ids=["float32", "rank-4", "5-frames", "30-wide"],
)
def test_bad_requests_fail_clearly(trained, frames):
    sig = tf.saved_model.load(trained["saved"]).signatures["serving_default"]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)) as e:
        sig(frames=tf.constant(frames))
    message = str(e.value)
    assert "frames must be uint8 [batch, 4, 24, 32, 3]" in message or "expected to be a uint8 tensor" in message


def test_record_of_another_size_is_refused(trained):
    jpegs = [tf.io.encode_jpeg(tf.zeros([24, 30, 3], tf.uint8)).numpy()] * 4
    record = records.encode(jpegs, [0, 1, 2, 3], 4, 0, "x", "x.mp4")
    sig = tf.saved_model.load(trained["saved"]).signatures["classify_records"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="frame size differs"):
        sig(records=tf.constant([record]))


def test_predict_sees_the_same_bytes_as_the_shard_record(trained, video_tree):
    clip = export_asset.read(trained["saved"]).clip
    raw = next(iter(tf.data.TFRecordDataset(manifest_lib.shard_paths(trained["shards"], trained["manifest"], "validation"))))
    parsed = records.parse(tf.reshape(raw, [1]), 4)
    source = parsed[records.SOURCE][0].numpy().decode()
    mine = records.parse(tf.constant([predict.video_record(os.path.join(video_tree, source), clip)]), 4)
    assert list(mine[records.FRAMES][0].numpy()) == list(parsed[records.FRAMES][0].numpy())  # byte-identical JPEG
    assert list(mine[records.FRAME_INDICES][0].numpy()) == list(parsed[records.FRAME_INDICES][0].numpy())


def test_predict_cli_reports_each_video_and_fails_for_a_broken_one(trained, video_tree):
    good = [os.path.join(video_tree, e.source) for e in trained["manifest"].split("validation").examples[:2]]
    broken = os.path.join(video_tree, "Drink", "text.mp4")
    result = run_module("pipeline.predict", f"--saved_model={trained['saved']}", "--json", "--top_k=2", good[0], broken, good[1])
    assert result.returncode == 1
    assert f"predict: error: {broken}" in result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["video"] for line in lines] == [good[0], broken, good[1]]
    assert "error" in lines[1] and len(lines[0]["top"]) == 2 and lines[0]["top"][0]["probability"] >= lines[0]["top"][1]["probability"]
    text = run_module("pipeline.predict", f"--saved_model={trained['saved']}", good[0])
    assert text.returncode == 0 and text.stdout.splitlines()[0] == good[0] and len(text.stdout.splitlines()) == 4


def test_predict_timeline_prints_segments_and_writes_rows_and_plot(trained, tmp_path):
    long_video = str(tmp_path / "long.mp4")
    synthetic.generate_long(long_video, ("Run", "waving"), clips_per_action=2, seed=0)
    rows, png = str(tmp_path / "w.csv"), str(tmp_path / "t.png")
    result = run_module("pipeline.predict", f"--model={trained['saved']}", "--window=auto", "--threshold=0", "--min_windows=1", f"--output={rows}",
                        f"--plot={png}", long_video)
    assert result.returncode == 0, result.stderr[-2000:]
    window = export_asset.read(trained["saved"]).clip_seconds
    assert f"windows of {window:.2f} s every {window / 2:.2f} s" in result.stderr
    table = open(rows).read().splitlines()
    assert table[0] == "start_s,end_s,class_1,probability_1,class_2,probability_2,class_3,probability_3"
    starts = [float(r.split(",")[0]) for r in table[1:]]
    assert len(starts) >= 3 and starts[:2] == pytest.approx([0.0, round(window / 2 * 15) / 15], abs=1e-3)
    segments = result.stdout.strip().splitlines()  # threshold 0: every window is in a segment
    assert segments and all(re.fullmatch(r"\d\d:\d\d\.\d-\d\d:\d\d\.\d \S.* [01]\.\d\d", s) for s in segments), segments
    assert segments[0].startswith("00:00.0-") and open(png, "rb").read(4) == b"\x89PNG"
    short = run_module("pipeline.predict", f"--model={trained['saved']}", "--window=60", "--json", long_video)
    assert short.returncode == 0 and "is shorter than one 60 s window; classified as one window" in short.stderr
    assert len(short.stdout.splitlines()) <= 1


@pytest.fixture(scope="module")
def file_exports(trained):
    """The trained model as LiteRT (float32, float16, int8) and ONNX version dirs."""
    import export

    made = {}
    for fmt in (export.Format("tflite"), export.Format("tflite", "float16"), export.Format("tflite", "int8", trained["shards"], calibration_clips=8),
                export.Format("onnx")):
        made[fmt.base_name(MODEL)] = export.export_model(trained["models"], MODEL, trained["exported"], fmt=fmt)
    return made


def _encoded_test_clips(trained, video_tree):
    from pipeline import frames

    sources = [os.path.join(video_tree, e.source) for e in trained["manifest"].examples(["validation", "test"])]
    return [frames.read_encoded_clip((p, ClipSpec(4, 24, 32, 90))) for p in sources]


def test_litert_and_onnx_exports_answer_like_the_saved_model_in_their_own_runtimes(trained, file_exports, video_tree):
    from pipeline.inference import runtimes

    assert sorted(file_exports) == [f"{MODEL}-onnx", f"{MODEL}-tflite", f"{MODEL}-tflite-float16", f"{MODEL}-tflite-int8"]
    clips = _encoded_test_clips(trained, video_tree)
    reference = runtimes.load(trained["saved"]).probabilities(clips)
    for base, path in file_exports.items():
        classifier = runtimes.load(path)
        assert classifier.format == ("onnx" if "onnx" in base else "tflite")
        assert classifier.asset == export_asset.read(trained["saved"])  # the same preprocessing record beside it
        got = classifier.probabilities(clips)
        assert got.shape == reference.shape  # int8 outputs come in steps of 1/256
        assert np.allclose(got.sum(axis=1), 1, atol=2e-2 if base.endswith("int8") else 1e-3)
        if base.endswith(("-onnx", "-tflite")):  # float32: the same function
            np.testing.assert_allclose(got, reference, atol=1e-5)
        elif base.endswith("float16"):
            np.testing.assert_allclose(got, reference, atol=2e-2)
        else:  # int8 of a one-epoch model: only that it is a calibrated classifier, not noise
            assert np.abs(got - reference).max() < 0.3
    sizes = {b: os.path.getsize(os.path.join(p, "model.tflite")) for b, p in file_exports.items() if "tflite" in b}
    assert sizes[f"{MODEL}-tflite-int8"] < sizes[f"{MODEL}-tflite-float16"] < sizes[f"{MODEL}-tflite"]
    model_file = os.path.join(file_exports[f"{MODEL}-onnx"], "model.onnx")
    assert runtimes.locate(model_file) == (file_exports[f"{MODEL}-onnx"], "onnx", model_file)


def test_predict_runs_litert_and_onnx_without_tensorflow(trained, file_exports, video_tree, tmp_path):
    poisoned = tmp_path / "poisoned" / "tensorflow"
    poisoned.mkdir(parents=True)
    (poisoned / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    video = os.path.join(video_tree, trained["manifest"].examples("validation")[0].source)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "poisoned"), ROOT]))
    expected = predict.predict(trained["saved"], [video], 3)[0]["top"]
    for base in (f"{MODEL}-tflite", f"{MODEL}-onnx"):
        result = subprocess.run([sys.executable, "-m", "pipeline.predict", f"--model={file_exports[base]}", "--json", video],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        top = json.loads(result.stdout)["top"]
        assert [t["class_id"] for t in top] == [t["class_id"] for t in expected]
        assert [t["probability"] for t in top] == pytest.approx([t["probability"] for t in expected], abs=1e-5)


def test_quantize_is_only_for_litert_and_int8_needs_training_clips(trained, tmp_path):
    import export

    with pytest.raises(ValueError, match="--quantize=int8 is for --format=tflite"):
        export.Format("onnx", "int8")
    assert export.Format("tflite", "int8").base_name("gru") == "gru-tflite-int8" and export.Format().base_name("gru") == "gru"
    with pytest.raises(ValueError, match="needs a representative set"):
        from models import converters

        converters.to_tflite(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), "int8")


def test_centre_view_decoded_with_opencv_is_the_training_pipelines_view(video_tree):
    from pipeline import frames
    from pipeline.inference import runtimes

    spec = ClipSpec(num_frames=3, height=24, width=32, candidates=3, with_next=True, flow=True)
    video = os.path.join(video_tree, synthetic.CLASS_NAMES[3], os.listdir(os.path.join(video_tree, synthetic.CLASS_NAMES[3]))[0])
    clip = frames.read_encoded_clip((video, spec))
    by_tf = records.decode_view(tf.constant(clip.jpegs), spec, records.centre_choice(spec)).numpy()
    np.testing.assert_array_equal(runtimes.centre_view(clip.jpegs, spec), by_tf)  # bit for bit, grey flow images too


@pytest.mark.parametrize("name, frame_input", [("mobilenet_gru", "rgb"), ("cnn_gru", "rgb+diff")])
def test_new_model_options_export_with_the_same_answers(name, frame_input, tmp_path):
    """The stronger model and the motion cue (a custom layer) survive .keras and SavedModel export."""
    from models import build_model

    model = build_model(name, num_frames=3, height=32, width=40, num_classes=3, frame_input=frame_input, feature_norm=True)
    model.save(tmp_path / "m.keras")
    serving.export(keras.models.load_model(tmp_path / "m.keras"), str(tmp_path / "saved"), ["a", "b", "c"], ClipSpec(3, 32, 40))
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 40, 3), dtype=np.uint8)
    out = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"](frames=tf.constant(x))
    np.testing.assert_allclose(out["probabilities"].numpy(), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("flow, next_gap", [(False, 1), (True, 2)])
def test_pairs_and_candidates_serve_the_centre_view_like_evaluation(video_tree, tmp_path, flow, next_gap):
    """Clips with 3 candidates per segment and a partner frame (the next one; two later with its
    flow, prepare's default): predict writes prepare's bytes, and classify_records answers what the
    model (the default convnet_gru, on the actor view) answers on evaluation's centre view."""
    from models import recipes

    clip = ClipSpec(num_frames=3, height=24, width=32, candidates=3, with_next=True, flow=flow, next_gap=next_gap)
    names, by_split = split_tree(video_tree)
    shards = str(tmp_path / "shards")
    manifest = writer.write_dataset(by_split, names, shards, writer.Settings(clip=clip), num_workers=2)
    recipe = recipes.get("improved", model="convnet_gru", frame_input="bg_diff+flow" if flow else "bg_diff+next_diff")
    model = trainer.build("convnet_gru", clip, len(names), recipe)
    assert recipe.view == "actor" and model.get_layer("actor_view")  # the default model's view, served
    saved = str(tmp_path / "saved")
    serving.export(model, saved, names, clip)
    assert export_asset.read(saved).clip == clip
    raw = next(iter(tf.data.TFRecordDataset(manifest_lib.shard_paths(shards, manifest, "validation")).batch(4)))
    parsed = records.parse(raw[:1], clip.stored_frames)
    mine = records.parse(tf.constant([predict.video_record(os.path.join(video_tree, parsed[records.SOURCE][0].numpy().decode()), clip)]),
                         clip.stored_frames)
    assert list(mine[records.FRAMES][0].numpy()) == list(parsed[records.FRAMES][0].numpy())  # byte-identical JPEGs
    frames, _ = next(iter(make_dataset(shards, "validation", 4, training=False)))
    assert frames.shape == (4, 3, 24, 32, 12 if flow else 6)
    by_records = tf.saved_model.load(saved).signatures["classify_records"](records=raw)["probabilities"].numpy()
    np.testing.assert_allclose(by_records, model.predict(frames, verbose=0), atol=1e-5)
    # Test-time views: the average of the three views, the centre one predicted once.
    from models import evaluation

    views = [evaluation.predict_split(model, shards, manifest, "validation", 4, view=j)[1] for j in range(3)]
    averaged = evaluation.predict_views(model, shards, manifest, "validation", 4, centre=views[1])
    np.testing.assert_allclose(averaged, np.mean(views, axis=0), atol=1e-6)
    assert not np.allclose(views[0], views[1])  # the views differ: another frame of each segment
