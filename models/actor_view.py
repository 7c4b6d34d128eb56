"""The actor's view: each time step cropped to a box that follows the moving actor, and the box's
track, computed inside the model from the clip itself.

With a static camera, what moves is the actor: each frame minus the clip's per-pixel median
(`BackgroundDifference`) is the actor's silhouette, or the limbs that move. Its blurred magnitude
weighs every pixel; the weighted centre of each time step places the box there, and the vertical
spread over the whole clip sizes it (one size per clip: the actor's scale does not change within a
few seconds, and a size per step would turn crouching into zooming). The frame input (bg_diff,
flow, ...) is then sampled in that box, bilinearly, at a fixed `size`, so the front end sees the
actor at the same place and scale in every clip, whatever their distance to the camera and path
across the frame, and at the full detail of the stored frames; flow is rescaled to the box, so it
reads as speed relative to the actor's size. What the crop removes, where the actor is and how
fast they cross the frame, the track gives back: the box's centre x and y (-1 to 1 across the
frame) and height (a fraction of the frame's) at each time step, [B, T, 3].

No trainable weights, and only gathers and arithmetic (no CropAndResize), so LiteRT converts it to
builtin ops. A clip where nothing moves gets a box at the centre of the frame.

The learned view (`LearnedView`, `GlimpseAttention`): boxes of the same kind on each step's few
strongest movers, and attention the model trains to choose among them by what they show.
"""

from __future__ import annotations

import keras
from keras import layers, ops

THRESHOLD = 0.2  # of the clip's strongest (blurred) motion: what counts as the actor
SPREAD = 4.5  # box height in standard deviations of the actor's rows (a uniform body of height h: 1.3 h)
MIN_HEIGHT = 0.4  # the box's smallest height, as a fraction of the frame's (a waving arm alone is small)
PRIOR = 1e-3  # weight of the frame's centre: where the box goes when nothing moves


