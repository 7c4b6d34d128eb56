"""An export of any format, loaded for classification: `load(PATH)` reads the format from the path.

    EXPORT_DIR/<model>/<version>/                  SavedModel (saved_model.pb): TensorFlow
    EXPORT_DIR/<model>-tflite[-float16|-int8]/<version>/model.tflite   LiteRT (ai-edge-litert)
    EXPORT_DIR/<model>-onnx/<version>/model.onnx   onnxruntime

PATH is the version dir or the model file in it; every version dir carries
`assets.extra/preprocessing.json` (pipeline.export_asset). Each classifier takes clips as prepare
stores them (pipeline.frames.EncodedClip) and answers probabilities [N, classes]. The SavedModel
parses and decodes them with the training pipeline's own code (its classify_records signature);
LiteRT and ONNX take the centre view decoded here with OpenCV, whose JPEG decoder gives
TensorFlow's INTEGER_ACCURATE pixels exactly (tested), so no TensorFlow is needed to run them.
"""

from __future__ import annotations

import os
from typing import Protocol, Sequence

import cv2
import numpy as np

from pipeline import export_asset
from pipeline.clip_spec import ClipSpec
from pipeline.frames import EncodedClip

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("none", "float16", "int8")  # of a LiteRT export (models.converters)
MODEL_FILES = {"tflite": "model.tflite", "onnx": "model.onnx"}


class Classifier(Protocol):
    asset: export_asset.ExportAsset
    format: str

    def probabilities(self, clips: Sequence[EncodedClip], source: str = "") -> np.ndarray: ...


def locate(path: str) -> tuple[str, str, str]:
    """(version dir, format, model file) of an export path: a version dir, or the .tflite or .onnx
    file in one. ExportError when it is none of them."""
    path = path.rstrip("/")
    for fmt, name in MODEL_FILES.items():
        if path.endswith(os.path.splitext(name)[1]):
            return os.path.dirname(path) or ".", fmt, path
        if os.path.exists(os.path.join(path, name)):
            return path, fmt, os.path.join(path, name)
    if os.path.exists(os.path.join(path, "saved_model.pb")) or path.startswith("gs://"):
        return path, "saved_model", path
    raise export_asset.ExportError(f"{path}: not an export: no saved_model.pb, {MODEL_FILES['tflite']} or {MODEL_FILES['onnx']} "
                                   "(give EXPORT_DIR/<model>/<version> as export.py wrote it)")


def centre_positions(spec: ClipSpec, t: int) -> range:
    """Stored positions of time step t's P images in the centre view."""
    first = (t * spec.candidates + spec.centre) * spec.frames_per_step
    return range(first, first + spec.frames_per_step)


def step_images(jpegs: Sequence[bytes], positions: range) -> np.ndarray:
    """One time step's images decoded and stacked on channels: uint8 [H, W, 3P]."""
    images = [cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1] for i in positions]
    return np.concatenate(images, axis=-1)


def centre_view(jpegs: Sequence[bytes], spec: ClipSpec) -> np.ndarray:
    """The model's input for a stored clip, as records.decode_view gives it for the centre
    candidate: uint8 [T, H, W, 3P], each time step's P images stacked on channels."""
    return np.ascontiguousarray(np.stack([step_images(jpegs, centre_positions(spec, t)) for t in range(spec.num_frames)]))


class SavedModelClassifier:
    format = "saved_model"

    def __init__(self, path: str, loaded=None):
        import tensorflow as tf

        self.asset = export_asset.read(path)
        self._classify = (loaded or tf.saved_model.load(path)).signatures["classify_records"]

    def probabilities(self, clips: Sequence[EncodedClip], source: str = "") -> np.ndarray:
        import tensorflow as tf

        from pipeline import records

        serialized = [records.unlabelled(c, source) for c in clips]
        return self._classify(records=tf.constant(serialized))["probabilities"].numpy()


