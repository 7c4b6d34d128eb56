"""`manifest.json`: what a prepared data dir holds (shapes, labels, shards with counts and sha256).

Layout (format_version 1):
    {"format_version": 1, "fingerprint": str, "label_names": [str], "num_frames": int,
     "height": int, "width": int, "settings": {...},
     "splits": {"train"|"validation"|"test": {"num_examples": int,
                "shards": [{"file", "num_examples", "num_bytes", "sha256"}],
                "examples": [{"source": str, "label": int}]}},
     "skipped": [{"source": str, "reason": str}]}
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

FILE_NAME = "manifest.json"
FORMAT_VERSION = 1
_REQUIRED = ("label_names", "num_frames", "height", "width", "splits")


class ManifestError(Exception):
    """A missing or malformed manifest; the message names the file."""


def path_in(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def write(data_dir: str, manifest: dict[str, Any]) -> None:
    """Write atomically (temporary name, then rename)."""
    path = path_in(data_dir)
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    tf.io.gfile.rename(tmp, path, overwrite=True)


def load(data_dir: str) -> dict[str, Any]:
    """Read and check a data dir's manifest."""
    path = path_in(data_dir)
    if not tf.io.gfile.exists(path):
        raise ManifestError(f"{path}: no manifest; is {data_dir} the output dir of `python -m pipeline.prepare`?")
    try:
        with tf.io.gfile.GFile(path) as f:
            manifest = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON: {e}") from e
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise ManifestError(f"{path}: missing keys {missing}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"{path}: format_version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}")
    return manifest


def shard_paths(data_dir: str, manifest: dict[str, Any], split: str) -> list[str]:
    """Full paths of a split's shards, in order."""
    if split not in manifest["splits"]:
        raise ManifestError(f"{path_in(data_dir)}: no split {split!r} (has {sorted(manifest['splits'])})")
    return [os.path.join(data_dir, s["file"]) for s in manifest["splits"][split]["shards"]]
