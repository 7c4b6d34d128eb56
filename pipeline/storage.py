"""Paths that may be local or remote: gs:// (TensorFlow's built-in GCS filesystem) or any other
scheme `tf.io.gfile` knows (ram:// in tests). Every file the project writes goes through here
or through tf.io.gfile directly, so data, output and model dirs can all live in a bucket.

TensorFlow is imported inside the functions: decoding workers import this module and stay
free of TensorFlow unless a video really is remote.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from typing import Iterator


def is_remote(path: str) -> bool:
    return "://" in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def abspath(path: str) -> str:
    """An absolute local path, or the remote path unchanged (for messages and manifests)."""
    return path if is_remote(path) else os.path.abspath(path)


def relpath(path: str, start: str) -> str:
    """`path` relative to `start`, '/'-separated, for local and remote paths alike."""
    if is_remote(path):
        return posixpath.relpath(path.split("://", 1)[1], start.split("://", 1)[1])
    return os.path.relpath(path, start).replace(os.sep, "/")


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def listdir(path: str) -> list[str]:
    return [n.rstrip("/") for n in _gfile().listdir(path)] if is_remote(path) else os.listdir(path)


def walk(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """Like os.walk, top-down; the caller may prune `dirs` in place."""
    if not is_remote(top):
        yield from os.walk(top)
        return
    for root, dirs, files in _gfile().walk(top):
        yield root.rstrip("/"), [d.rstrip("/") for d in dirs], files


def makedirs(path: str) -> None:
    _gfile().makedirs(path) if is_remote(path) else os.makedirs(path, exist_ok=True)


def size(path: str) -> int:
    return _gfile().stat(path).length if is_remote(path) else os.path.getsize(path)


def remove(path: str) -> None:
    _gfile().remove(path) if is_remote(path) else os.remove(path)


def rmtree(path: str) -> None:
    _gfile().rmtree(path) if is_remote(path) else shutil.rmtree(path)


def rename(src: str, dst: str) -> None:
    """Replace `dst` by `src` (atomic on local filesystems)."""
    _gfile().rename(src, dst, overwrite=True) if is_remote(src) else os.replace(src, dst)


def read_bytes(path: str) -> bytes:
    """The file's bytes; OSError (naming the path) when it cannot be read, remote or local."""
    if is_remote(path):
        import tensorflow as tf

        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                return f.read()
        except tf.errors.OpError as e:
            raise OSError(f"{path}: {e.message}") from e
    with open(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_atomic(path: str, data: bytes | str) -> None:
    """Write under a temporary name, then rename: `path` never holds a partial file."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path + ".tmp"
    if is_remote(path):
        with _gfile().GFile(tmp, "wb") as f:
            f.write(data)
    else:
        try:
            with open(tmp, "wb") as f:
                f.write(data)
        except OSError as e:  # a full disk fails in write() or close(), which name no file: name it
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise OSError(e.errno, e.strerror, e.filename or tmp) from e
    rename(tmp, path)


def upload_tree(local_dir: str, remote_dir: str, last: str | None = None) -> None:
    """Copy the local directory tree to `remote_dir`; the top-level file `last`, if given, after
    all else (a bucket has no atomic rename: readers that wait for `last` see no partial tree)."""
    gfile = _gfile()
    for root, _, files in os.walk(local_dir):
        rel = os.path.relpath(root, local_dir)
        target = remote_dir if rel == "." else posixpath.join(remote_dir, rel.replace(os.sep, "/"))
        gfile.makedirs(target)
        for name in sorted(files):
            if not (rel == "." and name == last):
                gfile.copy(os.path.join(root, name), posixpath.join(target, name), overwrite=True)
    if last is not None:
        gfile.copy(os.path.join(local_dir, last), posixpath.join(remote_dir, last), overwrite=True)


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local file with the contents of `path`: `path` itself when local, else a temporary copy
    (FFmpeg reads local files; a video of up to 15 s is a few MB)."""
    if not is_remote(path):
        yield path
        return
    suffix = os.path.splitext(path)[1]
    fd, local = tempfile.mkstemp(suffix=suffix, prefix="video-")
    os.close(fd)
    try:
        _gfile().copy(path, local, overwrite=True)
        yield local
    finally:
        os.remove(local)


def check_tpu_paths(strategy: str, **paths: str) -> None:
    """A TPU reads and writes only Cloud Storage: refuse local paths (ValueError naming the flag)
    before anything touches the TPU. Other strategies take any path."""
    if strategy != "tpu":
        return
    for flag, path in paths.items():
        if not str(path).startswith("gs://"):
            raise ValueError(f"--{flag}={path}: with --strategy=tpu, data and model dirs must be gs:// paths")
