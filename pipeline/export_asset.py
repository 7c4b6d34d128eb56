"""What an exported model carries beside its graph for `pipeline.predict`: how a video becomes its
input (the ClipSpec it was trained on), its label names, and the median duration of its training
videos (a timeline's default window), in `assets.extra/preprocessing.json`.

Written by `models.serving.export`, read by predict; no TensorFlow at import time.
"""

from __future__ import annotations

import dataclasses
import json
import os

from pipeline import storage
from pipeline.clip_spec import ClipSpec

PATH = os.path.join("assets.extra", "preprocessing.json")


class ExportError(Exception):
    """Not an export of this project, or a damaged one: the message names the path."""


@dataclasses.dataclass(frozen=True)
class ExportAsset:
    clip: ClipSpec
    label_names: tuple[str, ...]
    clip_seconds: float = 0.0  # median duration of the training videos; 0: not known (an older run)

    def to_json(self) -> str:
        return json.dumps({"clip": self.clip.to_dict(), "label_names": list(self.label_names), "clip_seconds": self.clip_seconds},
                          indent=1)


def write(saved_model_dir: str, asset: ExportAsset) -> None:
    storage.makedirs(os.path.join(saved_model_dir, os.path.dirname(PATH)))
    storage.write_atomic(os.path.join(saved_model_dir, PATH), asset.to_json())


def read(saved_model_dir: str) -> ExportAsset:
    path = os.path.join(saved_model_dir, PATH)
    if not storage.exists(path):
        raise ExportError(f"{path}: missing; is {saved_model_dir} a version dir written by export.py (EXPORT_DIR/<model>/<version>)?")
    try:
        data = json.loads(storage.read_text(path))
        return ExportAsset(ClipSpec.from_dict(data["clip"]), tuple(data["label_names"]), float(data.get("clip_seconds", 0.0)))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{path}: not a valid preprocessing record: {e}") from None
