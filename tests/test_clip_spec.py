"""ClipSpec: which frames a clip stores, in which order, and how one view is read back."""

import numpy as np
import pytest
import tensorflow as tf

from pipeline import frames as frames_lib
from pipeline import records
from pipeline.clip_spec import ClipSpec, sample_indices


def test_plain_spec_plans_the_even_spread():
    assert ClipSpec(num_frames=10).plan(95) == sample_indices(95, 10)
    assert ClipSpec(num_frames=4).stored_frames == 4 and ClipSpec().channels == 3


def test_candidates_and_next_frames_in_stored_order():
    spec = ClipSpec(num_frames=2, candidates=3, with_next=True)
    # 6 candidates spread over 60 frames: centres of stretches of 10; each followed by its successor.
    assert spec.plan(60) == [5, 6, 15, 16, 25, 26, 35, 36, 45, 46, 55, 56]
    assert spec.stored_frames == 12 and spec.channels == 6 and spec.centre == 1
    # The centre candidate of each segment is the frame a plain spread of T picks.
    assert spec.plan(60)[2::6] == sample_indices(60, 2) == [15, 45]


def test_next_frame_of_the_last_frame_is_itself():
    assert ClipSpec(num_frames=2, with_next=True).plan(2) == [0, 1, 1, 1]


def test_flow_follows_each_pair_as_two_images_that_start_at_the_kept_frame():
    spec = ClipSpec(num_frames=2, with_next=True, flow=True)
    assert spec.plan(20) == [5, 6, 5, 5, 15, 16, 15, 15]
    assert spec.frames_per_step == 4 and spec.channels == 12 and spec.stored_frames == 8
    assert [spec.member(p) for p in range(5)] == ["frame", "next", "flow_x", "flow_y", "frame"]


def test_the_partner_is_next_gap_frames_later_and_stops_at_the_last_frame():
    spec = ClipSpec(num_frames=2, with_next=True, flow=True, next_gap=2)
    assert spec.plan(20) == [5, 7, 5, 5, 15, 17, 15, 15]
    assert ClipSpec(num_frames=2, with_next=True, next_gap=3).plan(4) == [1, 3, 3, 3]
    assert spec.stored_frames == 8 and ClipSpec(num_frames=2, with_next=True).plan(20) == [5, 6, 15, 16]


def test_flow_average_reads_the_frames_around_each_end_clamped_to_the_video():
    spec = ClipSpec(num_frames=2, with_next=True, flow=True, next_gap=2, flow_average=3)
    assert spec.plan(20) == ClipSpec(num_frames=2, with_next=True, flow=True, next_gap=2).plan(20) == [5, 7, 5, 5, 15, 17, 15, 15]
    assert spec.averaged(5, 20) == [4, 5, 6] and spec.averaged(0, 20) == [0, 0, 1] and spec.averaged(19, 20) == [18, 19, 19]
    assert spec.reads(20) == [4, 5, 6, 7, 8, 14, 15, 16, 17, 18]
    assert spec.reads(2) == [0, 1]  # a two-frame video: every end clamped to it
    plain = ClipSpec(num_frames=2, candidates=3, with_next=True, flow=True)
    assert plain.reads(20) == sorted(set(plain.plan(20)))  # one frame per end: the plan's frames, once each


def test_frame_average_reads_the_frames_around_each_stored_frame_and_partner():
    spec = ClipSpec(num_frames=2, with_next=True, next_gap=2, frame_average=3)
    assert spec.plan(20) == [5, 7, 15, 17] and spec.frame_sources(5, 20) == [4, 5, 6] and spec.frame_sources(0, 20) == [0, 0, 1]
    assert spec.reads(20) == [4, 5, 6, 7, 8, 14, 15, 16, 17, 18]
    single = ClipSpec(num_frames=2, frame_average=5)  # no partner: only the kept frames' neighbours
    assert single.reads(20) == [3, 4, 5, 6, 7, 13, 14, 15, 16, 17] and single.frame_sources(19, 20) == [17, 18, 19, 19, 19]
    assert ClipSpec(num_frames=2, with_next=True, flow=True, flow_average=3, frame_average=5).reads(20) == list(range(3, 9)) + list(range(13, 19))
    assert ClipSpec(num_frames=2).frame_sources(5, 20) == [5]


