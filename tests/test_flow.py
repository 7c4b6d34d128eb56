"""pipeline.flow: the optical flow between a frame and its partner, quantised as TSN's flow images."""

import cv2
import numpy as np

from pipeline import flow


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 4, width // 4, 3)).astype(np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), (3, 3), 0)


def test_a_frame_moved_one_pixel_right_and_half_a_pixel_down_is_that_flow():
    big = _texture(96, 120)
    frame, following = big[8:72, 8:88], big[8:72, 7:87]  # content moves 1 px right
    x, y = flow.flow_images([frame], [following])
    assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape == (64, 80)
    inner = (slice(12, -12), slice(12, -12))
    dx, dy = flow.displacement(x, 80)[inner], flow.displacement(y, 80)[inner]
    assert abs(float(np.median(dx)) - 1.0) < 0.1 and abs(float(np.median(dy))) < 0.1
    assert flow.bound(80) == 2.0 and flow.displacement(np.array([255, 128, 1], np.uint8), 80).tolist() == [2.0, 0.0, -2.0]


def test_no_motion_is_128_and_a_large_motion_is_clipped_to_the_bound():
    frame = _texture(64, 80, seed=1)
    x, y = flow.flow_images([frame], [frame])
    assert np.all(np.abs(x.astype(int) - 128) <= 1) and np.all(np.abs(y.astype(int) - 128) <= 1)
    far = np.roll(frame, 6, axis=1)  # 6 px: three times the bound at this width
    x, _ = flow.flow_images([frame], [far])
    assert x.min() >= 1 and np.median(x[16:-16, 16:-16]) == 255


def test_the_bound_grows_with_the_gap_so_a_byte_is_the_same_speed():
    big = _texture(96, 120, seed=2)
    frame, two_later = big[8:72, 8:88], big[8:72, 6:86]  # 2 px right over a gap of 2 frames: 1 px per frame
    x, _ = flow.flow_images([frame], [two_later], gap=2)
    one_frame, _ = flow.flow_images([frame], [big[8:72, 7:87]])  # 1 px over one frame
    inner = (slice(12, -12), slice(12, -12))
    assert flow.bound(80, gap=2) == 4.0
    assert abs(float(np.median(flow.displacement(x, 80, gap=2)[inner])) - 2.0) < 0.2
    assert abs(int(np.median(x[inner])) - int(np.median(one_frame[inner]))) <= 2  # about 191 both


def test_averaging_frames_at_each_end_averages_out_noise_new_in_every_frame():
    big = _texture(96, 120, seed=3)
    rng = np.random.default_rng(4)

    def noisy(shift: int) -> np.ndarray:  # the scene moved `shift` px right, with its own sensor noise
        frame = big[8:72, 8 - shift:88 - shift].astype(np.float32) + rng.normal(0, 12, (64, 80, 3))
        return np.clip(np.rint(frame), 0, 255).astype(np.uint8)

    inner = (slice(12, -12), slice(12, -12))
    errors = {}
    for frames_averaged in (1, 3):
        half = frames_averaged // 2
        # still scene: the flow is noise only; at each end the frames around it (the scene does not move)
        x, y = flow.flow_images([noisy(0) for _ in range(-half, half + 1)], [noisy(0) for _ in range(-half, half + 1)])
        errors[frames_averaged] = float(np.hypot(*(flow.displacement(i, 80)[inner] for i in (x, y))).mean())
    assert errors[3] < 0.75 * errors[1], errors
    one = noisy(0)
    assert all(np.array_equal(a, b) for a, b in zip(flow.flow_images([one] * 3, [one] * 3), flow.flow_images([one], [one])))