class ReusingClassifier:
    """A SavedModel over overlapping windows in order: each time step's images (named by their
    frame indices) go through the front end (frame_features) once, only the head
    (classify_features) runs per window. Same answers as SavedModelClassifier to 1e-5."""

    format = "saved_model"

    def __init__(self, path: str, loaded=None):
        import tensorflow as tf

        self.asset = export_asset.read(path)
        loaded = loaded or tf.saved_model.load(path)
        self._features, self._head = loaded.signatures["frame_features"], loaded.signatures["classify_features"]
        self.reset()

    def reset(self) -> None:
        """Forget the cached features and the counts (a new input)."""
        self._cache: dict[tuple[int, ...], np.ndarray] = {}
        self.steps_computed = self.steps_asked = 0

    def probabilities(self, clips: Sequence[EncodedClip], source: str = "") -> np.ndarray:
        import tensorflow as tf

        spec = self.asset.clip
        keys = [[tuple(c.indices[i] for i in centre_positions(spec, t)) for t in range(spec.num_frames)] for c in clips]
        new = {}
        for c, clip_keys in zip(clips, keys):
            for t, key in enumerate(clip_keys):
                if key not in self._cache and key not in new:
                    new[key] = step_images(c.jpegs, centre_positions(spec, t))
        if new:
            features = self._features(frames=tf.constant(np.stack(list(new.values()))))["features"].numpy()
            self._cache.update(zip(new, features))
        self.steps_computed += len(new)
        self.steps_asked += sum(len(k) for k in keys)
        stacked = np.stack([[self._cache[k] for k in clip_keys] for clip_keys in keys])
        oldest = min(k[0] for k in keys[-1])  # later windows start later: older steps are not needed again
        self._cache = {k: v for k, v in self._cache.items() if k[0] >= oldest}
        return self._head(features=tf.constant(stacked))["probabilities"].numpy()


class LiteClassifier:
    """LiteRT's interpreter, one clip per call (the converted model takes batch 1)."""

    format = "tflite"

    def __init__(self, version_dir: str, model_file: str, num_threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise export_asset.ExportError(f"{model_file}: a LiteRT export needs ai-edge-litert: pip install -e '.[litert]'") from None
        self.asset = export_asset.read(version_dir)
        self._interpreter = Interpreter(model_path=model_file, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def probabilities(self, clips: Sequence[EncodedClip], source: str = "") -> np.ndarray:
        return np.stack([self.run(centre_view(c.jpegs, self.asset.clip)) for c in clips])

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Probabilities [classes] of one uint8 clip [T, H, W, 3P]."""
        self._interpreter.set_tensor(self._input, frames[None])
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)[0].copy()


class OnnxClassifier:
    format = "onnx"

    def __init__(self, version_dir: str, model_file: str):
        try:
            import onnxruntime
        except ImportError:
            raise export_asset.ExportError(f"{model_file}: an ONNX export needs onnxruntime: pip install -e '.[onnx]'") from None
        self.asset = export_asset.read(version_dir)
        self._session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])

    def probabilities(self, clips: Sequence[EncodedClip], source: str = "") -> np.ndarray:
        return self.run(np.stack([centre_view(c.jpegs, self.asset.clip) for c in clips]))

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Probabilities [B, classes] of uint8 clips [B, T, H, W, 3P]."""
        return self._session.run(["probabilities"], {"frames": frames})[0]


def load(path: str, windows: bool = False) -> Classifier:
    """The classifier of an export, whatever its format. ExportError names the path. windows:
    for overlapping windows in order (a timeline): a SavedModel that can be split reuses each
    time step's front-end features across windows (ReusingClassifier)."""
    version_dir, fmt, model_file = locate(path)
    if not os.path.exists(model_file) and fmt != "saved_model":
        raise export_asset.ExportError(f"{model_file}: no such file")
    if fmt == "tflite":
        return LiteClassifier(version_dir, model_file)
    if fmt == "onnx":
        return OnnxClassifier(version_dir, model_file)
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    if windows and "frame_features" in loaded.signatures:  # the export could be split (serving.splits_per_step)
        return ReusingClassifier(version_dir, loaded)
    return SavedModelClassifier(version_dir, loaded)