@pytest.mark.parametrize("kwargs, message", [
    (dict(frame_average=2), "frame_average must be odd"),
    (dict(frame_average=0), "frame_average must be an integer >= 1"),
    (dict(with_next=True, flow=True, flow_average=2), "flow_average must be odd"),
    (dict(with_next=True, flow_average=3), "flow_average 3 needs flow"),
    (dict(flow=True), "flow needs with_next"),
    (dict(next_gap=2), "next_gap 2 needs with_next"),
    (dict(with_next=True, next_gap=0), "next_gap must be an integer >= 1"),
    (dict(candidates=2), "candidates must be odd"),
    (dict(num_frames=0), "num_frames must be an integer >= 1"),
    (dict(jpeg_quality=0), r"jpeg_quality must be in \[1, 100\]"),
])
def test_bad_specs_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClipSpec(**kwargs)


def test_dict_round_trip_refuses_unknown_fields():
    spec = ClipSpec(num_frames=3, height=8, width=16, jpeg_quality=70, candidates=5, with_next=True, next_gap=2)
    assert ClipSpec.from_dict(spec.to_dict()) == spec
    # a spec written before next_gap existed paired each frame with the next one
    assert ClipSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "next_gap"}).next_gap == 1
    # and before flow_average existed each end of the flow was one frame
    assert ClipSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "flow_average"}).flow_average == 1
    # and before frame_average existed each stored frame was one decoded frame
    assert ClipSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "frame_average"}).frame_average == 1
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['frames'\]"):
        ClipSpec.from_dict({"frames": 3})


def _value(t: int, j: int, p: int) -> int:
    return 10 + 30 * t + 8 * j + 4 * p  # stored frame (segment t, candidate j, pair member p)


def _record_jpegs(spec: ClipSpec) -> tf.Tensor:
    """JPEGs in stored order, each a flat frame whose level names its (t, j, p)."""
    levels = [_value(t, j, p) for t in range(spec.num_frames) for j in range(spec.candidates) for p in range(spec.frames_per_step)]
    clip = np.stack([np.full((spec.height, spec.width, 3), v, np.uint8) for v in levels])
    return tf.constant(frames_lib.encode_jpeg(clip, 95))


@pytest.mark.parametrize("with_next", [False, True])
def test_decode_view_takes_the_chosen_candidate_with_its_pair_on_channels(with_next):
    spec = ClipSpec(num_frames=3, height=8, width=8, candidates=3, with_next=with_next)
    jpegs = _record_jpegs(spec)
    for choice in ([1, 1, 1], [0, 2, 1]):
        clip = records.decode_view(jpegs, spec, tf.constant(choice)).numpy()
        assert clip.shape == (3, 8, 8, spec.channels) and clip.dtype == np.uint8
        for t, j in enumerate(choice):
            for p in range(spec.frames_per_step):
                assert np.abs(clip[t, :, :, 3 * p: 3 * p + 3].astype(int) - _value(t, j, p)).max() <= 1
    assert records.centre_choice(spec).numpy().tolist() == [1, 1, 1]


def test_random_choice_is_seeded_and_covers_every_candidate():
    spec = ClipSpec(num_frames=4, candidates=3)
    draws = [records.random_choice(spec, tf.constant([s, 0], tf.int64)).numpy().tolist() for s in range(30)]
    assert draws[0] == records.random_choice(spec, tf.constant([0, 0], tf.int64)).numpy().tolist()
    assert {c for d in draws for c in d} == {0, 1, 2} and len({tuple(d) for d in draws}) > 20
