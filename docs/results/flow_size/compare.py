"""Would the flow be as good computed on halved frames? Known motion pasted into real frames.

    python docs/results/flow_size/compare.py ../shared/data/weizmann-dev   # 20 videos, 240 x 320

Issue 34 asked for the flow "at the size the model reads it": at 240 x 320, DIS (the medium preset,
pipeline.flow) on frames halved to 120 x 160, scaled back up, costs a quarter. To see what that
loses, every third video's middle frame (letterboxed to 240 x 320, grey) gets a person-sized box
(120 x 50, at the centre) moved SHIFT pixels right, the rest kept still, optionally with new
Gaussian noise in both images (NOISE levels: the night copies' read noise is 8 at gain 0.12).
The truth is then known: SHIFT inside the box, 0 on the still rest. Prints the mean endpoint error
(pixels of the stored size) of each way on the box and on the rest, for each SHIFT and NOISE, and
what a flow costs each way (the same pair 50 times each, alternating, the faster of 3 rounds).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # the repository
import cv2
import numpy as np

from pipeline import frames

HEIGHT, WIDTH = 240, 320
TOP, LEFT, BOX_H, BOX_W = 60, 135, 120, 50
dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def full_size(first, second):
    return dis.calc(first, second, None)


def halved(first, second):
    small = [cv2.resize(g, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA) for g in (first, second)]
    return cv2.resize(dis.calc(small[0], small[1], None), (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR) * 2.0


def pair(grey, shift, noise, rng):
    """(first, second) uint8 images and the true flow [H, W, 2]."""
    moved = cv2.warpAffine(grey, np.float32([[1, 0, shift], [0, 1, 0]]), (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    second = grey.copy()
    second[TOP:TOP + BOX_H, int(LEFT + shift):int(LEFT + BOX_W + shift)] = moved[TOP:TOP + BOX_H, int(LEFT + shift):int(LEFT + BOX_W + shift)]
    images = [np.clip(np.rint(i + rng.normal(0, noise, i.shape)), 0, 255).astype(np.uint8) for i in (grey, second)]
    truth = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    truth[TOP:TOP + BOX_H, LEFT:LEFT + BOX_W, 0] = shift
    return images, truth


def _seconds(way, images, repeats: int = 50) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        way(*images)
    return (time.perf_counter() - start) / repeats


def main(root: str) -> None:
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if frames.is_video_file(f))[::3]
    greys = [cv2.cvtColor(frames.read_frames(p, lambda n: [n // 2], HEIGHT, WIDTH).frames[0], cv2.COLOR_RGB2GRAY).astype(np.float32) for p in paths]
    box = np.zeros((HEIGHT, WIDTH), bool)
    box[TOP:TOP + BOX_H, LEFT:LEFT + BOX_W] = True
    rest = np.zeros_like(box)
    rest[20:-20, 20:-20] = True
    rest[TOP - 8:TOP + BOX_H + 8, LEFT - 8:LEFT + BOX_W + 16] = False  # away from the box's edges, where either way smears
    rng = np.random.default_rng(0)
    images, _ = pair(greys[0], 2.5, 8, rng)
    cost = {way: min(_seconds(way, images) for _ in range(3)) for way in (full_size, halved)}
    print(f"one flow: full size {cost[full_size] * 1e3:.2f} ms, halved {cost[halved] * 1e3:.2f} ms ({cost[halved] / cost[full_size]:.2f} of it)")
    print(f"{len(paths)} videos at {HEIGHT} x {WIDTH}; mean endpoint error in pixels, full size / halved")
    for noise in (0, 8):
        for shift in (1.0, 2.5, 5.0):
            errors = {"full": [], "halved": []}
            for grey in greys:
                images, truth = pair(grey, shift, noise, rng)
                for name, way in (("full", full_size), ("halved", halved)):
                    error = np.linalg.norm(way(*images) - truth, axis=-1)
                    errors[name].append((error[box].mean(), error[rest].mean()))
            f, h = np.mean(errors["full"], axis=0), np.mean(errors["halved"], axis=0)
            print(f"noise {noise}, shift {shift}: moving box {f[0]:.3f} / {h[0]:.3f}, still rest {f[1]:.3f} / {h[1]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
