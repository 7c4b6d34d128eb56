"""Progress for long jobs: a bar on a terminal, periodic log lines otherwise (CI, cloud logs)."""

from __future__ import annotations

import logging
import sys
import time

import tqdm

log = logging.getLogger(__name__)


class Progress:
    """Counts done units out of `total`; shows rate and ETA.

    On a terminal it is a tqdm bar; elsewhere a log line at most every `every` seconds.
    """

    def __init__(self, total: int, desc: str, unit: str = "clip", every: float = 10.0, initial: int = 0):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.done = initial
        self._start = self._last = time.monotonic()
        self._initial = initial
        self._bar = (
            tqdm.tqdm(total=total or None, desc=desc, unit=unit, initial=initial, dynamic_ncols=True, unit_scale=unit == "B")
            if sys.stderr.isatty()
            else None
        )

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.every or self.done == self.total:
            self._last = now
            rate = (self.done - self._initial) / max(now - self._start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("%s: %d/%d %ss, %.2f %ss/s, ETA %.0f s", self.desc, self.done, self.total, self.unit, rate, self.unit, eta)

    def _eta(self) -> str:
        """', ETA 12 min' once a unit has been worked, else ''."""
        worked = self.done - self._initial
        if worked <= 0:
            return ""
        eta = (self.total - self.done) * (time.monotonic() - self._start) / worked
        return f", ETA {eta / 60:.0f} min" if eta >= 120 else f", ETA {eta:.0f} s"

    def skip(self, n: int) -> None:
        """Count n units as done without their time (already done before, or never to be done):
        the rate and ETA stay those of the units really worked."""
        self.done += n
        self._initial += n
        if self._bar is not None:
            self._bar.update(n)

    def describe(self, desc: str) -> None:
        """What is being worked on now (the bar's label, the log lines' prefix)."""
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc)
            return
        log.info("%s: %d/%d %ss done%s", desc, self.done, self.total, self.unit, self._eta())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
