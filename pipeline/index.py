"""The list of videos to prepare: found in a class-per-folder tree or read from a CSV, then split.

No TensorFlow and no decoding here: just paths, labels, groups and splits.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os
import re
from typing import Iterable, Sequence

import numpy as np

from pipeline import manifest, storage
from pipeline.frames import is_video_file

SPLITS = manifest.FIXED_SPLITS  # the names the manifest knows, from its one owner


class DatasetError(Exception):
    """The data set as a whole cannot be used: the message says which path and why."""


@dataclasses.dataclass(frozen=True)
class Video:
    """One video to prepare.

    path: where to read it. source: path relative to the data dir, '/'-separated (recorded).
    group: clips of one group always land in one split. split: fixed split, or '' to assign.
    """

    path: str
    source: str
    label_name: str
    group: str = ""
    split: str = ""


def partial_path(path: str) -> str:
    """Where a video being written waits until it is complete: a hidden name beside it, which
    index_tree never lists, then renamed to `path`."""
    return os.path.join(os.path.dirname(path), f".partial-{os.path.basename(path)}")


def _class_folders(data_dir: str) -> list[str]:
    if not storage.isdir(data_dir):
        raise DatasetError(f"{data_dir}: data dir does not exist or is not a directory")
    names = sorted(n for n in storage.listdir(data_dir) if not n.startswith(".") and storage.isdir(os.path.join(data_dir, n)))
    if not names:
        raise DatasetError(f"{data_dir}: no class folders (expected one folder of videos per class)")
    return names


def _videos_under(data_dir: str, folder: str) -> list[Video]:
    found = []
    for root, dirs, files in storage.walk(os.path.join(data_dir, folder)):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if is_video_file(name) and not name.startswith("."):
                path = os.path.join(root, name)
                source = storage.relpath(path, data_dir)
                found.append(Video(path=path, source=source, label_name=folder))
    return found


def index_tree(data_dir: str) -> list[Video]:
    """Every video file (by extension, any case) under each class folder of `data_dir`, sorted.

    Folders holding no video are not classes. Raises DatasetError when no video is found.
    """
    videos = sorted((v for f in _class_folders(data_dir) for v in _videos_under(data_dir, f)), key=lambda v: v.source)
    if not videos:
        raise DatasetError(f"{data_dir}: no video files (extensions: .mp4 .avi .mov .mkv .webm .m4v)")
    return videos


def index_csv(csv_path: str, data_dir: str | None = None) -> list[Video]:
    """Videos listed in a CSV with a header: path, label, and optionally group and split.

    Relative paths are taken from `data_dir`, or else from the CSV's own folder.
    """
    base = data_dir or os.path.dirname(storage.abspath(csv_path))
    try:
        rows = list(csv.DictReader(io.StringIO(storage.read_text(csv_path), newline="")))
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{csv_path}: cannot read index CSV: {e}") from e
    videos = []
    for line, row in enumerate(rows, start=2):
        if not row.get("path") or not row.get("label"):
            raise DatasetError(f"{csv_path}:{line}: each row needs 'path' and 'label' columns")
        split = (row.get("split") or "").strip()
        if split and split not in SPLITS:
            raise DatasetError(f"{csv_path}:{line}: split {split!r} is not one of {', '.join(SPLITS)}")
        path = os.path.join(base, row["path"])
        source = storage.relpath(path, base)
        videos.append(Video(path, source, row["label"].strip(), (row.get("group") or "").strip(), split))
    if not videos:
        raise DatasetError(f"{csv_path}: index CSV lists no video")
    return sorted(videos, key=lambda v: v.source)


def resolve_labels(videos: Sequence[Video], label_names: Sequence[str] | None) -> tuple[list[str], list[Video]]:
    """Label names (given order, else sorted) and the videos whose label is among them."""
    if not label_names:
        return sorted({v.label_name for v in videos}), list(videos)
    if len(set(label_names)) != len(label_names):
        raise DatasetError(f"--label_names has duplicates: {list(label_names)}")
    wanted = set(label_names)
    kept = [v for v in videos if v.label_name in wanted]
    if not kept:
        raise DatasetError(f"no video has a label among --label_names {list(label_names)}")
    return list(label_names), kept


def assign_groups(videos: Iterable[Video], group_regex: str | None) -> list[Video]:
    """Give each video its group: the regex's first group on the file name, else the CSV's, else itself."""
    try:
        pattern = re.compile(group_regex) if group_regex else None
    except re.error as e:
        raise DatasetError(f"--group_regex {group_regex!r} is not a regular expression: {e}") from None
    if pattern is not None and pattern.groups < 1:
        raise DatasetError(f"--group_regex {group_regex!r} has no capturing group")
    out = []
    for v in videos:
        group = v.group or v.source
        if pattern is not None:
            match = pattern.search(os.path.basename(v.source))
            if match is None or match.group(1) is None:
                raise DatasetError(f"{v.path}: file name does not match --group_regex {group_regex!r}")
            group = match.group(1)
        out.append(dataclasses.replace(v, group=group))
    return out


def split_videos(
    videos: Sequence[Video], fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> dict[str, list[Video]]:
    """Stratified, grouped, seeded split into train/validation/test.

    Groups are dealt out largest first (ties in seeded random order); each goes to the split
    whose per-class counts fall furthest below their target fractions. With one clip per group
    this is an ordinary stratified split. Within a split the order is shuffled (seeded), so
    shards mix classes. Videos with a fixed split (from a CSV) keep it.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DatasetError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    return _deal(videos, dict(zip(SPLITS, fractions)), seed)


