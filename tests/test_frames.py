"""Video to clip: sampling, letterboxing, and every kind of odd or broken input."""

import fractions
import os

import av
import numpy as np
import pytest

from pipeline import frames
from pipeline.frames import VideoError, model_pixels, read_clip, sample_indices
from tests import videos


@pytest.mark.parametrize(
    "available, wanted, expected",
    [
        (10, 10, list(range(10))),
        (100, 10, [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]),
        (30, 10, [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]),
        (3, 10, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]),
        (1, 4, [0, 0, 0, 0]),
        (7, 1, [3]),
    ],
)
def test_sample_indices(available, wanted, expected):
    assert sample_indices(available, wanted) == expected


def test_sample_indices_spread_evenly_and_in_range():
    for n in range(1, 400):
        idx = sample_indices(n, 10)
        assert idx == sorted(idx) and 0 <= idx[0] and idx[-1] < n
        if n >= 10:
            assert len(set(idx)) == 10


def test_sample_indices_rejects_nothing_to_sample():
    with pytest.raises(ValueError, match="num_available"):
        sample_indices(0, 10)


def letterbox(img, height, width):
    """model_pixels of a decoded frame holding the RGB picture `img`."""
    return model_pixels(av.VideoFrame.from_ndarray(img, format="rgb24"), height, width)


def test_letterbox_pads_wide_frame_top_and_bottom_with_black():
    img = np.full((90, 320, 3), 200, np.uint8)  # 32:9 into 4:3 -> 240 rows, 75 black above and below
    out = letterbox(img, 240, 320)
    assert out.shape == (240, 320, 3) and out.dtype == np.uint8
    assert out[:75].max() == 0 and out[-75:].max() == 0
    assert (out[75:165] == 200).all()


def test_letterbox_pads_tall_frame_left_and_right_and_resizes():
    img = np.full((480, 180, 3), 100, np.uint8)  # 90 x 240 after halving, centred in 320 columns
    out = letterbox(img, 240, 320)
    assert out.shape == (240, 320, 3)
    assert out[:, :115].max() == 0 and out[:, -115:].max() == 0
    assert (out[:, 115:205] == 100).all()


def test_letterbox_same_aspect_is_a_plain_area_resize():
    img = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3).astype(np.uint8)
    out = letterbox(img, 240, 320)
    expected = img.reshape(240, 2, 320, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(out.astype(np.float64) - expected).max() <= 1.0


@pytest.mark.parametrize("shape", [(90, 320), (480, 180), (48, 64), (144, 180), (720, 1280), (7, 3)])
def test_the_fitted_size_keeps_the_aspect_and_fills_one_side(shape):
    h, w = shape
    rows, cols = frames.fitted_size(h, w, 240, 320)
    assert rows == 240 or cols == 320
    assert abs(rows / cols - h / w) <= 1 / min(rows, cols)  # within the rounding of the short side


def test_reads_exact_frames_of_h264_with_b_frames(tmp_path):
    path = videos.write_h264(str(tmp_path / "b.mp4"), videos.flat_frames(30), gop=12, bframes=2)
    with av.open(path) as c:  # the file really has B-frames: decode order differs from display order
        pts = [p.pts for p in c.demux(video=0) if p.size]
    assert pts != sorted(pts)
    clip = read_clip(path, 10, 24, 32)
    assert clip.indices == (1, 4, 7, 10, 13, 16, 19, 22, 25, 28)
    assert clip.frames_decoded == 30
    assert clip.frames.shape == (10, 24, 32, 3) and clip.frames.dtype == np.uint8
    assert [videos.index_of(f) for f in clip.frames] == list(clip.indices)


def test_variable_frame_rate_is_sampled_by_frame_not_by_time(tmp_path):
    gaps = [33, 33, 200, 10, 33, 500, 40, 40, 33, 33] * 2
    pts = list(np.cumsum([0] + gaps[:-1]))
    path = videos.write_h264(str(tmp_path / "vfr.mkv"), videos.flat_frames(20), pts_ms=pts)
    clip = read_clip(path, 10, 24, 32)
    assert clip.frames_decoded == 20
    assert [videos.index_of(f) for f in clip.frames] == list(sample_indices(20, 10))


@pytest.mark.parametrize("n, expected", [(1, [0] * 10), (3, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])])
def test_short_video_repeats_frames(tmp_path, n, expected):
    path = videos.write_opencv(str(tmp_path / f"short{n}.avi"), videos.flat_frames(n), fourcc="MJPG")
    clip = read_clip(path, 10, 24, 32)
    assert clip.frames_decoded == n
    assert list(clip.indices) == expected
    assert [videos.index_of(f) for f in clip.frames] == expected


