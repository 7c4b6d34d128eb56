"""The recurrent video models (one builder: front end x cell) and what trains, evaluates and reports them.

Importing this package does not import Keras: `models.kinds` (the model table) is light, so
command lines check their flags before TensorFlow loads; the builder loads on first use.
"""

_LAZY = {"DISPLAY_NAMES", "MODEL_NAMES", "build_model", "trainable_params"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from models import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
