"""Timelines: windows sampled as prepare samples a clip, one decode, segments, rows, plot, bad sources."""

import http.server
import io
import json
import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from pipeline import frames, records
from pipeline.clip_spec import ClipSpec
from pipeline.inference import timeline, windows
from pipeline.sources import synthetic
from tests import videos

SPEC = ClipSpec(num_frames=4, height=24, width=32)
PAIRED = ClipSpec(num_frames=3, height=24, width=32, candidates=3, with_next=True, flow=True, next_gap=2)
AVERAGED = ClipSpec(num_frames=3, height=24, width=32, with_next=True, flow=True, next_gap=2, flow_average=3)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """100 frames at 10 fps (10 s) of textured flat frames, H.264."""
    path = str(tmp_path_factory.mktemp("timeline") / "long.mp4")
    return videos.write_h264(path, videos.flat_frames(100, noise=6), fps=10)


def _prepare_window(path, spec, first, n):
    """What prepare stores for a clip made of frames [first, first + n) of `path`."""
    clip = frames.read_frames_sequential(path, lambda total: [first + o for o in spec.reads(n)], spec.height, spec.width)
    by_offset = {i - first: f for i, f in zip(clip.indices, clip.frames)}
    return frames.encode_jpeg(frames.stored_images(by_offset, spec, n), spec.jpeg_quality)


@pytest.mark.parametrize("spec", [SPEC, PAIRED, AVERAGED], ids=["plain", "candidates_pairs_flow", "flow_averaged"])
def test_each_window_holds_what_prepare_takes_from_its_frames(long_video, spec):
    reader = windows.WindowReader(long_video, spec, window_seconds=3.0, stride_seconds=1.5)
    got = list(reader)
    assert reader.geometry == windows.Geometry(10.0, 30, 15)
    assert [(w.first_frame, w.num_frames) for w in got] == [(k * 15, 30) for k in range(5)]  # 0-3 s ... 6-9 s
    assert [(w.start, w.end) for w in got] == [(1.5 * k, 1.5 * k + 3.0) for k in range(5)]
    for w in got:
        parsed = records.parse(tf.constant([w.record]), spec.stored_frames)
        jpegs = [bytes(j) for j in parsed[records.FRAMES][0].numpy()]
        assert jpegs == _prepare_window(long_video, spec, w.first_frame, w.num_frames)
        assert list(parsed[records.FRAME_INDICES][0].numpy()) == [w.first_frame + o for o in spec.plan(30)]
        assert parsed[records.SECONDS][0].numpy() == pytest.approx(3.0)
    assert reader.events == [] and not reader.failed


def test_one_decode_and_only_the_frames_some_window_takes(long_video, monkeypatch):
    opened, converted = [], []
    real_open, real_convert = frames.open_video, frames.model_pixels
    monkeypatch.setattr(frames, "open_video", lambda p: opened.append(p) or real_open(p))
    monkeypatch.setattr(frames, "model_pixels", lambda *args: converted.append(1) or real_convert(*args))
    got = list(windows.WindowReader(long_video, SPEC, window_seconds=2.0, stride_seconds=1.0))
    assert len(got) == 9 and opened == [long_video]
    # the first window's 20 frames (kept whole in case the input is shorter), then 4 planned per later window
    taken = set(range(20)) | {k * 10 + o for k in range(9) for o in SPEC.plan(20)}
    assert len(converted) == len(taken)


def test_an_input_shorter_than_a_window_is_one_window_and_said_so(long_video):
    reader = windows.WindowReader(long_video, SPEC, window_seconds=30.0, stride_seconds=5.0)
    got = list(reader)
    assert [(w.first_frame, w.num_frames, w.end) for w in got] == [(0, 100, 10.0)]
    assert got[0].record == records.encode(_prepare_window(long_video, SPEC, 0, 100), SPEC.plan(100), 100, -1, "", long_video, 10.0)
    assert reader.events == [f"{long_video}: 10.0 s (100 frames) is shorter than one 30 s window; classified as one window"]


def test_a_frame_size_change_is_reported_and_the_windows_go_on(tmp_path):
    a = videos.write_h264(str(tmp_path / "a.ts"), videos.flat_frames(20, 48, 64, noise=4), fps=10)
    b = videos.write_h264(str(tmp_path / "b.ts"), videos.flat_frames(20, 96, 64, noise=4), fps=10)
    joined = str(tmp_path / "joined.ts")
    with open(joined, "wb") as f:
        f.write(open(a, "rb").read() + open(b, "rb").read())
    reader = windows.WindowReader(joined, SPEC, window_seconds=1.0, stride_seconds=1.0)
    got = list(reader)
    assert len(got) == 4 and not reader.failed
    assert reader.events == [f"{joined}: frame size changed from 64x48 to 64x96 at 2.0 s; later frames are letterboxed from the new size"]


