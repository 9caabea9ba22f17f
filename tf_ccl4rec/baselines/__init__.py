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
    "UserItemRateModel",
    "build_baseline",
]