def default_size(height: int) -> tuple[int, int]:
    """The crop for frames `height` pixels high: square, half the height (the smallest box, 0.4 of
    it, then keeps its detail), in steps of 16 (the ConvNet halves it four times), from 16 to 64:
    32 at 64 x 80, 64 at 128 x 160 and above (a box of a 240-high frame is then sampled down)."""
    side = max(16, min(64, height // 2 // 16 * 16))
    return side, side


def blur_size(height: int) -> int:
    """The motion map's box-blur kernel for frames `height` pixels high: about 1/25 of the
    height, odd, at least 3 (5 at 128, 3 at 64): noise specks vanish, a limb does not."""
    return max(3, (height // 25) | 1)


def background_difference(frames):
    """uint8 frames [B, T, H, W, 3P] -> float32 [B, T, H, W, 3]: each step's frame (the first 3
    channels) minus the clip's per-pixel median, in [-1, 1]."""
    steps = frames.shape[1]
    rgb = ops.cast(frames[..., :3], "float32") / 255.0
    return rgb - ops.sort(rgb, axis=1)[:, (steps - 1) // 2 : (steps - 1) // 2 + 1]


def _blur(maps, k):
    """[B, T, H, W] -> the same, each step box-blurred over k (or k[0] x k[1]) pixels."""
    _, steps, height, width = maps.shape
    blurred = ops.average_pool(ops.reshape(maps, (-1, height, width, 1)), k, strides=1, padding="same")
    return ops.reshape(blurred, (-1, steps, height, width))


def motion_map(difference):
    """`background_difference` [B, T, H, W, 3] -> float32 [B, T, H, W]: each pixel's blurred
    difference to the clip's median, as a fraction of the clip's strongest."""
    motion = _blur(ops.mean(ops.abs(difference), axis=-1), blur_size(difference.shape[2]))
    return motion / (ops.max(motion, axis=(1, 2, 3), keepdims=True) + 1e-6)


def body_map(difference):
    """`background_difference` [B, T, H, W, 3] -> float32 [B, T, H, W]: where a whole body differs from the
    background, not a speck of noise: the signed background difference (channels' mean) averaged
    over an upright person's box (a quarter of the frame's height by 1/PEAK_BLUR of it) first, so
    that zero-mean sensor noise cancels, its magnitude after."""
    height = difference.shape[2]
    body = (max(3, (height // 4) | 1), max(3, (height // PEAK_BLUR) | 1))
    return ops.abs(_blur(ops.mean(difference, axis=-1), body))


def motion_weight(frames):
    """uint8 frames [B, T, H, W, 3P] -> float32 [B, T, H, W]: how much each pixel counts as the
    actor: its `motion_map`, less THRESHOLD (zero below it)."""
    return ops.relu(motion_map(background_difference(frames)) - THRESHOLD)


def box_height(spread, height: int, scale=1.0):
    """The box's height in pixels [B] from the actor rows' variance `spread` [B] (pixels squared):
    SPREAD standard deviations (times `scale`), within MIN_HEIGHT of the frame and the frame."""
    return ops.clip(SPREAD * scale * ops.sqrt(spread), MIN_HEIGHT * height, float(height))


@keras.saving.register_keras_serializable(package="noctact")
class ActorView(layers.Layer):
    """[frames uint8 [B, T, H, W, 3P], maps float [B, T, H, W, C]] -> [crops [B, T, h, w, C], track [B, T, 3]].

    `frames`: the model's input (its first 3 channels, each step's frame, find the actor);
    `maps`: the frame input to crop; the channels in `flow_channels` are flow in the frame's
    units (1 = pipeline.flow's bound) and are rescaled to the box (1 = the same displacement
    over half a box width as over a quarter of the frame's width, the bound's scale).
    """

    def __init__(self, size: tuple[int, int] = (64, 64), flow_channels: tuple[int, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(int(s) for s in size)
        self.flow_channels = tuple(int(c) for c in flow_channels)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "flow_channels": list(self.flow_channels)}

    def compute_output_shape(self, input_shape):
        _, maps = input_shape
        return (maps[0], maps[1], *self.size, maps[4]), (maps[0], maps[1], 3)

    def call(self, inputs):
        frames, maps = inputs
        maps = ops.cast(maps, "float32")  # sampled in float32 under a mixed-precision policy too
        crops, track = self._crop(maps, *self._box(frames, maps))
        return ops.cast(crops, self.compute_dtype), ops.cast(track, self.compute_dtype)

    def _crop(self, maps, cy, cx, box_h):
        """The crop of `maps` in one box per step (centre cy, cx [B, T], height box_h [B], pixels),
        flow rescaled to the box, and the box's track: [B, T, h, w, C], [B, T, 3]."""
        _, steps, height, width, channels = maps.shape
        box_w = box_h * (self.size[1] / self.size[0])  # square pixels in the crop
        crops = self._sample(maps, cy, cx, box_h, box_w)
        if self.flow_channels:
            zoom = ops.reshape(0.5 * width / box_w, (-1, 1, 1, 1, 1))
            scale = [zoom if c in self.flow_channels else ops.ones_like(zoom) for c in range(channels)]
            crops = crops * ops.concatenate(scale, axis=-1)
        track = ops.stack([cx / width * 2.0 - 1.0, cy / height * 2.0 - 1.0,
                           ops.repeat(ops.expand_dims(box_h / height, 1), steps, axis=1)], axis=-1)
        return crops, track

    def _box(self, frames, maps):
        """(centre y [B, T], centre x [B, T], box height [B]) in pixels of the frame."""
        _, steps, height, width = frames.shape[:4]
        weight = motion_weight(frames)
        ys = ops.reshape(ops.arange(height, dtype="float32") + 0.5, (1, 1, height, 1))
        xs = ops.reshape(ops.arange(width, dtype="float32") + 0.5, (1, 1, 1, width))
        total = ops.sum(weight, axis=(2, 3)) + PRIOR
        cy = (ops.sum(weight * ys, axis=(2, 3)) + PRIOR * height / 2) / total
        cx = (ops.sum(weight * xs, axis=(2, 3)) + PRIOR * width / 2) / total
        spread = ops.sum(weight * ops.square(ys - ops.reshape(cy, (-1, steps, 1, 1))), axis=(1, 2, 3)) / ops.sum(total, axis=1)
        return cy, cx, box_height(spread, height)

    def _sample(self, maps, cy, cx, box_h, box_w):
        """Bilinear samples of `maps` on a size[0] x size[1] grid over each step's box (zero
        outside the frame): [B, T, h, w, C]."""
        _, steps, height, width, channels = maps.shape
        out_h, out_w = self.size
        # Pixel centres of the output grid, in the frame's pixel coordinates (centres at i + 0.5).
        gy = (ops.arange(out_h, dtype="float32") + 0.5) / out_h - 0.5  # [h], -0.5..0.5 of the box
        gx = (ops.arange(out_w, dtype="float32") + 0.5) / out_w - 0.5
        ys = ops.expand_dims(cy, -1) + ops.reshape(box_h, (-1, 1, 1)) * gy - 0.5  # [B, T, h]
        xs = ops.expand_dims(cx, -1) + ops.reshape(box_w, (-1, 1, 1)) * gx - 0.5  # [B, T, w]
        y0, x0 = ops.floor(ys), ops.floor(xs)
        flat = ops.reshape(maps, (-1, channels))  # [B * T * H * W, C]
        base = ops.reshape(ops.arange(ops.shape(flat)[0] // (height * width)) * (height * width), (-1, steps, 1, 1))
        out = 0.0
        for dy in (0, 1):
            for dx in (0, 1):
                yy, xx = y0 + dy, x0 + dx
                wy = 1.0 - ops.abs(ys - yy)  # [B, T, h]
                wx = 1.0 - ops.abs(xs - xx)  # [B, T, w]
                inside_y = ops.logical_and(yy >= 0, yy <= height - 1)
                inside_x = ops.logical_and(xx >= 0, xx <= width - 1)
                wy = ops.where(inside_y, wy, 0.0)
                wx = ops.where(inside_x, wx, 0.0)
                row = ops.cast(ops.clip(yy, 0, height - 1), "int32")
                col = ops.cast(ops.clip(xx, 0, width - 1), "int32")
                index = base + ops.expand_dims(row, -1) * width + ops.expand_dims(col, 2)  # [B, T, h, w]
                values = ops.take(flat, ops.reshape(index, (-1,)), axis=0)
                values = ops.reshape(values, (-1, steps, out_h, out_w, channels))
                out = out + values * ops.expand_dims(ops.expand_dims(wy, -1) * ops.expand_dims(wx, 2), -1)
        return out


GLIMPSES = 3  # the learned view's candidate boxes per time step
PEAK_BLUR = 8  # body_map's box: a quarter of the frame's height by 1/PEAK_BLUR of it
WINDOW = (0.4, 0.25)  # a candidate's window, half its height and width as fractions of the frame's height: one person


@keras.saving.register_keras_serializable(package="noctact")
class LearnedView(ActorView):
    """Candidate boxes on each of the GLIMPSES strongest movers of every time step, for a model that
    learns which one to look at: [frames, maps] -> [crops [B, T, G, h, w, C], tracks [B, T, G, 3]].

    Where the actor rule takes the weighted centre of all that moves (between two movers when
    there are two; pulled around by a shaking camera's edges; anywhere in sensor noise), this
    view finds where a body differs most from the background (`body_map`), blanks a window of one
    person around it (2 x WINDOW of the frame's height, tall and narrow), and repeats, GLIMPSES
    times per step. Inside each window the rule's weights (relative to the window's own peak)
    give the box its centre and its rows' spread; a candidate's size is one per clip (its
    spreads' mean over the steps, as the rule sizes its box). Candidates are ordered by their
    peak's strength. What to look at is left to the model: `GlimpseAttention` scores each
    candidate's features and pools them (attention MIL), so the choice is learned from what the
    crops show (a person, not a passing light), with gradients straight to the scores, not
    through the boxes' geometry. The boxes themselves
    have no weights and use top_k, gathers and arithmetic only (LiteRT builtins).
    """

    def __init__(self, size: tuple[int, int] = (64, 64), flow_channels: tuple[int, ...] = (), glimpses: int = GLIMPSES, **kwargs):
        super().__init__(size, flow_channels, **kwargs)
        self.glimpses = int(glimpses)

    def get_config(self):
        return {**super().get_config(), "glimpses": self.glimpses}

    def compute_output_shape(self, input_shape):
        _, maps = input_shape
        return (maps[0], maps[1], self.glimpses, *self.size, maps[4]), (maps[0], maps[1], self.glimpses, 3)

    def call(self, inputs):
        frames, maps = inputs
        maps = ops.cast(maps, "float32")
        crops, tracks = zip(*(self._crop(maps, *box) for box in self._boxes(frames)))
        crops, tracks = ops.stack(crops, axis=2), ops.stack(tracks, axis=2)
        return ops.cast(crops, self.compute_dtype), ops.cast(tracks, self.compute_dtype)

    def _boxes(self, frames):
        """GLIMPSES (centre y [B, T], centre x [B, T], height [B]) in pixels, strongest first."""
        _, steps, height, width = frames.shape[:4]
        difference = background_difference(frames)  # once: its median sorts every pixel over the steps
        blob, motion = body_map(difference), motion_map(difference)
        ys = ops.reshape(ops.arange(height, dtype="float32") + 0.5, (1, 1, height, 1))
        xs = ops.reshape(ops.arange(width, dtype="float32") + 0.5, (1, 1, 1, width))
        reach_y, reach_x = WINDOW[0] * height, WINDOW[1] * height
        boxes = []
        for _ in range(self.glimpses):
            # top_k, not argmax (whose negative-zero fix is a bitwise op LiteRT lacks); float row and column
            _, peak = ops.top_k(ops.reshape(blob, (-1, steps, height * width)), 1)
            peak = ops.cast(ops.reshape(peak, (-1, steps, 1, 1)), "float32")
            row = ops.floor((peak + 0.5) / width)
            window = ops.cast(ops.logical_and(ops.abs(ys - row - 0.5) < reach_y, ops.abs(xs - (peak - row * width) - 0.5) < reach_x), "float32")
            local = motion * window  # the rule, inside the window
            weight = ops.relu(local / (ops.max(local, axis=(2, 3), keepdims=True) + 1e-6) - THRESHOLD)
            total = ops.sum(weight, axis=(2, 3)) + 1e-6
            cy = ops.sum(weight * ys, axis=(2, 3)) / total
            cx = ops.sum(weight * xs, axis=(2, 3)) / total
            rows = ops.sum(weight * ops.square(ys - ops.reshape(cy, (-1, steps, 1, 1))), axis=(2, 3))
            spread = ops.sum(rows, axis=1) / ops.sum(total, axis=1)
            boxes.append((cy, cx, box_height(spread, height)))
            blob, motion = blob * (1.0 - window), motion * (1.0 - window)
        return boxes


@keras.saving.register_keras_serializable(package="noctact")
class GlimpseAttention(layers.Layer):
    """[features [B, T, G, F], tracks [B, T, G, 3]] -> [features [B, T, F], track [B, T, 3]]: each
    step's candidates pooled by learned attention (Ilse et al. 2018, attention-based MIL): a
    score from each candidate's features (tanh hidden layer, then one linear unit), softmax over
    the candidates, and the features and tracks averaged with those weights."""

    def __init__(self, hidden: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.hidden = int(hidden)
        self.score_hidden = layers.Dense(self.hidden, activation="tanh", name="score_hidden")
        self.score = layers.Dense(1, name="score")

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}

    def build(self, input_shape):
        features, _ = input_shape
        self.score_hidden.build(features)
        self.score.build((*features[:-1], self.hidden))

    def compute_output_shape(self, input_shape):
        features, tracks = input_shape
        return (*features[:2], features[3]), (*tracks[:2], tracks[3])

    def call(self, inputs):
        features, tracks = inputs
        weights = ops.softmax(self.score(self.score_hidden(features)), axis=2)  # [B, T, G, 1]
        return ops.sum(weights * features, axis=2), ops.sum(weights * ops.cast(tracks, features.dtype), axis=2)
