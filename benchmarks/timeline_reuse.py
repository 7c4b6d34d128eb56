"""Windows per second of a timeline's classification with the front end's features reused across
overlapping windows, against running every window whole; CPU, cnn_gru and mobilenet_gru.

    python benchmarks/timeline_reuse.py --size=full    # 10 x 60 x 80 clips (the demo's), 60 s of video
    python benchmarks/timeline_reuse.py --size=small   # CI: 10 x 32 x 40, 12 s

The input is the built-in long video (synthetic.generate_long, 15 fps); windows of 1.733 s (the
demo data's median clip) every 0.867 s are read once (pipeline.inference.windows), then both classifiers
(pipeline.inference.runtimes: SavedModelClassifier, ReusingClassifier) answer them in batches of 8, in this
process, on the same windows: the ratio is the figure. Untrained models with rgb input (the paper
recipe; the speed does not depend on the weights). Also printed: the share of time steps whose
features were computed rather than reused, and the largest difference between the answers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import common
import numpy as np

SIZES = {"full": dict(height=60, width=80, clips_per_action=6), "small": dict(height=32, width=40, clips_per_action=1)}
WINDOW, STRIDE = 1.733, 0.8665


def windows_per_second(classifier, clips: list, batch: int = 8) -> tuple[float, np.ndarray]:
    classifier.probabilities(clips[:batch])  # warm-up: traces the signatures
    if hasattr(classifier, "reset"):
        classifier.reset()  # and nothing cached from it
    start = time.perf_counter()
    out = np.concatenate([classifier.probabilities(clips[i:i + batch]) for i in range(0, len(clips), batch)])
    return len(clips) / (time.perf_counter() - start), out


def main() -> None:
    from models import recipes, serving, trainer
    from pipeline.clip_spec import ClipSpec
    from pipeline.inference import runtimes, windows
    from pipeline.sources import synthetic

    size = common.size_arg()
    s = SIZES[size]
    spec = ClipSpec(10, s["height"], s["width"])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = os.path.join(tmp, "long.mp4")
        actions = synthetic.generate_long(video, synthetic.LONG_CLASSES, clips_per_action=s["clips_per_action"], seed=0)
        clips = [w.clip for w in windows.WindowReader(video, spec, WINDOW, STRIDE)]
        for name in ("cnn_gru", "mobilenet_gru"):
            model = trainer.build(name, spec, 12, recipes.get("paper"))
            saved = os.path.join(tmp, name)
            serving.export(model, saved, synthetic.CLASS_NAMES, spec, WINDOW)
            whole, whole_probs = windows_per_second(runtimes.load(saved), clips)
            reusing = runtimes.load(saved, windows=True)
            reused, reused_probs = windows_per_second(reusing, clips)
            results[name] = {
                "windows_per_second_whole": whole, "windows_per_second_reusing": reused, "ratio": reused / whole,
                "steps_computed_share": reusing.steps_computed / reusing.steps_asked,
                "max_abs_difference": float(np.abs(reused_probs - whole_probs).max()),
            }
    common.report({"size": size, "clip": list(spec.model_input_shape()), "input_seconds": actions[-1].end, "windows": len(clips),
                   "window_s": WINDOW, "stride_s": STRIDE, "models": results})


if __name__ == "__main__":
    sys.exit(main())
