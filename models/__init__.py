"""The six recurrent video models and what trains, evaluates and reports them."""

from models.builder import DISPLAY_NAMES, MODEL_NAMES, build_model, trainable_params

__all__ = ["DISPLAY_NAMES", "MODEL_NAMES", "build_model", "trainable_params"]
