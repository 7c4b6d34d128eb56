"""Multi-worker training throughput: two MultiWorkerMirroredStrategy workers (processes on
127.0.0.1, TF_CONFIG) against one worker, same shards, same global batch, same machine.

    python benchmarks/multi_worker.py --size=full    # cnn_gru, 10 x 240 x 320, global batch 16
    python benchmarks/multi_worker.py --size=small   # CI: 10 x 60 x 80, global batch 8

On one machine both workers share its cores, so this measures the cost of the collective
all-reduce and the second process, not a speed-up: that needs a second machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

import common

from models.strategy import local_cluster_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"full": dict(clips=256, height=240, width=320, batch=16, epochs=4), "small": dict(clips=64, height=60, width=80, batch=8, epochs=3)}


def train_clips_per_second(data_dir: str, model_dir: str, workers: int, s: dict) -> float:
    """Global training clips/s (median over epochs after the first) of a cluster of `workers`."""
    args = [sys.executable, "train.py", f"--data_dir={data_dir}", "--model=cnn_gru", f"--model_dir={model_dir}",
            f"--epochs={s['epochs']}", f"--batch_size={s['batch']}", "--strategy=multi_worker", "--recipe=paper", "--learning_rate=1e-3"]
    procs = []
    for tf_config in local_cluster_configs(workers):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, TF_CONFIG=tf_config)
        procs.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=3600)
        if p.returncode:
            sys.exit(f"multi_worker benchmark: a worker failed:\n{err[-3000:]}")
    with open(os.path.join(model_dir, "cnn_gru", "history.json")) as f:
        history = json.load(f)
    return statistics.median(e["clips_per_second"] for e in history[1:])


def main() -> None:
    size = common.size_arg()
    s = SIZES[size]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        common.write_shards(data, s["clips"], height=s["height"], width=s["width"])
        one = train_clips_per_second(data, os.path.join(tmp, "one"), 1, s)
        two = train_clips_per_second(data, os.path.join(tmp, "two"), 2, s)
    common.report({
        "benchmark": "multi_worker", "size": size, "model": "cnn_gru", "clip_shape": [10, s["height"], s["width"], 3],
        "global_batch": s["batch"], "cores": os.cpu_count(),
        "one_worker_clips_per_second": round(one, 2), "two_workers_clips_per_second": round(two, 2),
        "ratio": round(two / one, 3),
    })


if __name__ == "__main__":
    main()
