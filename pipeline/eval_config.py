"""The Evaluator's TFMA config: metrics, per-user ranking metrics, slices and blessing thresholds."""

import json

import tensorflow_model_analysis as tfma

from pipeline.configs import SLICE_FEATURES
from tf_ccl4rec import features as F

PREDICTION_KEY = "scores"  # output of the serving_default signature


def make_eval_config(
    top_k=(10, 50), protocol: str = "alpine", auc_floor: float = 0.55, max_auc_drop: float = 0.02
) -> tfma.EvalConfig:
    """AUC (blessing metric), calibration, counts and per-user P/R/F1@K, over every slice.

    Args:
      top_k: the K (one int or several) of the per-user ranking metrics.
      protocol: "alpine" or "thacil" (tf_ccl4rec/metrics/ranking.py).
      auc_floor: absolute AUC the candidate must reach.
      max_auc_drop: how far below the last blessed model's AUC the candidate may be.

    Returns:
      tfma.EvalConfig for the TFX Evaluator (the baseline spec is added by the Evaluator).
    """
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": auc_floor}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_auc_drop}
        ),
    )
    ranking = [
        tfma.MetricConfig(
            class_name="UserPrecisionRecallAtK",
            module="tf_ccl4rec.metrics.ranking",
            config=json.dumps({"top_k": k, "protocol": protocol, "name": f"user_ranking_{k}"})[
                1:-1
            ],
        )
        for k in ([top_k] if isinstance(top_k, int) else top_k)
    ]
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default", label_key=F.LABEL, prediction_key=PREDICTION_KEY
            )
        ],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    # Blessing judges the overall slice; small buckets are reported, not gated.
                    tfma.MetricConfig(
                        class_name="AUC",
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=[tfma.SlicingSpec()], threshold=auc_threshold
                            )
                        ],
                    ),
                    tfma.MetricConfig(class_name="Calibration"),
                    tfma.MetricConfig(class_name="MeanLabel"),
                    tfma.MetricConfig(class_name="MeanPrediction"),
                    tfma.MetricConfig(class_name="BinaryCrossentropy"),
                    tfma.MetricConfig(class_name="CalibrationPlot"),
                ]
            ),
            tfma.MetricsSpec(metrics=ranking, query_key=F.USER_ID),
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[name]) for name in SLICE_FEATURES],
    )
