"""prepare end to end: shards, manifest, skipped files, determinism, resume, refusal; verify."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow as tf

from pipeline import frames as frames_lib
from pipeline import index, records, verify
from pipeline import manifest as manifest_lib
from pipeline.clip_spec import ClipSpec
from pipeline.frames import read_clip, read_frames
from pipeline.sources import synthetic
from pipeline.writing import engine, shards, writer
from tests.conftest import ROOT, SMALL, cached_clips, run_module, split_tree

SETTINGS = writer.Settings(clip=ClipSpec(**SMALL), shard_size_mb=0.02)


def _shard_bytes(out_dir):
    return {n: open(os.path.join(out_dir, n), "rb").read() for n in sorted(os.listdir(out_dir)) if shards.is_shard_file_name(n)}


@pytest.fixture(scope="module")
def reference(video_tree, tmp_path_factory):
    """An uninterrupted library run with two workers."""
    out = str(tmp_path_factory.mktemp("reference"))
    names, by_split = split_tree(video_tree)
    manifest = writer.write_dataset(by_split, names, out, SETTINGS, num_workers=2)
    return out, manifest


def test_cli_writes_shards_manifest_and_skips_broken_videos(video_tree, tmp_path):
    out = str(tmp_path / "out")
    result = run_module("pipeline.prepare", f"--data_dir={video_tree}", f"--output_dir={out}", "--num_frames=4", "--height=24", "--width=32")
    assert result.returncode == 0, result.stderr
    m = manifest_lib.load(out)
    assert m.clip == ClipSpec(num_frames=4, height=24, width=32, candidates=3, with_next=True, flow=True, next_gap=2,
                             flow_average=3)  # the defaults
    assert m.num_folds == 0
    assert m.label_names[:2] == ("Drink", "Picking") and len(m.label_names) == 12
    assert sorted(s.source for s in m.skipped) == ["Drink/cut.mp4", "Drink/random.avi", "Drink/text.mp4", "Drink/zero.mp4"]
    reasons = {s.source: s.reason for s in m.skipped}
    assert "empty file" in reasons["Drink/zero.mp4"] and "cannot open" in reasons["Drink/text.mp4"]
    assert list(m.splits) == ["train", "validation", "test"] and m.count(list(m.splits)) == 36
    for split in m.splits.values():
        assert split.num_examples == len(split.examples) == sum(s.num_examples for s in split.shards)
    assert {e.label for e in m.split("train").examples} == set(range(12))
    for split in m.splits.values():
        for shard in split.shards:
            assert shards.file_sha256(os.path.join(out, shard.file)) == shard.sha256
    assert "examples per split and class" in result.stderr and "skipped Drink/zero.mp4" in result.stderr
    assert "clips/s" in result.stderr
    check = run_module("pipeline.verify", out)
    assert check.returncode == 0 and check.stdout.startswith("OK"), check.stdout + check.stderr


def test_records_hold_the_planned_frames_labels_and_sources(reference, video_tree):
    out, m = reference
    paths = manifest_lib.shard_paths(out, m, ["train"])
    assert len(paths) > 1 and os.path.basename(paths[0]) == f"train-00000-of-{len(paths):05d}.tfrecord"
    raw = list(tf.data.TFRecordDataset(paths).as_numpy_iterator())
    assert len(raw) == m.split("train").num_examples
    parsed = records.parse(tf.constant(raw), 4)
    sources = [s.decode() for s in parsed[records.SOURCE].numpy()]
    assert sources == [e.source for e in m.split("train").examples]
    labels = parsed[records.LABEL].numpy()
    assert list(labels) == [e.label for e in m.split("train").examples]
    assert [n.decode() for n in parsed[records.LABEL_NAME].numpy()] == [m.label_names[i] for i in labels]
    assert [s.split("/")[0] for s in sources] == [m.label_names[i] for i in labels]
    clip = read_clip(os.path.join(video_tree, sources[0]), 4, 24, 32)
    frames = records.decode_frames(parsed[records.FRAMES][0], 4, 24, 32).numpy()
    assert frames.dtype == np.uint8 and frames.shape == (4, 24, 32, 3)
    assert np.abs(frames.astype(int) - clip.frames.astype(int)).mean() < 3  # JPEG q90
    assert tuple(parsed[records.FRAME_INDICES][0].numpy()) == clip.indices
    assert parsed[records.FRAMES_DECODED][0].numpy() == clip.frames_decoded
    seconds = [frames_lib.frame_rate(os.path.join(video_tree, e.source)) for e in m.split("train").examples]
    seconds = [parsed[records.FRAMES_DECODED][i].numpy() / fps for i, fps in enumerate(seconds)]
    assert parsed[records.SECONDS].numpy() == pytest.approx(seconds, abs=1e-5)  # each source's duration
    assert [e.seconds for e in m.split("train").examples] == pytest.approx(seconds, abs=1e-3)
    assert all(1.0 <= s <= 2.6 for s in seconds)  # the generator's clips last 1 to 2.5 s


def test_same_shards_whatever_the_worker_count_and_run(reference, video_tree, tmp_path):
    out, _ = reference
    names, by_split = split_tree(video_tree)
    writer.write_dataset(by_split, names, str(tmp_path), SETTINGS, num_workers=1)
    assert _shard_bytes(str(tmp_path)) == _shard_bytes(out)
    assert len(_shard_bytes(out)) >= 3


def test_killed_run_resumes_to_the_same_shards(reference, video_tree, tmp_path):
    out = str(tmp_path / "out")
    args = [f"--data_dir={video_tree}", f"--output_dir={out}", "--num_frames=4", "--height=24", "--width=32", "--shard_size_mb=0.02", "--num_workers=1",
            "--candidates=1", "--noflow"]  # the reference's clips
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.prepare", *args], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    clips = os.path.join(out, writer.WORK_DIR, "clips")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and cached_clips(clips) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not os.path.exists(os.path.join(out, "manifest.json"))
    done_before = cached_clips(clips)
    assert 3 <= done_before < 40
    result = run_module("pipeline.prepare", *args)
    assert result.returncode == 0, result.stderr
    assert f"resuming: {done_before} of 40 clips already encoded" in result.stderr
    assert _shard_bytes(out) == _shard_bytes(reference[0])
    assert not os.path.exists(os.path.join(out, writer.WORK_DIR))


def test_crash_while_sharding_keeps_finished_shards(reference, video_tree, tmp_path, monkeypatch):
    names, by_split = split_tree(video_tree)
    real_write = shards.write_shard
    written = []

    def write_then_crash(path, recs):
        if len(written) == 2:
            raise KeyboardInterrupt("simulated Ctrl-C while writing a shard")
        written.append(path)
        return real_write(path, recs)

    monkeypatch.setattr(shards, "write_shard", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        writer.write_dataset(by_split, names, str(tmp_path), SETTINGS, num_workers=2)
    first = os.stat(written[0])
    monkeypatch.setattr(shards, "write_shard", real_write)
    writer.write_dataset(by_split, names, str(tmp_path), SETTINGS, num_workers=2)
    assert os.stat(written[0]).st_mtime_ns == first.st_mtime_ns  # not written again
    assert _shard_bytes(str(tmp_path)) == _shard_bytes(reference[0])


def test_other_settings_refused_unless_overwrite(reference, video_tree, tmp_path):
    names, by_split = split_tree(video_tree)
    writer.write_dataset(by_split, names, str(tmp_path), SETTINGS, num_workers=2)
    (tmp_path / "notes.txt").write_text("mine")
    other = writer.Settings(clip=ClipSpec(**SMALL, jpeg_quality=50), shard_size_mb=0.02)
    with pytest.raises(writer.OutputDirError, match="--overwrite"):
        writer.write_dataset(by_split, names, str(tmp_path), other, num_workers=2)
    again = writer.write_dataset(by_split, names, str(tmp_path), SETTINGS, num_workers=2)  # same: nothing to do
    assert again == manifest_lib.load(str(tmp_path))
    m = writer.write_dataset(by_split, names, str(tmp_path), other, num_workers=2, overwrite=True)
    assert m.clip.jpeg_quality == 50 and (tmp_path / "notes.txt").read_text() == "mine"
    assert verify.verify(str(tmp_path)) == []


@pytest.mark.parametrize("case", ["missing", "only-broken"])
def test_no_usable_video_is_an_error(tmp_path, case):
    data = tmp_path / "data"
    if case == "only-broken":
        (data / "walk").mkdir(parents=True)
        (data / "walk" / "a.mp4").write_text("not a video")
    result = run_module("pipeline.prepare", f"--data_dir={data}", f"--output_dir={tmp_path / 'out'}", "--num_frames=2", "--height=8", "--width=8")
    assert result.returncode != 0
    assert str(data) in result.stderr
    assert ("does not exist" if case == "missing" else "no usable video") in result.stderr


def _copy(src, dst):
    os.makedirs(dst)
    for name in os.listdir(src):
        with open(os.path.join(src, name), "rb") as f, open(os.path.join(dst, name), "wb") as g:
            g.write(f.read())


def test_verify_names_the_shard_and_the_check(reference, tmp_path):
    out = str(tmp_path / "copy")
    _copy(reference[0], out)
    m = manifest_lib.load(out)
    corrupt, missing = m.split("train").shards[0].file, m.split("train").shards[1].file
    data = bytearray(open(os.path.join(out, corrupt), "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(os.path.join(out, corrupt), "wb").write(bytes(data))
    os.remove(os.path.join(out, missing))
    first = m.split("validation").shards[0]
    raw = json.load(open(os.path.join(out, "manifest.json")))
    raw["splits"]["validation"]["shards"][0]["num_examples"] += 1
    raw["splits"]["validation"]["shards"][1]["num_examples"] -= 1  # the manifest still adds up; the shard does not
    json.dump(raw, open(os.path.join(out, "manifest.json"), "w"))
    problems = verify.verify(out)
    text = "\n".join(problems)
    assert f"{corrupt}: sha256" in text and f"{corrupt}: corrupt record" in text
    assert f"{missing}: missing" in text
    assert first.file in text and "the manifest says" in text
    result = run_module("pipeline.verify", out)
    assert result.returncode != 0 and f"FAIL {os.path.join(out, corrupt)}" in result.stdout


def test_manifest_is_json_with_settings(reference):
    m = json.load(open(os.path.join(reference[0], "manifest.json")))
    assert m["format_version"] == 2 and m["clip"]["jpeg_quality"] == 90 and m["clip"]["candidates"] == 1
    assert m["settings"]["split_fractions"] == [0.7, 0.15, 0.15] and m["settings"]["clip"] == m["clip"]
    assert len(m["fingerprint"]) == 64


class _StopBeforeShards(engine.LocalEngine):
    """Encodes like the local engine, then fails as a job killed between the two phases would."""

    def write_shards(self, out_dir, jobs):
        raise RuntimeError("stopped before the shards")


def test_a_cache_without_the_durations_beside_its_records_resumes_to_the_same_manifest(reference, video_tree, tmp_path):
    """A clip cache written before the .seconds files existed: the manifest's durations come from the records."""
    out = str(tmp_path / "out")
    names, by_split = split_tree(video_tree)
    with pytest.raises(RuntimeError, match="stopped before the shards"):
        writer.write_dataset(by_split, names, out, SETTINGS, engine=_StopBeforeShards(2))
    clips = os.path.join(out, writer.WORK_DIR, "clips")
    durations = sorted(n for n in os.listdir(clips) if n.endswith(".seconds"))
    assert len(durations) == 36  # one per kept clip (4 broken videos are skipped)
    for name in durations[::2]:
        os.remove(os.path.join(clips, name))
    assert writer.write_dataset(by_split, names, out, SETTINGS, num_workers=2) == reference[1]
    assert _shard_bytes(out) == _shard_bytes(reference[0])


