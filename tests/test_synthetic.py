"""The built-in data generator, and its hard mode."""

import dataclasses

import cv2
import numpy as np

from pipeline import index, synthetic
from pipeline.frames import read_clip


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
