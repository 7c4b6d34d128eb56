"""How much of the stored night flow is noise: the night copy's flow bytes against the day's, clip by clip.

    python docs/results/weizmann_64x80/flow_noise.py DAY_DIR NIGHT_DIR   # two prepare outputs of the same videos, same settings

For every flow image of every clip (all candidates), the displacement the bytes stand for
(pipeline.flow.displacement at the manifest's gap), and its error at night against the day's:
on the actor (where the day flow moves more than 0.3 px per frame of gap) and on the still
background. Prints the means over every pixel of every clip, and the actor's motion by day.
"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # the repository
import numpy as np, tensorflow as tf
from pipeline import flow, records
from pipeline import manifest as mf


def flows(data_dir):
    """source -> float32 [T * K, H, W, 2]: the displacement of each stored flow image pair."""
    m = mf.load(data_dir); spec = m.clip
    out = {}
    for raw in tf.data.TFRecordDataset(mf.shard_paths(data_dir, m, list(m.splits))).batch(16):
        parsed = records.parse(raw, spec.stored_frames)
        for jpegs, source in zip(parsed[records.FRAMES], parsed[records.SOURCE].numpy()):
            images = records.decode_frames(jpegs, spec.stored_frames, spec.height, spec.width).numpy()[..., 0]
            x, y = images[2::spec.frames_per_step], images[3::spec.frames_per_step]
            out[source.decode()] = np.stack([flow.displacement(x, spec.width, spec.next_gap), flow.displacement(y, spec.width, spec.next_gap)], -1)
    return out, spec


day, spec = flows(sys.argv[1])
night, night_spec = flows(sys.argv[2])
assert (spec.next_gap, spec.flow_average) == (night_spec.next_gap, night_spec.flow_average), "the two outputs' clip settings differ"
d = np.concatenate([day[s] for s in sorted(day)])
n = np.concatenate([night[s] for s in sorted(day)])
moving = np.linalg.norm(d, axis=-1) > 0.3 * spec.next_gap
error = np.linalg.norm(n - d, axis=-1)
actor, background, motion = error[moving].mean(), error[~moving].mean(), np.linalg.norm(d, axis=-1)[moving].mean()
print(f"gap {spec.next_gap}, flow_average {spec.flow_average}, {len(day)} clips, {moving.mean():.3f} of the pixels moving: night error on the actor {actor:.3f} px, "
      f"on the background {background:.3f} px; the actor's motion by day {motion:.3f} px; motion / background error {motion / background:.1f}")