def test_beam_direct_runner_writes_the_local_writers_bytes(reference, video_tree, tmp_path):
    out = str(tmp_path / "beam")
    result = run_module("pipeline.prepare", f"--data_dir={video_tree}", f"--output_dir={out}", "--num_frames=4",
                        "--height=24", "--width=32", "--shard_size_mb=0.02", "--candidates=1", "--noflow", "--runner=DirectRunner",
                        "--beam_options=--direct_num_workers=2 --direct_running_mode=multi_processing")
    assert result.returncode == 0, result.stderr[-3000:]
    ref_dir, ref_manifest = reference
    assert manifest_lib.load(out) == manifest_lib.load(ref_dir)
    assert _shard_bytes(out) == _shard_bytes(ref_dir) and len(_shard_bytes(out)) > 3
    assert sorted(os.listdir(out)) == sorted(os.listdir(ref_dir))  # no work dir or temporaries left


def test_beam_runner_without_beam_installed_says_how_to_install(video_tree, tmp_path):
    code = ("import sys; sys.modules['apache_beam'] = None; from pipeline import prepare; from absl import app; "
            "app.run(prepare.main)")
    result = subprocess.run([sys.executable, "-c", code, f"--data_dir={video_tree}", f"--output_dir={tmp_path}",
                             "--runner=DirectRunner"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode != 0 and "pip install '.[beam]'" in result.stderr
    assert os.listdir(tmp_path) == []


def test_folds_with_candidates_and_next_frames(video_tree, tmp_path):
    """prepare --num_folds=3 --candidates=3 --with_next: one actor per fold, each record holding
    exactly the planned frames (3 per segment, each with its successor), frame-exact."""
    names, vids = index.resolve_labels(index.index_tree(video_tree), None)
    vids = index.assign_groups([v for v in vids if "/actor" in v.source], synthetic.GROUP_REGEX)  # not the broken files
    clip = ClipSpec(num_frames=4, height=24, width=32, candidates=3, with_next=True)
    settings = writer.Settings(clip=clip, shard_size_mb=0.02, num_folds=3, group_regex=synthetic.GROUP_REGEX)
    m = writer.write_dataset(index.split_folds(vids, 3, settings.seed), names, str(tmp_path), settings, num_workers=2)
    assert m.num_folds == 3 and list(m.splits) == ["fold0", "fold1", "fold2"] and m.clip == clip
    assert sorted(len({e.group for e in s.examples}) for s in m.splits.values()) == [1, 1, 1]
    assert m.count(list(m.splits)) == 36 and manifest_lib.load(str(tmp_path)) == m
    raw = list(tf.data.TFRecordDataset(manifest_lib.shard_paths(str(tmp_path), m, "fold1")).as_numpy_iterator())
    parsed = records.parse(tf.constant(raw), clip.stored_frames)
    indices, decoded = parsed[records.FRAME_INDICES].numpy(), parsed[records.FRAMES_DECODED].numpy()
    for i in range(len(raw)):
        assert list(indices[i]) == clip.plan(int(decoded[i]))
    source = parsed[records.SOURCE][0].numpy().decode()
    expected = read_frames(os.path.join(video_tree, source), clip.plan, 24, 32).frames
    stored = records.decode_frames(parsed[records.FRAMES][0], clip.stored_frames, 24, 32).numpy()
    assert np.abs(stored.astype(int) - expected.astype(int)).mean() < 3  # JPEG q90
    assert verify.verify(str(tmp_path)) == []


def test_frame_average_stores_each_frame_as_the_mean_of_the_frames_around_it(tmp_path):
    from pipeline.frames import read_encoded_clip, read_frames_sequential, stored_images
    from tests import videos

    path = videos.write_h264(str(tmp_path / "noisy.mp4"), videos.flat_frames(30, noise=24))  # new noise in every frame
    spec = ClipSpec(num_frames=3, height=48, width=64, with_next=True, next_gap=2, frame_average=3)
    every = read_frames_sequential(path, lambda n: list(range(n)), 48, 64)
    expected = stored_images(dict(enumerate(every.frames)), spec, every.frames_decoded)
    stored = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)[..., ::-1].astype(int) for j in read_encoded_clip((path, spec)).jpegs]
    for position, index in enumerate(spec.plan(every.frames_decoded)):
        assert np.abs(stored[position] - expected[position]).mean() < 4.5  # JPEG q90 of noise
        assert stored[position].std() < 0.7 * every.frames[index].std()  # the noise of one frame over about sqrt(3)


