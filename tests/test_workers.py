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


def _mark_start(path):
    with open(path, "w"):
        pass
    return path


def test_a_worker_has_its_next_task_while_the_caller_handles_an_outcome(tmp_path):
    paths = [str(tmp_path / f"task{i}") for i in range(2)]
    tasks = workers.run_tasks(_mark_start, paths, num_workers=1, timeout=30)
    first = next(tasks)  # the caller holds the first outcome (prepare writes its record now) ...
    deadline = time.monotonic() + 20
    while not os.path.exists(paths[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.value == paths[0] and os.path.exists(paths[1])  # ... while the one worker already runs the second task
    assert [o.value for o in tasks] == [paths[1]]
