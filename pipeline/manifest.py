"""`manifest.json`: what a prepared data dir holds, as typed records with one reader and one writer.

A data dir holds either the three fixed splits (train, validation, test) or K folds (fold0 ...
fold{K-1}, made by `prepare --num_folds=K`: every group, e.g. an actor, in exactly one fold) for
cross-validation. `Manifest.roles(fold)` says which splits train, validate and test a run.

Layout (format_version 2; version 1 files, without folds and clip spec, are still read):
    {"format_version": 2, "fingerprint": str, "label_names": [str], "num_folds": int,
     "clip": {ClipSpec fields}, "settings": {...prepare's settings, for the record...},
     "splits": {NAME: {"num_examples": int,
                       "shards": [{"file", "num_examples", "num_bytes", "sha256"}],
                       "examples": [{"source": str, "label": int, "group": str, "seconds": float}]}},
     "skipped": [{"source": str, "reason": str}]}

No TensorFlow at import time: files go through `pipeline.storage`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Sequence

from pipeline import storage
from pipeline.clip_spec import ClipSpec

FILE_NAME = "manifest.json"
FORMAT_VERSION = 2
FIXED_SPLITS = ("train", "validation", "test")


class ManifestError(Exception):
    """A missing or malformed manifest; the message names the file and the field."""


def fold_name(i: int) -> str:
    return f"fold{i}"


@dataclasses.dataclass(frozen=True)
class Shard:
    file: str
    num_examples: int
    num_bytes: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class Example:
    source: str  # path relative to the data dir, '/'-separated
    label: int
    group: str = ""  # the group (e.g. actor) that kept it in its split
    seconds: float = 0.0  # the source video's duration (0: unknown, a data dir prepared before it was kept)


@dataclasses.dataclass(frozen=True)
class Split:
    shards: tuple[Shard, ...]
    examples: tuple[Example, ...]

    @property
    def num_examples(self) -> int:
        return len(self.examples)


@dataclasses.dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Roles:
    """Which splits a run trains on, validates on (chooses its best epoch) and tests on."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Manifest:
    label_names: tuple[str, ...]
    clip: ClipSpec
    splits: Mapping[str, Split]  # in order: FIXED_SPLITS, or fold0 ... fold{K-1}
    num_folds: int = 0  # 0: the fixed splits
    fingerprint: str = ""
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise ManifestError(f"no split {name!r} in this data dir (it has {', '.join(self.splits)})")
        return self.splits[name]

    def examples(self, names: str | Sequence[str]) -> list[Example]:
        """Examples of the named split(s), in reading order (split by split, manifest order)."""
        return [e for n in as_names(names) for e in self.split(n).examples]

    def shards(self, names: str | Sequence[str]) -> list[Shard]:
        return [s for n in as_names(names) for s in self.split(n).shards]

    def count(self, names: str | Sequence[str]) -> int:
        return sum(self.split(n).num_examples for n in as_names(names))

    def median_seconds(self, names: str | Sequence[str]) -> float:
        """The median duration of the named splits' source videos (those whose duration is known;
        0.0 when none is): the default window of a timeline."""
        known = sorted(e.seconds for e in self.examples(names) if e.seconds > 0)
        if not known:
            return 0.0
        mid = len(known) // 2
        return round(known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2, 3)

    def roles(self, fold: int | None = None) -> Roles:
        """Fixed splits (fold None), or fold i as test, the next fold as validation, the rest train."""
        if not self.num_folds:
            if fold is not None:
                raise ManifestError(f"fold {fold}: this data dir has fixed splits, not folds (prepare --num_folds)")
            return Roles(("train",), ("validation",), ("test",))
        if fold is None or not 0 <= fold < self.num_folds:
            raise ManifestError(f"fold must be one of 0..{self.num_folds - 1} for this data dir's {self.num_folds} folds, got {fold}")
        val = (fold + 1) % self.num_folds
        train = tuple(fold_name(i) for i in range(self.num_folds) if i not in (fold, val))
        return Roles(train, (fold_name(val),), (fold_name(fold),))

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "label_names": list(self.label_names),
            "num_folds": self.num_folds,
            "clip": self.clip.to_dict(),
            "settings": dict(self.settings),
            "splits": {
                name: {
                    "num_examples": s.num_examples,
                    "shards": [dataclasses.asdict(x) for x in s.shards],
                    "examples": [dataclasses.asdict(e) for e in s.examples],
                }
                for name, s in self.splits.items()
            },
            "skipped": [dataclasses.asdict(s) for s in self.skipped],
        }