def test_index_promising_more_frames_than_data_holds(tmp_path):
    from pipeline import sampler

    path = videos.write_h264(str(tmp_path / "cut.mp4"), videos.flat_frames(30, noise=6), faststart=True, bframes=0, gop=1)
    videos.truncate(path, 0.5)
    with frames.open_video(path) as container:
        assert sampler.read_planned(container, lambda m: sample_indices(m, 10), lambda f: f.pts) is None  # full decode
    with av.open(path) as c:
        promised = c.streams.video[0].frames
    clip = read_clip(path, 10, 24, 32)
    assert promised == 30 and 5 <= clip.frames_decoded < 30
    assert list(clip.indices) == sample_indices(clip.frames_decoded, 10)
    assert [videos.index_of(f) for f in clip.frames] == list(clip.indices)


def test_rotation_metadata_is_honoured(tmp_path):
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :16] = 255  # bright band on the left of the stored frame
    path = videos.write_h264(str(tmp_path / "rot.mp4"), [img] * 4, rotation=90)
    clip = read_clip(path, 2, 64, 32)  # displayed portrait: 64 high, 32 wide
    # turned 90 degrees counter-clockwise, the left band becomes the bottom rows
    assert clip.frames[0][-12:].mean() > 240 and clip.frames[0][:40].mean() < 15


@pytest.mark.parametrize("rotation", [0, 90])
def test_non_square_pixels_are_shown_square_before_the_rotation(tmp_path, rotation):
    img = np.zeros((48, 32, 3), np.uint8)
    img[:, :16] = 255  # the left half of a stored 32 x 48 frame whose pixels are twice as wide as high
    path = videos.write_h264(str(tmp_path / "sar.mp4"), [img] * 4, rotation=rotation, sample_aspect=fractions.Fraction(2))
    if rotation == 0:  # displayed 64 x 48, filling a 48 x 64 clip: the bright half is cols 0-31
        frame = read_clip(path, 2, 48, 64).frames[0]
        assert frame[:, :28].mean() > 240 and frame[:, 36:].mean() < 15
    else:  # then turned 90 degrees counter-clockwise: 48 wide, 64 high, the bright half at the bottom
        frame = read_clip(path, 2, 64, 48).frames[0]
        assert frame[36:].mean() > 240 and frame[:28].mean() < 15


def test_grayscale_video_gives_rgb(tmp_path):
    gray = [f[:, :, 0] for f in videos.flat_frames(12)]
    path = videos.write_opencv(str(tmp_path / "gray.avi"), gray, fourcc="MJPG")
    clip = read_clip(path, 4, 24, 32)
    assert clip.frames.shape == (4, 24, 32, 3)
    assert np.array_equal(clip.frames[..., 0], clip.frames[..., 1])
    assert [videos.index_of(f) for f in clip.frames] == list(clip.indices)


