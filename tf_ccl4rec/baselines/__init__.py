"""Baseline models (paper Table 2, plus the two counts to beat) with CCL4RecModel's input contract.

Build any model type, CCL4Rec included, with `tf_ccl4rec.model_registry.build_model`; the
baselines read only the keys they share with CCL4RecConfig (vocab_size, num_oov_buckets,
embedding_dim, max_history, learning_rate, mlp_units, l2, seed).
"""

from __future__ import annotations

from tf_ccl4rec.baselines.base import BaselineConfig, BaselineModel
from tf_ccl4rec.baselines.models import (
    BASELINES,
    ATRankModel,
    BPRModel,
    CNNModel,
    LSTMModel,
    NCFModel,
    PopularityModel,
    UserItemRateModel,
    build_baseline,
)

<<<<<<< HEAD
=======
MODEL_TYPES = ("ccl4rec", "bpr", "lstm", "cnn", "ncf", "atrank", "popularity")


def build_model(
    model_type: str, config_dict: dict | None, content_features: np.ndarray | None = None
) -> tf.keras.Model:
    """The model for `model_type`, not yet compiled.

    Args:
      model_type: One of `MODEL_TYPES`.
      config_dict: CCL4RecConfig keys (baselines read the shared ones and ignore the rest).
      content_features: CCL4Rec's frozen content table; the baselines use ids only.

    Returns:
      A `tfrs.models.Model`; compile it with e.g. `tf.keras.optimizers.Adam(learning_rate)`.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    if model_type == "ccl4rec":
        from tf_ccl4rec.config import CCL4RecConfig
        from tf_ccl4rec.model import CCL4RecModel

        return CCL4RecModel(CCL4RecConfig.from_dict(config_dict), content_features)
    return BASELINES[model_type](BaselineConfig.from_dict(config_dict))


>>>>>>> helper-C
__all__ = [
    "BASELINES",
    "ATRankModel",
    "BPRModel",
    "BaselineConfig",
    "BaselineModel",
    "CNNModel",
    "LSTMModel",
    "NCFModel",
    "PopularityModel",
<<<<<<< HEAD
    "UserItemRateModel",
    "build_baseline",
=======
    "build_model",
>>>>>>> helper-C
]