class _Stalling(http.server.BaseHTTPRequestHandler):
    payload = b""
    stall = 30.0

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        time.sleep(self.stall)  # then nothing more: a camera that stopped sending


class _Ending(_Stalling):
    length = True

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        if self.length:
            self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)  # all of it, then the connection closes

    def log_message(self, *args):
        pass


def test_a_stalled_stream_stops_at_the_read_timeout_and_keeps_the_windows_so_far(tmp_path):
    ts = videos.write_h264(str(tmp_path / "cam.ts"), videos.flat_frames(120, noise=6), fps=10)
    _Stalling.payload = open(ts, "rb").read()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cam.ts"
    try:
        reader = windows.WindowReader(url, SPEC, window_seconds=1.0, stride_seconds=1.0, read_timeout=1.0)
        start = time.monotonic()
        got = list(reader)
        waited = time.monotonic() - start
    finally:
        server.shutdown()
    assert reader.failed and waited < 20  # gave up after the 1 s timeout, not after the server's 30 s (a hang bound)
    assert 2 <= len(got) <= 6  # about half of the 12 s arrived
    assert len(reader.events) == 1 and reader.events[0].startswith(f"{url}: the input stopped: ")


@pytest.mark.parametrize("length", [True, False], ids=["announced_length", "closed_without_length"])
def test_a_stream_that_ends_keeps_every_frame(tmp_path, length):
    ts = videos.write_h264(str(tmp_path / "cam.ts"), videos.flat_frames(40, noise=6), fps=10)
    _Ending.payload, _Ending.length = open(ts, "rb").read(), length
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ending)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cam.ts"
    try:
        reader = windows.WindowReader(url, SPEC, window_seconds=1.0, stride_seconds=1.0, read_timeout=2.0)
        got = list(reader)
    finally:
        server.shutdown()
    assert len(got) == 4  # all 40 frames: after a read error, the frames the decoder held are still read
    if length:
        assert not reader.failed and reader.events == [f"{url}: the stream ended"]
    else:  # FFmpeg cannot tell a closed connection of unknown length from a broken one
        assert reader.failed and reader.events == [f"{url}: the input stopped: [Errno 5] Input/output error: '{url}'"]


def test_a_live_source_that_cannot_be_opened_is_one_clear_error():
    with pytest.raises(frames.VideoError, match=r"^rtsp://127\.0\.0\.1:9/cam: cannot open the stream: "):
        list(windows.WindowReader("rtsp://127.0.0.1:9/cam", SPEC, 1.0, 1.0, read_timeout=2.0))
    with pytest.raises(frames.VideoError, match="cannot open as a video"):
        list(windows.WindowReader("/nonexistent/x.mp4", SPEC, 1.0, 1.0))


def _scored(start, end, top, p, n=3):
    probs = [(1 - p) / (n - 1)] * n
    probs[top] = p
    return timeline.Scored(start, end, tuple(probs))


def test_segments_merge_windows_of_one_class_above_the_threshold():
    names = ("Run", "wave", "box")
    ws = [_scored(0, 2, 0, 0.9), _scored(1, 3, 0, 0.8), _scored(2, 4, 1, 0.4), _scored(3, 5, 1, 0.7), _scored(4, 6, 1, 0.9),
          _scored(5, 7, 2, 0.95)]
    found = timeline.segments(ws, names, threshold=0.5)
    # boundaries at the midpoints of window centres (1, 2, 3, 4, 5, 6): 2.5, 3.5, 5.5; the ends at the first start and last end
    assert found == [timeline.Segment(0.0, 2.5, 0, "Run", 0.85), timeline.Segment(3.5, 5.5, 1, "wave", 0.8),
                     timeline.Segment(5.5, 7.0, 2, "box", 0.95)]
    assert found[0].describe() == "00:00.0-00:02.5 Run 0.85"
    assert timeline.segments(ws, names, threshold=0.99) == []
    closed = []
    segmenter = timeline.Segmenter(names, 0.5)
    for w in ws:
        closed.append(segmenter.add(w))
    assert closed == [None, None, found[0], None, None, found[1]] and segmenter.finish() == found[2]
    # at least two windows: the lone "box" window at the end makes no segment, the others stand
    assert timeline.segments(ws, names, threshold=0.5, min_windows=2) == found[:2]
    assert timeline.segments(ws[:1], names, threshold=0.5, min_windows=2) == [timeline.Segment(0.0, 2.0, 0, "Run", 0.9)]  # the only run


