"""Evaluation of one model's eval-split scores: AUC, per-user P/R/F1@K and the ground-truth AUCs.

Per-user ranking uses `tf_ccl4rec.metrics.ranking.user_precision_recall_at_k` (the protocol of
the pipeline's TFMA metric) over each user's eval exposures; AUC is global (sklearn's
`roc_auc_score`, the same quantity as TFMA's AUC without its bucketing).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from tf_ccl4rec.metrics.ranking import f1, user_precision_recall_at_k


def auc(labels, scores) -> float:
    """ROC AUC, NaN when only one class is present."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores).reshape(-1)))


def ranking_metrics(users, labels, scores, ks=(10, 50), protocol: str = "alpine") -> dict:
    """Per-user Precision/Recall/F1@K averaged over users (`protocol` as in the pipeline).

    Args:
      users: [n] user id of each eval row.
      labels: [n] 0/1 clicks.
      scores: [n] predicted scores.
      ks: Cut-offs.
      protocol: "alpine" or "thacil".

    Returns:
      Dict precision_at_K, recall_at_K, f1_at_K (and ranked_users_at_K) per K.
    """
    users = np.asarray(users).reshape(-1)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(users[order][1:] != users[order][:-1]) + 1
    groups = np.split(order, bounds)
    out = {}
    for k in ks:
        p_sum = r_sum = w_sum = 0.0
        ranked = 0
        for rows in groups:
            result = user_precision_recall_at_k(labels[rows], scores[rows], k, protocol)
            if result is None:
                continue
            p, r, w = result
            p_sum, r_sum, w_sum, ranked = p_sum + p * w, r_sum + r * w, w_sum + w, ranked + 1
        p = p_sum / w_sum if w_sum else float("nan")
        r = r_sum / w_sum if w_sum else float("nan")
        out.update({f"precision_at_{k}": p, f"recall_at_{k}": r, f"f1_at_{k}": f1(p, r)})
        out[f"ranked_users_at_{k}"] = ranked
    return out


def oracle_auc(labels, true_click_prob) -> float:
    """AUC of the planted genuine click probability against the observed labels.

    Rows without a known probability (NaN) are left out.

    Args:
      labels: [n] observed 0/1 clicks (false positives included).
      true_click_prob: [n] ground truth `true_click_prob`.

    Returns:
      The AUC an oracle that knows the planted probability gets on these rows.
    """
    labels = np.asarray(labels).reshape(-1)
    prob = np.asarray(true_click_prob, dtype=np.float64).reshape(-1)
    known = ~np.isnan(prob)
    return auc(labels[known], prob[known])


def alpha_noise_auc(alphas, noise) -> dict:
    """How well importance α_t (Eq 2) ranks planted false-positive clicks below genuine ones.

    Args:
      alphas: List (one per history) of [n_i] α_t of the history's real items.
      noise: List of [n_i] 0/1: the item is a planted false-positive click.

    Returns:
      Dict: "pooled" = AUC of -α for noise vs genuine over all items of all histories (0.5 =
      random, 1 = every noise click below every genuine one); "per_user" = mean of that AUC
      within each history that has both kinds (α's scale differs between histories);
      "items", "noise_items", "histories".
    """
    if len(alphas) != len(noise):
        raise ValueError(f"{len(alphas)} alpha arrays but {len(noise)} noise arrays")
    pairs = [(np.asarray(a, np.float64).reshape(-1), np.asarray(z).reshape(-1))
             for a, z in zip(alphas, noise, strict=True)]  # fmt: skip
    for a, z in pairs:
        if a.shape != z.shape:
            raise ValueError(f"alpha {a.shape} and noise {z.shape} differ in shape")
    flat_a = np.concatenate([a for a, _ in pairs]) if pairs else np.zeros(0)
    flat_z = np.concatenate([z for _, z in pairs]) if pairs else np.zeros(0)
    per_user = [auc(z, -a) for a, z in pairs if 0 < z.sum() < z.size]
    return {
        "pooled": auc(flat_z, -flat_a),
        "per_user": float(np.mean(per_user)) if per_user else float("nan"),
        "items": int(flat_z.size),
        "noise_items": int(flat_z.sum()),
        "histories": len(pairs),
    }
