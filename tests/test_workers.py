"""The time-limited worker pool: every result, and a hang, a crash or an exception kept to its task."""

import os
import time

from pipeline.writing import workers


def _square(x):
    return x * x


def _sleep_or_crash(x):
    if x == "hang":
        time.sleep(60)
    if x == "crash":
        os._exit(3)
    if x == "raise":
        raise RuntimeError("boom")
    return x


def test_run_tasks_gives_every_result():
    out = sorted((o.index, o.value) for o in workers.run_tasks(_square, list(range(7)), num_workers=2, timeout=30))
    assert out == [(i, i * i) for i in range(7)]


def test_run_tasks_survives_hang_crash_and_exception():
    start = time.monotonic()
    outcomes = {o.index: o for o in workers.run_tasks(_sleep_or_crash, ["ok", "hang", "crash", "raise", "fine"], 2, timeout=3)}
    assert time.monotonic() - start < 30
    assert outcomes[0].ok and outcomes[0].value == "ok" and outcomes[4].value == "fine"
    assert not outcomes[1].ok and "timed out after 3 s" in outcomes[1].error
    assert not outcomes[2].ok and "exit code 3" in outcomes[2].error
    assert not outcomes[3].ok and outcomes[3].error.startswith("RuntimeError: boom")
