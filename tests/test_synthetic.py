"""The built-in data generator, and its hard mode."""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from pipeline import index
from pipeline.frames import read_clip
from pipeline.sources import synthetic


def test_actors_keep_their_size_speed_and_place_in_every_class():
    specs = synthetic.plan(clips_per_class=4, num_actors=2, seed=0, hard=True)
    assert all(s.hard for s in specs) and {s.actor for s in specs} == {0, 1}
    people = [synthetic.actor(i) for i in range(8)]
    assert synthetic.actor(3) == people[3]  # the same person whatever the clip or class
    assert len({p.scale for p in people}) == 8 and len({p.speed for p in people}) == 8
    assert all(0.55 <= p.scale <= 0.85 and 0.7 <= p.speed <= 1.3 for p in people)


def test_hard_clips_shake_and_have_hot_pixels():
    # A "stand" clip (the actor hardly moves) whose camera shakes at least 1% of the frame per step.
    specs = [s for s in synthetic.plan(clips_per_class=12, num_actors=1, seed=3) if s.label_name == "stand"]
    spec = next(s for s in specs if synthetic.scene(np.random.default_rng(s.seed)).shake >= 0.01)
    easy, hard = synthetic.render(spec), synthetic.render(dataclasses.replace(spec, hard=True))
    assert len(easy) == len(hard) and easy[0].shape == hard[0].shape

    def motion(frames):  # change between consecutive frames once sensor noise is blurred away
        smooth = [cv2.GaussianBlur(f.astype(np.float32), (0, 0), 4) for f in frames]
        return np.mean([np.abs(a - b).mean() for a, b in zip(smooth, smooth[1:])])

    assert motion(hard) > 2 * motion(easy)
    assert (np.stack(hard).min(axis=0) == 255).any()  # stuck pixels: bright in every frame
    assert not (np.stack(easy).min(axis=0) == 255).any()


def test_hard_videos_are_prepared_and_split_by_actor(tmp_path):
    paths = synthetic.generate(str(tmp_path), clips_per_class=2, num_actors=2, seed=0, hard=True)
    assert len(paths) == 24
    videos = index.assign_groups(index.index_tree(str(tmp_path)), synthetic.GROUP_REGEX)
    assert {v.group for v in videos} == {"actor00", "actor01"}
    clip = read_clip(paths[0], num_frames=10, height=60, width=80)
    assert clip.frames.shape == (10, 60, 80, 3) and clip.frames.mean() < 60  # night: dark


def test_nightify_darkens_adds_fresh_noise_and_keeps_the_tree(tmp_path):
    from pipeline.sources import nightify
    from tests import videos

    src, dst = tmp_path / "day", tmp_path / "night"
    (src / "walk").mkdir(parents=True)
    videos.write_opencv(str(src / "walk" / "a_walk.mp4"), [np.full((48, 64, 3), 160, np.uint8)] * 12, fps=25)
    night = nightify.Night(seed=3)
    written, problems = nightify.nightify_tree(str(src), str(dst), night)
    assert problems == [] and written == [str(dst / "walk" / "a_walk.avi")]
    day_clip = read_clip(str(src / "walk" / "a_walk.mp4"), 12, 48, 64).frames.astype(float)
    night_clip = read_clip(written[0], 12, 48, 64).frames.astype(float)
    expected = (day_clip.mean() / 255) ** night.gamma * night.gain * 255  # level 160 -> about 32
    assert abs(night_clip.mean() - expected) < 2.5
    noise = night_clip - night_clip.mean(axis=0)
    # Read noise 4 and shot noise: std 4.9 before MJPEG and 4:2:0 chroma smooth part of it away.
    assert 1.5 < noise.std() < 6 and not np.array_equal(night_clip[0], night_clip[1])  # new noise every frame
    record = json.loads((dst / nightify.SETTINGS_FILE).read_text())
    assert record["night"]["gain"] == night.gain and set(record["seeds"]) == {"walk/a_walk.mp4"}
    again = tmp_path / "again"
    nightify.nightify_tree(str(src), str(again), night)
    assert (again / "walk" / "a_walk.avi").read_bytes() == (dst / "walk" / "a_walk.avi").read_bytes()  # seeded
    index.index_tree(str(dst))  # a class-per-folder tree prepare reads


def test_nightify_monochrome_is_grey():
    from pipeline.sources import nightify

    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = nightify.darken(rgb, nightify.Night(monochrome=True), np.random.default_rng(1))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    with pytest.raises(ValueError, match="gain must be in"):
        nightify.Night(gain=2.0)
