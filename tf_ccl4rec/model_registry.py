"""The one list of trainable model types and how to build each (CCL4Rec and the baselines).

The CLI's choices, the Trainer, the experiments and the benchmarks all read `MODEL_TYPES` and call
`build_model`; adding a model type is one entry here (and its class). Imports are lazy so that
reading `MODEL_TYPES` does not start TensorFlow.
"""

from __future__ import annotations

CCL4REC = "ccl4rec"
BASELINE_TYPES = ("bpr", "lstm", "cnn", "ncf", "atrank", "popularity", "user_item_rate")
MODEL_TYPES = (CCL4REC, *BASELINE_TYPES)
# Baselines that count instead of learning: one pass over the data fits them exactly.
COUNTING_TYPES = ("popularity", "user_item_rate")


def check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")


def build_model(
    model_type: str, config_values: dict | None, content_features=None, video_categories=None
):
    """The model for `model_type`, not yet compiled.

    Args:
      model_type: One of `MODEL_TYPES`.
      config_values: CCL4RecConfig keys; the baselines read the keys they share with it
        (`BaselineConfig.from_dict`) and ignore the rest.
      content_features: CCL4Rec's frozen content table (the baselines use ids only).
      video_categories: CCL4Rec's video category table (`trainer.video_categories`).

    Returns:
      A `tfrs.models.Model`.
    """
    check_model_type(model_type)
    if model_type == CCL4REC:
        from tf_ccl4rec.config import CCL4RecConfig
        from tf_ccl4rec.model import CCL4RecModel

        return CCL4RecModel(
            CCL4RecConfig.from_dict(config_values), content_features, video_categories
        )
    from tf_ccl4rec.baselines import BaselineConfig, build_baseline

    return build_baseline(model_type, BaselineConfig.from_dict(config_values))
