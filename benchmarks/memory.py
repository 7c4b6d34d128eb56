"""Peak memory of a training epoch on N clips and on 8N clips: streaming keeps it flat.

    python benchmarks/memory.py --size=full    # cnn_gru at 10 x 240 x 320: 512 vs 4096 clips
    python benchmarks/memory.py --size=small   # CI: 10 x 60 x 80: 16 vs 128 clips

Each epoch runs in its own process; its peak resident set size (ru_maxrss) is read at the end.
Beside it, the held memory: the largest resident set seen at the end of a training step (every
step), when the step's temporaries are freed and what remains is the model, the optimizer and the
input pipeline's buffers. The peak is one transient inside some step (measured: 500-600 MB above
the held level for cnn_gru at full size), so a run with 8x the steps has 8x the chances to reach a
higher one, and single runs scatter (0.94 to 1.19 for the same code); the held ratio says whether
anything grows with the data.
N is at least make_dataset's shuffle buffer (512 clips), the one buffer that grows with the data
up to its cap; below it, the ratio measures the buffer filling, not the data growing.
Goal: peak(8N) / peak(N) <= 1.1. For scale: the original held NoctAct as one uint8 array of
(6613, 10, 240, 320, 3) = 15.2 GB in memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile

import common

SIZES = {"full": dict(n=512, height=240, width=320, batch=16), "small": dict(n=16, height=60, width=80, batch=8)}
ORIGINAL_BYTES = 6613 * 10 * 240 * 320 * 3
# glibc gives each thread its own malloc arena; TensorFlow's many threads then fragment memory
# more the longer a run lasts. --arenas=2 caps them (as MALLOC_ARENA_MAX=2 would for training).
ARENAS = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--arenas=")), "")


def resident_bytes() -> int:
    """The process's resident set size now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(data_dir: str, batch: int) -> None:
    """One epoch over the whole train split, then print peak and held RSS in bytes."""
    import keras

    from models import build_model
    from models import recipes
    from models.trainer import compile_model
    from pipeline import make_dataset, manifest

    m = manifest.load(data_dir)
    model = build_model("cnn_gru", height=m.clip.height, width=m.clip.width)
    steps = m.split("train").num_examples // batch
    compile_model(model, recipes.get("paper"), steps, jit_compile=False)
    held = [0]

    class Held(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            held[0] = max(held[0], resident_bytes())

    model.fit(make_dataset(data_dir, "train", batch, training=True, seed=0), steps_per_epoch=steps, epochs=1, verbose=0,
              callbacks=[Held()])
    # ru_maxrss and /proc/self/statm both read the kernel's RSS counters, which are approximate (their
    # per-CPU or per-thread parts are folded in lazily), so the high-water mark can read below a statm
    # reading taken earlier (seen once in a test run: held > ru_maxrss). The peak is at least every
    # resident size read.
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, held[0])
    print(json.dumps({"peak_rss_bytes": peak, "held_rss_bytes": held[0]}))


def measure(num_clips: int, s: dict) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as tmp:
        common.write_shards(tmp, num_clips, height=s["height"], width=s["width"])
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        if ARENAS:
            env["MALLOC_ARENA_MAX"] = ARENAS
        out = subprocess.run([sys.executable, __file__, "--child", tmp, str(s["batch"])], env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2], int(sys.argv[3]))
    size = common.size_arg()
    s = SIZES[size]
    small, large = measure(s["n"], s), measure(8 * s["n"], s)
    common.report({
        "size": size, "malloc_arena_max": ARENAS or "default", "clip": [10, s["height"], s["width"]], "clips": [s["n"], 8 * s["n"]],
        "peak_rss_bytes": [small["peak_rss_bytes"], large["peak_rss_bytes"]], "ratio": large["peak_rss_bytes"] / small["peak_rss_bytes"],
        "goal": 1.1, "held_rss_bytes": [small["held_rss_bytes"], large["held_rss_bytes"]],
        "held_ratio": large["held_rss_bytes"] / small["held_rss_bytes"],
        "original_in_memory_array_bytes": ORIGINAL_BYTES, "peak_8n_vs_original_array": large["peak_rss_bytes"] / ORIGINAL_BYTES,
    })


if __name__ == "__main__":
    main()
