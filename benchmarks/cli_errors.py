"""Time to a mistake's answer: each entry point given a typical mistake, against `python -c pass`
and against `python -c "import tensorflow"` (what every answer cost when it waited for TensorFlow).

    python benchmarks/cli_errors.py --size=full    # 5 runs of each, the median
    python benchmarks/cli_errors.py --size=small   # CI: 1 run of each

Prints, per mistake, the median seconds to exit, its ratio to `python -c pass`, the exit code and
the one line it printed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"full": 5, "small": 1}


def mistakes(empty: str) -> dict[str, list[str]]:
    return {
        "train.py (no flags)": ["train.py"],
        "train.py --model=cnn_gruu": ["train.py", "--model=cnn_gruu", f"--data_dir={empty}"],
        "train.py --data_dir=EMPTY": ["train.py", f"--data_dir={empty}"],
        "prepare on an empty dir": ["-m", "pipeline.prepare", f"--data_dir={empty}", f"--output_dir={empty}/out"],
        "prepare --help": ["-m", "pipeline.prepare", "--help"],
        "predict, missing model": ["-m", "pipeline.predict", "--model=/nonexistent", "x.mp4"],
        "export, missing model dir": ["export.py", "--model_dir=/nonexistent", f"--export_dir={empty}/e"],
        "verify EMPTY": ["-m", "pipeline.verify", empty],
    }


def timed(command: list[str], runs: int) -> tuple[float, subprocess.CompletedProcess]:
    seconds, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=300)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def main() -> None:
    runs = SIZES[common.size_arg()]
    baseline, _ = timed(["-c", "pass"], runs)
    tensorflow, _ = timed(["-c", "import tensorflow"], runs)
    figures = {"python_pass_seconds": round(baseline, 3), "import_tensorflow_seconds": round(tensorflow, 3), "mistakes": {}}
    with tempfile.TemporaryDirectory() as empty:
        for name, command in mistakes(empty).items():
            seconds, result = timed(command, runs)
            line = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or [""])[0].replace(empty, "EMPTY")
            figures["mistakes"][name] = {
                "seconds": round(seconds, 3), "vs_python_pass": round(seconds / baseline, 1),
                "vs_import_tensorflow": round(seconds / tensorflow, 3), "exit_code": result.returncode, "first_line": line,
            }
    common.report(figures)


if __name__ == "__main__":
    main()
