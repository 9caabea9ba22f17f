"""Per-user Precision@K, Recall@K and F1@K as a TFMA query-based metric.

TFMA ships NDCG and MinLabelPosition for queries but no precision/recall@K over binary labels, so this is
hand-written on TFMA's own query machinery (``query_key`` in the MetricsSpec groups each user's eval
exposures into one element). Every user's exposures are ranked by predicted CTR.

Two published protocols compute these differently (``../shared/notes/datasets-and-protocols.md``);
``protocol`` selects one and the report names it:

- ``"alpine"`` (default; ALPINE/MTIN, whose Kuaishou numbers the paper compares against):
  P@K = hits / min(K, n_u), R@K = hits / positives_u (0 for a user with no click, who stays in the mean),
  plain mean over users, F1 from the averaged P and R.
- ``"thacil"``: users with no click or no non-click are skipped, P@K = hits / K, R@K = hits / positives_u,
  users weighted by their number of eval rows, F1 from the averaged P and R.
"""

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

PROTOCOLS = ("alpine", "thacil")


def protocol_description(protocol: str) -> str:
    """One-paragraph description of a protocol, taken from this module's docstring (one source)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    lines = (__doc__ or "").splitlines()
    text, keep = [], False
    for line in lines:
        if line.startswith("- "):
            keep = f'``"{protocol}"``' in line
        elif not line.startswith("  "):
            keep = False
        if keep:
            text.append(line.lstrip("- ").strip())
    described = " ".join(text).replace("``", "").removeprefix(f'"{protocol}"')
    return described.lstrip(": ")


def user_precision_recall_at_k(labels, scores, k: int, protocol: str = "alpine"):
    """Precision and recall at K for one user, or None when the protocol skips the user.

    Args:
      labels: 0/1 clicks of the user's exposures, shape [n].
      scores: predicted CTRs, shape [n].
      k: cut-off.
      protocol: "alpine" or "thacil" (see module docstring).

    Returns:
      (precision, recall, weight) or None.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    n = labels.size
    positives = float(labels.sum())
    if protocol == "thacil" and (positives == 0 or positives == n):
        return None
    if n == 0:
        return None
    # Stable sort on -score: ties keep input order, so results are reproducible.
    top = np.argsort(-scores, kind="stable")[:k]
    hits = float(labels[top].sum())
    if protocol == "alpine":
        precision = hits / min(k, n)
        weight = 1.0
    else:
        precision = hits / k
        weight = float(n)
    recall = hits / positives if positives > 0 else 0.0
    return precision, recall, weight


def f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


class UserPrecisionRecallAtK(metric_types.Metric):
    """Per-user Precision@K / Recall@K / F1@K, averaged over users (needs ``query_key`` = user).

    Emits ``precision_at_{k}``, ``recall_at_{k}``, ``f1_at_{k}`` and ``ranked_users_at_{k}``
    (each followed by ``suffix``, so several query keys can report side by side).
    """

    def __init__(
        self,
        top_k: int = 50,
        protocol: str = "alpine",
        name: str = "user_ranking",
        suffix: str = "",
    ):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        super().__init__(
            _computations, top_k=int(top_k), protocol=protocol, name=name, suffix=suffix
        )


metric_types.register_metric(UserPrecisionRecallAtK)


def metric_names(top_k: int, suffix: str = "") -> dict:
    return {
        "precision": f"precision_at_{top_k}{suffix}",
        "recall": f"recall_at_{top_k}{suffix}",
        "f1": f"f1_at_{top_k}{suffix}",
        "users": f"ranked_users_at_{top_k}{suffix}",
    }


def _computations(
    top_k: int,
    protocol: str,
    name: str,
    suffix: str = "",
    eval_config=None,
    model_names=None,
    output_names=None,
    example_weighted: bool = False,
    query_key: str = "",
) -> metric_types.MetricComputations:
    del name  # one name per emitted value instead
    if not query_key:
        raise ValueError("UserPrecisionRecallAtK needs query_key (the user id) in its MetricsSpec")
    computations = []
    for model_name in model_names or [""]:
        for output_name in output_names or [""]:
            keys = {
                kind: metric_types.MetricKey(
                    name=metric_name,
                    model_name=model_name,
                    output_name=output_name,
                    example_weighted=example_weighted,
                )
                for kind, metric_name in metric_names(top_k, suffix).items()
            }
            computations.append(
                metric_types.MetricComputation(
                    keys=list(keys.values()),
                    preprocessors=None,
                    combiner=_Combiner(keys, eval_config, model_name, output_name, top_k, protocol),
                )
            )
    return computations


class _Accumulator:
    __slots__ = ["precision_sum", "recall_sum", "weight_sum", "users"]

    def __init__(self):
        self.precision_sum = 0.0
        self.recall_sum = 0.0
        self.weight_sum = 0.0
        self.users = 0


class _Combiner(beam.CombineFn):
    def __init__(self, keys, eval_config, model_name, output_name, top_k, protocol):
        self._keys = keys
        self._eval_config = eval_config
        self._model_name = model_name
        self._output_name = output_name
        self._top_k = top_k
        self._protocol = protocol

    def create_accumulator(self) -> _Accumulator:
        return _Accumulator()

    def add_input(self, acc: _Accumulator, element) -> _Accumulator:
        labels, predictions, _ = next(
            metric_util.to_label_prediction_example_weight(
                element,
                eval_config=self._eval_config,
                model_name=self._model_name,
                output_name=self._output_name,
                flatten=False,
                require_single_example_weight=True,
            )
        )
        result = user_precision_recall_at_k(labels, predictions, self._top_k, self._protocol)
        if result is not None:
            precision, recall, weight = result
            acc.precision_sum += precision * weight
            acc.recall_sum += recall * weight
            acc.weight_sum += weight
            acc.users += 1
        return acc

    def merge_accumulators(self, accumulators: Iterable[_Accumulator]) -> _Accumulator:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for acc in accumulators:
            result.precision_sum += acc.precision_sum
            result.recall_sum += acc.recall_sum
            result.weight_sum += acc.weight_sum
            result.users += acc.users
        return result

    def extract_output(self, acc: _Accumulator):
        if acc.weight_sum > 0:
            precision = acc.precision_sum / acc.weight_sum
            recall = acc.recall_sum / acc.weight_sum
        else:
            precision = recall = float("nan")
        return {
            self._keys["precision"]: precision,
            self._keys["recall"]: recall,
            self._keys["f1"]: f1(precision, recall) if acc.weight_sum > 0 else float("nan"),
            self._keys["users"]: float(acc.users),
        }
