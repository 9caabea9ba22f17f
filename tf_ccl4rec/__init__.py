"""CCL4Rec: Contrast over Contrastive Learning for micro-video recommendation (TF/Keras, TFX)."""

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

__version__ = "0.1.0"