def test_stored_images_average_frame_average_frames_clamped_at_the_ends():
    from pipeline.frames import stored_images

    spec = ClipSpec(num_frames=2, height=2, width=2, with_next=True, next_gap=1, frame_average=3)
    frame_at = {i: np.full((2, 2, 3), i * i, np.uint8) for i in range(10)}  # not linear: a mean shows
    images = stored_images(frame_at, spec, 10)
    assert spec.plan(10) == [2, 3, 7, 8]
    assert [int(im[0, 0, 0]) for im in images] == [5, 10, 50, 65]  # (1+4+9)/3 = 4.67, (4+9+16)/3 = 9.67, ...
    assert [int(im[0, 0, 0]) for im in stored_images(frame_at, ClipSpec(num_frames=1, height=2, width=2, frame_average=5), 2)] == [1]  # 0,0,1,1,1 -> 0.6


@pytest.mark.parametrize("flow_average", [1, 3])
def test_flow_records_are_the_same_bytes_with_one_worker_or_two_and_hold_the_frames_flow(video_tree, tmp_path, flow_average):
    from pipeline import flow
    from pipeline.frames import read_frames_sequential, stored_images

    clip = ClipSpec(num_frames=3, height=24, width=32, with_next=True, flow=True, next_gap=2, flow_average=flow_average)
    names, by_split = split_tree(video_tree)
    outs = [str(tmp_path / "one"), str(tmp_path / "two")]
    m = writer.write_dataset(by_split, names, outs[0], writer.Settings(clip=clip, shard_size_mb=0.02), num_workers=1)
    writer.write_dataset(by_split, names, outs[1], writer.Settings(clip=clip, shard_size_mb=0.02), num_workers=2)
    assert _shard_bytes(outs[0]) == _shard_bytes(outs[1]) and m.clip.stored_frames == 12
    raw = list(tf.data.TFRecordDataset(manifest_lib.shard_paths(outs[0], m, "train")).as_numpy_iterator())
    parsed = records.parse(tf.constant(raw[:1]), clip.stored_frames)
    stored = records.decode_frames(parsed[records.FRAMES][0], clip.stored_frames, 24, 32).numpy().astype(int)
    source = parsed[records.SOURCE][0].numpy().decode()
    every = read_frames_sequential(os.path.join(video_tree, source), lambda n: list(range(n)), 24, 32)
    n = every.frames_decoded
    expected = stored_images(dict(enumerate(every.frames)), clip, n)
    for position in range(clip.stored_frames):
        want = np.asarray(expected[position]).astype(int)
        got = stored[position] if want.ndim == 3 else stored[position][..., 0]
        assert np.abs(got - want).mean() < 3, (position, clip.member(position))  # JPEG q90
    indices = parsed[records.FRAME_INDICES][0].numpy().tolist()
    assert indices == clip.plan(n) and indices[1::4] == [k + 2 for k in indices[0::4]] and indices[0::4] == indices[2::4]
    k, half = indices[0], flow_average // 2  # the first flow: from the mean around frame k to the mean around k + 2
    ends = [[every.frames[min(max(i, 0), n - 1)] for i in range(c - half, c + half + 1)] for c in (k, k + 2)]
    assert np.array_equal(expected[2], flow.flow_images(ends[0], ends[1], gap=2)[0])
    if flow_average > 1:
        assert not np.array_equal(expected[2], flow.flow_images([every.frames[k]], [every.frames[k + 2]], gap=2)[0])