def split_folds(videos: Sequence[Video], num_folds: int, seed: int = 0) -> dict[str, list[Video]]:
    """K folds for cross-validation (fold0 ... fold{K-1}), dealt like split_videos with equal
    targets: every group in exactly one fold. With one group per actor and K actors this is
    leave-one-actor-out. Refuses fewer groups than folds, and fixed splits from a CSV."""
    if num_folds < 2:
        raise DatasetError(f"--num_folds must be >= 2, got {num_folds}")
    fixed = [v for v in videos if v.split]
    if fixed:
        raise DatasetError(f"{fixed[0].path}: has a fixed split ({fixed[0].split}) in the index CSV; folds are dealt by group")
    groups = {v.group for v in videos}
    if len(groups) < num_folds:
        raise DatasetError(f"--num_folds={num_folds} needs at least {num_folds} groups, found {len(groups)}; "
                           "check --group_regex or ask for fewer folds")
    return _deal(videos, {name: 1.0 / num_folds for name in manifest.split_names(num_folds)}, seed)


def _deal(videos: Sequence[Video], target: dict[str, float], seed: int) -> dict[str, list[Video]]:
    """Deal groups to the named splits (largest first, seeded ties) by per-class deficit against
    the target fractions; then shuffle each split (seeded)."""
    names = list(target)
    rng = np.random.default_rng(seed)
    counts = {s: collections.Counter() for s in names}
    out: dict[str, list[Video]] = {s: [] for s in names}
    for v in videos:
        if v.split:
            out[v.split].append(v)
            counts[v.split][v.label_name] += 1
    groups: dict[str, list[Video]] = collections.defaultdict(list)
    for v in videos:
        if not v.split:
            groups[v.group].append(v)
    totals = collections.Counter(v.label_name for v in videos)
    keys = sorted(groups)
    tiebreak = dict(zip(keys, rng.permutation(len(keys))))
    for key in sorted(keys, key=lambda k: (-len(groups[k]), tiebreak[k])):
        per_class = collections.Counter(v.label_name for v in groups[key])

        def deficit(s: str) -> float:
            return sum(n * (target[s] * totals[c] - counts[s][c]) for c, n in per_class.items())

        best = max(names, key=lambda s: (deficit(s), -names.index(s)))
        out[best].extend(groups[key])
        counts[best].update(per_class)
    for s in names:
        out[s].sort(key=lambda v: v.source)
        out[s] = [out[s][i] for i in rng.permutation(len(out[s]))]
    return out
