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


def motion_weight(frames):
    """uint8 frames [B, T, H, W, 3P] -> float32 [B, T, H, W]: how much each pixel counts as the
    actor: its blurred difference to the clip's median (the first 3 channels), as a fraction of
    the clip's strongest, less THRESHOLD (zero below it)."""
    _, steps, height, width, _ = frames.shape
    rgb = ops.cast(frames[..., :3], "float32") / 255.0
    median = ops.sort(rgb, axis=1)[:, (steps - 1) // 2 : (steps - 1) // 2 + 1]
    motion = ops.mean(ops.abs(rgb - median), axis=-1, keepdims=True)  # [B, T, H, W, 1]
    k = blur_size(height)
    blurred = ops.average_pool(ops.reshape(motion, (-1, height, width, 1)), k, strides=1, padding="same")
    motion = ops.reshape(blurred, (-1, steps, height, width))
    motion = motion / (ops.max(motion, axis=(1, 2, 3), keepdims=True) + 1e-6)
    return ops.relu(motion - THRESHOLD)


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
        _, steps, height, width, channels = maps.shape
        maps = ops.cast(maps, "float32")  # sampled in float32 under a mixed-precision policy too
        cy, cx, box_h = self._box(frames, maps)
        box_w = box_h * (self.size[1] / self.size[0])  # square pixels in the crop
        crops = self._sample(maps, cy, cx, box_h, box_w)
        if self.flow_channels:
            zoom = ops.reshape(0.5 * width / box_w, (-1, 1, 1, 1, 1))
            scale = [zoom if c in self.flow_channels else ops.ones_like(zoom) for c in range(channels)]
            crops = crops * ops.concatenate(scale, axis=-1)
        track = ops.stack([cx / width * 2.0 - 1.0, cy / height * 2.0 - 1.0,
                           ops.repeat(ops.expand_dims(box_h / height, 1), steps, axis=1)], axis=-1)
        return ops.cast(crops, self.compute_dtype), ops.cast(track, self.compute_dtype)

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


CELL = 4  # the learned view's attention grid: one cell for every CELL x CELL pixels
ATTENTION_FILTERS = 16


@keras.saving.register_keras_serializable(package="noctact")
class LearnedView(ActorView):
    """The actor view with a box the model learns to place: same inputs and outputs as ActorView.

    Where ActorView takes the weighted centre of the motion weight, this one takes the expected
    position under an attention map over a grid of CELL x CELL-pixel cells, per time step:
    softmax(log(the rule's weight in the cell + a small prior) + correction), where the correction
    is a small CNN (three 3x3 convolutions, the second dilated) of the cell's motion weight and
    frame input (bg_diff, flow, ...). Its last layer starts at zero, so an untrained view is the
    actor view's rule (to within the grid: the centre moves by under a cell), and training moves
    the box where the loss wants it: the gradient reaches the correction through the bilinear crop
    and the track (a spatial transformer, with the rule as its starting point). The box's size is
    the rule's (one per clip, from the weighted rows' spread under the same attention) times a
    learned factor, exp(log_scale), 1 at the start. For what the rule cannot tell apart: camera
    shake (motion everywhere) and a second thing that moves (a passing light).
    """

    def __init__(self, size: tuple[int, int] = (64, 64), flow_channels: tuple[int, ...] = (), **kwargs):
        super().__init__(size, flow_channels, **kwargs)
        self.attention = [
            layers.Conv2D(ATTENTION_FILTERS, 3, padding="same", activation="relu", name="attention_conv0"),
            layers.Conv2D(ATTENTION_FILTERS, 3, padding="same", dilation_rate=2, activation="relu", name="attention_conv1"),
            layers.Conv2D(1, 1, kernel_initializer="zeros", name="attention_logit"),
        ]

    def build(self, input_shape):
        _, maps = input_shape
        shape = (None, -(-maps[2] // CELL), -(-maps[3] // CELL), maps[4] + 1)
        for conv in self.attention:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.log_scale = self.add_weight(shape=(), initializer="zeros", name="log_scale")

    def _box(self, frames, maps):
        _, steps, height, width, channels = maps.shape
        weight = motion_weight(frames)  # [B, T, H, W]
        cells = ops.concatenate([ops.expand_dims(weight, -1), maps], axis=-1)
        cells = ops.average_pool(ops.reshape(cells, (-1, height, width, channels + 1)), CELL, strides=CELL, padding="same")
        rows, cols = cells.shape[1], cells.shape[2]
        x = cells
        for conv in self.attention:
            x = conv(x)
        prior = PRIOR / (rows * cols)
        logits = ops.log(cells[..., 0] * CELL * CELL + prior) + ops.cast(x[..., 0], "float32")
        attention = ops.softmax(ops.reshape(logits, (-1, steps, rows * cols)), axis=-1)
        attention = ops.reshape(attention, (-1, steps, rows, cols))
        ys = ops.reshape(ops.minimum((ops.arange(rows, dtype="float32") + 0.5) * CELL, float(height)), (1, 1, rows, 1))
        xs = ops.reshape(ops.minimum((ops.arange(cols, dtype="float32") + 0.5) * CELL, float(width)), (1, 1, 1, cols))
        cy = ops.sum(attention * ys, axis=(2, 3))
        cx = ops.sum(attention * xs, axis=(2, 3))
        # Steps count for the size as the rule counts them: by how much moves in them.
        mass = ops.stop_gradient(ops.sum(weight, axis=(2, 3)) + PRIOR)  # [B, T]
        rows_var = ops.sum(attention * ops.square(ys - ops.reshape(cy, (-1, steps, 1, 1))), axis=(2, 3))
        spread = ops.sum(mass * rows_var, axis=1) / ops.sum(mass, axis=1)
        return cy, cx, box_height(spread, height, ops.exp(self.log_scale))
