"""One writer per directory: prepare on its output dir, train on a model's run dir, export on a
model's export dir.

The lock is `flock` on a file in the directory, which the kernel releases when the process ends
however it ends (kill -9 included), so a killed run never blocks its own resume. The file holds
who has it (command, host, process id, start time) for the message a second run gets:

    prepare: error: runs/shards: in use by prepare (pid 4242 on gpu-7, since 2026-12-02 02:40:11);
    wait for it to finish or stop it, then run this again

It is left in place after the run (removing it would let a third process lock a new file while a
second still holds the old one). Remote directories (gs://) are not locked: Cloud Storage has no
lock that is released when a process dies (BUILD_NOTES, running at scale).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import logging
import os
import socket
from typing import Iterator

from pipeline import storage

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"
_held: set[str] = set()  # directories this process holds: holding one again (command line, then library) is a no-op


class LockedError(Exception):
    """Another live process holds the directory; the message names it."""


@dataclasses.dataclass(frozen=True)
class Holder:
    command: str
    host: str
    pid: int
    started: str

    def __str__(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}, since {self.started})"

    @classmethod
    def now(cls, command: str) -> "Holder":
        return cls(command, socket.gethostname(), os.getpid(), datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))


def _holder(fd: int) -> str:
    """Who holds the lock, from its file ('another process' if it has not written it yet)."""
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        return str(Holder(**json.loads(os.read(fd, 4096).decode())))
    except (ValueError, TypeError):
        return "another process"


@contextlib.contextmanager
def hold(directory: str, command: str) -> Iterator[None]:
    """Hold `directory` (created if missing) for the block; LockedError if a live process has it."""
    if storage.is_remote(directory):
        log.debug("%s: remote directory, not locked", directory)
        yield
        return
    key = os.path.realpath(directory)
    if key in _held:
        yield
        return
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{directory}: in use by {_holder(fd)}; wait for it to finish or stop it, "
                              "then run this again") from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(dataclasses.asdict(Holder.now(command))).encode())
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)  # releases the lock
