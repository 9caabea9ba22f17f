"""CCL4Rec: Contrast over Contrastive Learning for micro-video recommendation (TF/Keras, TFX)."""

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

__version__ = "0.1.0"

# Lazy exports: `import tf_ccl4rec` must stay cheap and must not import TensorFlow.
_LAZY = {"CCL4RecConfig": "tf_ccl4rec.config", "CCL4RecModel": "tf_ccl4rec.model"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tf_ccl4rec' has no attribute {name!r}")