def test_clock_rows_and_plot(tmp_path):
    assert [timeline.clock(s) for s in (0, 12.04, 75.55, 3723.4)] == ["00:00.0", "00:12.0", "01:15.6", "1:02:03.4"]
    names = ("Run", "wave", "box")
    ws = [_scored(0, 2, 0, 0.9), _scored(1, 3, 2, 0.6)]
    out = io.StringIO()
    rows = timeline.RowWriter(out, "jsonl", names, k=2)
    for w in ws:
        rows.write(w)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[1] == {"start": 1, "end": 3, "top": [{"class_name": "box", "probability": 0.6}, {"class_name": "Run", "probability": 0.2}]}
    out = io.StringIO()
    rows = timeline.RowWriter(out, "csv", names, k=1)
    rows.write(ws[0])
    assert out.getvalue().splitlines() == ["start_s,end_s,class_1,probability_1", "0.000,2.000,Run,0.9000"]
    assert timeline.kind_of("a.CSV") == "csv" and timeline.kind_of("a.jsonl") == "jsonl"
    png = str(tmp_path / "t.png")
    timeline.plot(ws, timeline.segments(ws, names, 0.5), names, png, "title")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) > 5000


def test_the_long_video_generator_says_where_each_action_is(tmp_path):
    path = str(tmp_path / "long.mp4")
    actions = synthetic.generate_long(path, ("Run", "waving"), clips_per_action=2, seed=3)
    assert [a.class_name for a in actions] == ["Run", "waving"] and actions[0].start == 0.0
    assert actions[0].end == actions[1].start and 2.0 <= actions[0].end <= 5.0  # two clips of 1 to 2.5 s
    assert json.load(open(path + ".segments.json")) == [{"start": a.start, "end": a.end, "class_name": a.class_name} for a in actions]
    decoded = sum(1 for _ in frames.displayed_frames(path))
    assert decoded == round(actions[-1].end * 15)
    with pytest.raises(ValueError, match="unknown class"):
        synthetic.generate_long(path, ("Run", "flying"))


@pytest.mark.parametrize("name, spec, frame_input", [
    ("cnn_gru", SPEC, "rgb"),
    ("convnet_gru", ClipSpec(num_frames=4, height=32, width=32, candidates=3, with_next=True, flow=True), "rgb+flow"),
])
def test_reused_front_end_features_answer_like_the_whole_window(long_video, tmp_path, name, spec, frame_input):
    from models import recipes, serving, trainer
    from pipeline.inference import runtimes

    model = trainer.build(name, spec, 3, recipes.get("improved", frame_input=frame_input))
    saved = str(tmp_path / "saved")
    serving.export(model, saved, ["a", "b", "c"], spec, 3.0)
    whole, reusing = runtimes.load(saved), runtimes.load(saved, windows=True)
    assert isinstance(reusing, runtimes.ReusingClassifier) and isinstance(whole, runtimes.SavedModelClassifier)
    got = list(windows.WindowReader(long_video, spec, window_seconds=2.0, stride_seconds=1.0))
    expected = whole.probabilities([w.clip for w in got])
    reused = np.concatenate([reusing.probabilities([w.clip for w in got[i:i + 2]]) for i in range(0, len(got), 2)])
    np.testing.assert_allclose(reused, expected, atol=1e-5)
    assert reusing.steps_asked == len(got) * spec.num_frames and reusing.steps_computed < reusing.steps_asked
    frames_in = np.random.default_rng(0).integers(0, 256, (2, *spec.model_input_shape()), dtype=np.uint8)
    loaded = tf.saved_model.load(saved)
    features = loaded.signatures["frame_features"](frames=tf.constant(frames_in.reshape(-1, *frames_in.shape[2:])))["features"]
    halves = loaded.signatures["classify_features"](features=tf.reshape(features, [2, spec.num_frames, -1]))["probabilities"]
    np.testing.assert_allclose(halves.numpy(), model.predict(frames_in, verbose=0), atol=1e-5)


def test_a_model_whose_input_looks_across_time_steps_is_not_split(tmp_path):
    from models import recipes, serving, trainer

    model = trainer.build("cnn_gru", SPEC, 3, recipes.get("improved", frame_input="bg_diff"))
    assert not serving.splits_per_step(model)
    serving.export(model, str(tmp_path / "s"), ["a", "b", "c"], SPEC)
    assert "frame_features" not in tf.saved_model.load(str(tmp_path / "s")).signatures
