"""The Evaluator's TFMA config: metrics, per-user ranking metrics, slices and blessing thresholds."""

import json

import tensorflow_model_analysis as tfma

from pipeline.configs import SLICE_FEATURES
from tf_ccl4rec import features as F

PREDICTION_KEY = "scores"  # output of the serving_default signature
WITHIN_VIDEO_BUCKET = "_within_video_bucket"  # suffix of the within-bucket ranking metrics


def auc_threshold(auc_floor: float, min_change: float) -> tfma.MetricThreshold:
    """AUC >= `auc_floor`, and candidate AUC - baseline AUC >= `min_change` (when a baseline
    exists: TFMA skips change thresholds on a first run)."""
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": auc_floor}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": min_change}
        ),
    )


def _model_specs():
    return [
        tfma.ModelSpec(
            signature_name="serving_default", label_key=F.LABEL, prediction_key=PREDICTION_KEY
        )
    ]


def _gated_auc(threshold: tfma.MetricThreshold) -> tfma.MetricConfig:
    # Blessing judges the overall slice; small buckets are reported, not gated.
    return tfma.MetricConfig(
        class_name="AUC",
        per_slice_thresholds=[
            tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)
        ],
    )


def make_gate_config(min_change: float) -> tfma.EvalConfig:
    """Only the AUC change, overall: the cheap second comparison (vs the last blessed model).

    The absolute floor is the full evaluation's alone (`make_eval_config`): the blessing gate
    needs both verdicts, so a copy here decided nothing, and with it a run that changed only the
    floor evaluated against the last blessed model again for the same answer. The AUC >= 0 that
    stands in for it always holds; it is there because TFX's Evaluator drops change thresholds
    when there is no baseline (a first run) and blesses nothing without a threshold.
    """
    return tfma.EvalConfig(
        model_specs=_model_specs(),
        metrics_specs=[tfma.MetricsSpec(metrics=[_gated_auc(auc_threshold(0.0, min_change))])],
        slicing_specs=[tfma.SlicingSpec()],
    )


def make_eval_config(
    top_k=(10, 50), protocol: str = "alpine", auc_floor: float = 0.55, min_auc_change: float = 0.0
) -> tfma.EvalConfig:
    """AUC (blessing metric), calibration, counts and per-user P/R/F1@K, over every slice.

    Args:
      top_k: the K (one int or several) of the per-user ranking metrics.
      protocol: "alpine" or "thacil" (tf_ccl4rec/metrics/ranking.py).
      auc_floor: absolute AUC the candidate must reach.
      min_auc_change: least candidate AUC - baseline AUC (the baseline is the user + video count
        trained in the same run).

    Returns:
      tfma.EvalConfig for the TFX Evaluator (the baseline spec is added by the Evaluator).
    """
    threshold = auc_threshold(auc_floor, min_auc_change)
    ks = [top_k] if isinstance(top_k, int) else list(top_k)

    def ranking(suffix):
        return [
            tfma.MetricConfig(
                class_name="UserPrecisionRecallAtK",
                module="tf_ccl4rec.metrics.ranking",
                config=json.dumps(
                    {
                        "top_k": k,
                        "protocol": protocol,
                        "name": f"ranking_{k}{suffix}",
                        "suffix": suffix,
                    }
                )[1:-1],
            )
            for k in ks
        ]

    return tfma.EvalConfig(
        model_specs=_model_specs(),
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    _gated_auc(threshold),
                    tfma.MetricConfig(class_name="Calibration"),
                    tfma.MetricConfig(class_name="MeanLabel"),
                    tfma.MetricConfig(class_name="MeanPrediction"),
                    tfma.MetricConfig(class_name="BinaryCrossentropy"),
                    tfma.MetricConfig(class_name="CalibrationPlot"),
                ]
            ),
            # Per user over all of the user's eval exposures: right for the overall and the
            # user-activity slices (a user is in exactly one).
            tfma.MetricsSpec(metrics=ranking(""), query_key=F.USER_ID),
            # Per user within one video-popularity bucket: the numbers to read on those slices.
            tfma.MetricsSpec(
                metrics=ranking(WITHIN_VIDEO_BUCKET), query_key=F.USER_IN_VIDEO_BUCKET
            ),
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[name]) for name in SLICE_FEATURES],
    )
