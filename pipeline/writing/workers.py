"""A process pool whose tasks have a time limit: a hung or crashed task costs one task, not the run.

`concurrent.futures` cannot stop a task stuck inside a C decoder, so each worker is a plain
process on a pipe; the parent kills one that overruns its limit and starts a fresh one.
Workers are started with 'spawn', so they never inherit a parent's TensorFlow state.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one task gave: `value` when ok, else `error` says why (with the exception type)."""

    index: int
    ok: bool
    value: Any = None
    error: str = ""


def _serve(fn: Callable[[Any], Any], conn: Connection) -> None:
    while True:
        task = conn.recv()
        if task is None:
            return
        index, arg = task
        try:
            conn.send((index, True, fn(arg)))
        except Exception as e:  # reported to the parent with its type; the run goes on
            conn.send((index, False, describe_error(e)))


def describe_error(e: Exception) -> str:
    """'Type: message (function:line)', the reason recorded for a skipped video."""
    last = traceback.extract_tb(e.__traceback__)[-1:]
    where = f" ({last[0].name}:{last[0].lineno})" if last else ""
    return f"{type(e).__name__}: {e}{where}"


class _Worker:
    def __init__(self, ctx: mp.context.BaseContext, fn: Callable[[Any], Any]):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(fn, child), daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None
        self.started = 0.0

    def give(self, index: int, arg: Any) -> None:
        self.task, self.started = index, time.monotonic()
        self.conn.send((index, arg))

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def run_tasks(
    fn: Callable[[Any], Any], args: Sequence[Any], num_workers: int, timeout: float
) -> Iterator[Outcome]:
    """Run fn(arg) for each arg in `num_workers` processes; yield Outcomes as tasks finish.

    A task running longer than `timeout` seconds is killed with its worker and yields an error;
    so does a task whose worker dies. `fn` must be importable (a module-level function).
    """
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    ctx = mp.get_context("spawn")
    pending = list(enumerate(args))[::-1]
    workers = [_Worker(ctx, fn) for _ in range(min(num_workers, len(pending)))]
    try:
        for w in workers:
            w.give(*pending.pop())
        while any(w.task is not None for w in workers):
            busy = [w for w in workers if w.task is not None]
            first_deadline = min(w.started for w in busy) + timeout
            ready = wait([w.conn for w in busy], timeout=max(0.0, first_deadline - time.monotonic()))
            for i, w in enumerate(workers):
                if w.task is None:
                    continue
                outcome, replace = _check(w, ready, timeout)
                if outcome is None:
                    continue
                if replace:
                    w.stop(kill=True)
                    w = workers[i] = _Worker(ctx, fn)
                w.task = None
                if pending:  # the next task before the caller takes the outcome: no worker waits on it
                    w.give(*pending.pop())
                yield outcome
    finally:
        for w in workers:
            w.stop(kill=w.task is not None)


def _check(w: _Worker, ready: list, timeout: float) -> tuple[Outcome | None, bool]:
    """(outcome, worker must be replaced) for a busy worker, or (None, False) if still working."""
    if w.conn in ready:
        try:
            index, ok, value = w.conn.recv()
        except (EOFError, OSError):
            w.process.join(timeout=1)
            code = w.process.exitcode
            return Outcome(w.task, False, error=f"worker process died (exit code {code})"), True
        return (Outcome(index, True, value=value) if ok else Outcome(index, False, error=value)), False
    if time.monotonic() - w.started >= timeout:
        return Outcome(w.task, False, error=f"timed out after {timeout:g} s"), True
    return None, False