@pytest.mark.parametrize(
    "height, width, name",
    [(16, 16, "tiny.mp4"), (40, 400, "banner.mp4"), (2160, 3840, "uhd.mp4"), (48, 64, "UPPER.MP4"), (48, 64, "nächt clip ü.mkv")],
)
def test_unusual_sizes_and_names(tmp_path, height, width, name):
    path = videos.write_opencv(str(tmp_path / name), videos.flat_frames(6, height, width), fourcc="mp4v" if name.lower().endswith("mp4") else "XVID")
    clip = read_clip(path, 3, 24, 32)
    assert clip.frames.shape == (3, 24, 32, 3)
    assert clip.frames_decoded == 6
    if width / height == 10:  # banner: letterbox bars top and bottom, content in the middle rows
        assert clip.frames[0][:9].max() <= 2 and abs(int(clip.frames[0][12].mean()) - videos.level(clip.indices[0])) <= 3


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: open(p, "wb").close(), "empty file"),
        (lambda p: open(p, "w").write("this is not a video\n" * 50), "cannot open"),
        (lambda p: open(p, "wb").write(np.random.default_rng(0).bytes(50_000)), "cannot open|no decodable"),
        (lambda p: videos.truncate(videos.write_h264(p, videos.flat_frames(30, noise=6)), 0.5), "cannot open"),
    ],
    ids=["zero-byte", "text", "random-bytes", "truncated-without-index"],
)
def test_broken_files_raise_video_error_naming_the_file(tmp_path, make, message):
    path = str(tmp_path / "bad.mp4")
    make(path)
    with pytest.raises(VideoError, match=message) as e:
        read_clip(path, 10, 24, 32)
    assert path in str(e.value)


def test_jpeg_round_trip_is_close_and_deterministic():
    clip = np.stack(videos.flat_frames(3, 24, 32))
    a, b = frames.encode_jpeg(clip, 90), frames.encode_jpeg(clip, 90)
    assert a == b and all(x[:2] == b"\xff\xd8" for x in a)


def test_is_video_file_ignores_case_and_other_files():
    assert frames.is_video_file("a.MP4") and frames.is_video_file("b.WebM") and frames.is_video_file("c.m4v")
    assert not frames.is_video_file("notes.txt") and not frames.is_video_file("mp4")
    assert os.path.splitext("x.tar.gz")[1] not in frames.VIDEO_EXTENSIONS


@pytest.mark.parametrize(
    "kind, n, gop, bframes",
    [("short-gop", 90, 15, 3), ("long-gop", 120, 250, 3), ("no-b-frames", 45, 10, 0), ("one-gop-short", 7, 250, 2)],
)
def test_fast_sampler_gives_exactly_the_sequential_frames(tmp_path, kind, n, gop, bframes):
    frames_in = videos.flat_frames(n, 72, 96, noise=10)
    path = videos.write_h264(str(tmp_path / f"{kind}.mp4"), frames_in, gop=gop, bframes=bframes)
    from pipeline import sampler

    with frames.open_video(path) as container:
        assert sampler.read_planned(container, lambda m: sample_indices(m, 10), lambda f: f.pts) is not None
    fast = read_clip(path, 10, 36, 48)  # took the fast path (checked above)
    slow = frames.read_clip_sequential(path, 10, 36, 48)
    assert fast.indices == slow.indices == tuple(sample_indices(n, 10))
    assert fast.frames_decoded == slow.frames_decoded == n
    assert np.array_equal(fast.frames, slow.frames)  # bit for bit


def test_fast_sampler_decodes_fewer_frames_than_a_full_decode(tmp_path, monkeypatch):
    path = videos.write_h264(str(tmp_path / "g.mp4"), videos.flat_frames(150, 72, 96, noise=10), gop=15, bframes=3)
    from pipeline import sampler

    converted = []
    real = sampler._decode_wanted

    def counting(container, index, wanted, convert):
        ctx = container.streams.video[0].codec_context
        original = type(ctx).decode
        decoded = []
        monkeypatch.setattr(type(ctx), "decode", lambda self, p=None: decoded.extend(f := original(self, p)) or f)
        out = real(container, index, wanted, convert)
        converted.append(len(decoded))
        return out

    monkeypatch.setattr(sampler, "_decode_wanted", counting)
    clip = read_clip(path, 10, 36, 48)
    assert clip.frames_decoded == 150
    assert converted and converted[0] < 150 * 0.6, converted