def as_names(names: str | Sequence[str]) -> tuple[str, ...]:
    """One split name or several, as a tuple."""
    return (names,) if isinstance(names, str) else tuple(names)


def split_names(num_folds: int) -> tuple[str, ...]:
    return tuple(fold_name(i) for i in range(num_folds)) if num_folds else FIXED_SPLITS


def path_in(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def save(data_dir: str, manifest: Manifest) -> None:
    """Write atomically (temporary name, then rename)."""
    storage.write_atomic(path_in(data_dir), json.dumps(manifest.to_json(), indent=1, ensure_ascii=False) + "\n")


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ManifestError(f"{where}: missing field {key!r}")
    if not isinstance(data[key], kind):
        raise ManifestError(f"{where}: field {key!r} is {type(data[key]).__name__}, expected {getattr(kind, '__name__', kind)}")
    return data[key]


def _split(data: Any, where: str) -> Split:
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected an object")
    try:
        shards = tuple(Shard(**s) for s in _field(data, "shards", list, where))
        examples = tuple(Example(**e) for e in _field(data, "examples", list, where))
    except TypeError as e:
        raise ManifestError(f"{where}: malformed shard or example: {e}") from None
    if "num_examples" in data and data["num_examples"] != len(examples):
        raise ManifestError(f"{where}: num_examples {data['num_examples']} but {len(examples)} examples listed")
    if sum(s.num_examples for s in shards) != len(examples):
        raise ManifestError(f"{where}: shards hold {sum(s.num_examples for s in shards)} examples, {len(examples)} listed")
    return Split(shards, examples)


def from_json(data: Any, where: str = FILE_NAME) -> Manifest:
    """Check every field once, here; the message names the file and the field."""
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    version = data.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise ManifestError(f"{where}: format_version {version!r}, expected {FORMAT_VERSION}")
    labels = _field(data, "label_names", list, where)
    try:
        if version == 1:  # the clip settings were top-level fields then
            settings = data.get("settings") or {}
            clip = ClipSpec(_field(data, "num_frames", int, where), _field(data, "height", int, where),
                            _field(data, "width", int, where), settings.get("jpeg_quality", 90))
        else:
            clip = ClipSpec.from_dict(_field(data, "clip", dict, where))
    except ValueError as e:
        raise ManifestError(f"{where}: field 'clip': {e}") from None
    num_folds = data.get("num_folds", 0) if version > 1 else 0
    raw_splits = _field(data, "splits", dict, where)
    splits = {name: _split(raw_splits[name], f"{where}: splits.{name}") for name in raw_splits}
    if set(splits) != set(split_names(num_folds)):
        raise ManifestError(f"{where}: field 'splits' has {sorted(splits)}, expected {list(split_names(num_folds))}")
    for name, split in splits.items():
        bad = [e.source for e in split.examples if not 0 <= e.label < len(labels)]
        if bad:
            raise ManifestError(f"{where}: splits.{name}: label out of range for {bad[0]}")
    try:
        skipped = tuple(Skipped(**s) for s in data.get("skipped", []))
    except TypeError as e:
        raise ManifestError(f"{where}: field 'skipped': {e}") from None
    return Manifest(
        label_names=tuple(labels), clip=clip, splits={n: splits[n] for n in split_names(num_folds)}, num_folds=num_folds,
        fingerprint=str(data.get("fingerprint", "")), settings=dict(data.get("settings") or {}), skipped=skipped,
    )


def load(data_dir: str) -> Manifest:
    """Read and check a data dir's manifest."""
    path = path_in(data_dir)
    if not storage.exists(path):
        raise ManifestError(f"{path}: no manifest; is {data_dir} the output dir of `python -m pipeline.prepare`?")
    try:
        data = json.loads(storage.read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON: {e}") from e
    return from_json(data, path)


def fingerprint_of(data_dir: str) -> str | None:
    """The fingerprint of a data dir's manifest, or None when there is none or it does not parse
    (prepare's check whether OUT already holds this run's output)."""
    try:
        return load(data_dir).fingerprint
    except ManifestError:
        return None


def shard_paths(data_dir: str, manifest: Manifest, names: str | Sequence[str]) -> list[str]:
    """Full paths of the named splits' shards, in order."""
    return [os.path.join(data_dir, s.file) for s in manifest.shards(names)]
