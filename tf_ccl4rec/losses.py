"""Objectives of CCL4Rec (Eq 8-12, 14-16).

Per-user sums of the paper (Eq 10, 12, 14) are averaged over the rows of a batch so that the
loss scale does not depend on the batch size; `sample_weight` excludes rows (e.g. histories too
short to augment).
"""

from __future__ import annotations

import tensorflow as tf


def adaptive_margin(x, scale, lower, upper) -> tf.Tensor:
    """clip(x · scale, lower, upper) (Eq 9 / Eq 11).

    Args:
      x: Hardness (sum for Eq 9, difference for Eq 11), any shape.
      scale: δs.
      lower: δl.
      upper: δu.

    Returns:
      Margin of `x`'s shape.
    """
    x = tf.convert_to_tensor(x)
    return tf.clip_by_value(x * scale, tf.cast(lower, x.dtype), tf.cast(upper, x.dtype))


def _weighted_mean(per_row: tf.Tensor, sample_weight) -> tf.Tensor:
    if sample_weight is None:
        return tf.reduce_mean(per_row)
    w = tf.cast(sample_weight, per_row.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(per_row * w), tf.reduce_sum(w))


def ccl_loss(d_pos, d_neg, a_pos, a_neg, scale, lower, upper, sample_weight=None) -> tf.Tensor:
    """Hardness-aware triplet loss L_ccl (Eq 9-10).

    Args:
      d_pos: [B, Np] distances d(u^q, u_i^+).
      d_neg: [B, Nn] distances d(u^q, u_j^-).
      a_pos: [B, Np] positive hardness (Eq 5).
      a_neg: [B, Nn] negative hardness (Eq 4).
      scale, lower, upper: δs, δl, δu.
      sample_weight: Optional [B] row weights (0 excludes a row).

    Returns:
      Scalar: mean over rows of Σ_i Σ_j max(d_pos_i - d_neg_j + margin(a_pos_i + a_neg_j), 0).
    """
    margin = adaptive_margin(a_pos[:, :, None] + a_neg[:, None, :], scale, lower, upper)
    hinge = tf.nn.relu(d_pos[:, :, None] - d_neg[:, None, :] + margin)
    return _weighted_mean(tf.reduce_sum(hinge, axis=[1, 2]), sample_weight)


def _pairwise_contrast(closer, farther, a, scale, lower, upper, sample_weight):
    # Pair (i, k) with a_k < a_i: max(closer_ik - farther_ik + margin(a_i - a_k), 0).
    diff = a[:, :, None] - a[:, None, :]  # [B, i, k]
    margin = adaptive_margin(diff, scale, lower, upper)
    hinge = tf.nn.relu(closer - farther + margin) * tf.cast(diff > 0, margin.dtype)
    return _weighted_mean(tf.reduce_sum(hinge, axis=[1, 2]), sample_weight)


def ccl_positive_loss(d_pos, a_pos, scale, lower, upper, sample_weight=None) -> tf.Tensor:
    """Contrast over positives L_ccl⁺ (Eq 11-12): better positives must be closer.

    Args:
      d_pos: [B, Np] distances to the original user vector.
      a_pos: [B, Np] positive hardness (Eq 5).
      scale, lower, upper: δs, δl, δu.
      sample_weight: Optional [B] row weights.

    Returns:
      Scalar: mean over rows of Σ_i Σ_{k: a_k < a_i} max(d_i - d_k + margin(a_i - a_k), 0).
    """
    return _pairwise_contrast(
        d_pos[:, :, None], d_pos[:, None, :], a_pos, scale, lower, upper, sample_weight
    )


def ccl_negative_loss(d_neg, a_neg, scale, lower, upper, sample_weight=None) -> tf.Tensor:
    """Contrast over negatives L_ccl⁻: harder negatives must be pushed farther.

    Args:
      d_neg: [B, Nn] distances to the original user vector.
      a_neg: [B, Nn] negative hardness (Eq 4).
      scale, lower, upper: δs, δl, δu.
      sample_weight: Optional [B] row weights.

    Returns:
      Scalar: mean over rows of Σ_j Σ_{k: a_k < a_j} max(d_k - d_j + margin(a_j - a_k), 0).
    """
    return _pairwise_contrast(
        d_neg[:, None, :], d_neg[:, :, None], a_neg, scale, lower, upper, sample_weight
    )


def cui_loss(scores, labels, user_ids, return_fraction: bool = False):
    """Contrast on user-item pairs L_cui (Eq 15).

    For each user u: -log(Σ_pos exp(ŷ) / Σ_all exp(ŷ)) over that user's rows in the batch.

    Args:
      scores: [M] predictions ŷ (the model passes click probabilities, as in Eq 13-15).
      labels: [M] 0/1 labels.
      user_ids: [M] int user ids grouping the rows.
      return_fraction: Also return the share of the batch's users that contribute.

    Returns:
      Scalar mean over users with at least one positive and one negative row (0 when none);
      with `return_fraction`, a (loss, fraction) pair.
    """
    scores = tf.reshape(tf.cast(scores, tf.float32), [-1])
    labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
    uniq, seg = tf.unique(tf.reshape(user_ids, [-1]))
    num = tf.size(uniq)
    is_pos = labels > 0.5
    n_pos = tf.math.unsorted_segment_sum(tf.cast(is_pos, tf.float32), seg, num)
    n_all = tf.math.unsorted_segment_sum(tf.ones_like(labels), seg, num)
    valid = tf.logical_and(n_pos > 0, n_pos < n_all)
    # Stable per-user log-sum-exp: shift by the user's max score.
    shift = tf.stop_gradient(tf.math.unsorted_segment_max(scores, seg, num))
    ex = tf.exp(scores - tf.gather(shift, seg))
    pos_sum = tf.math.unsorted_segment_sum(ex * tf.cast(is_pos, ex.dtype), seg, num)
    all_sum = tf.math.unsorted_segment_sum(ex, seg, num)
    safe = tf.where(valid, pos_sum, tf.ones_like(pos_sum))
    per_user = tf.where(valid, tf.math.log(all_sum) - tf.math.log(safe), tf.zeros_like(safe))
    n_valid = tf.reduce_sum(tf.cast(valid, tf.float32))
    loss = tf.math.divide_no_nan(tf.reduce_sum(per_user), n_valid)
    if return_fraction:
        return loss, tf.math.divide_no_nan(n_valid, tf.cast(num, tf.float32))
    return loss


def cosine_distance(a, b) -> tf.Tensor:
    """1 - cos(a, b) on the last axis: half the squared distance on the unit hypersphere."""
    return 1.0 - tf.reduce_sum(tf.math.l2_normalize(a, -1) * tf.math.l2_normalize(b, -1), -1)


def euclidean_distance(a, b) -> tf.Tensor:
    """L2 distance between the unit-normalised vectors (in [0, 2])."""
    diff = tf.math.l2_normalize(a, -1) - tf.math.l2_normalize(b, -1)
    return tf.sqrt(tf.reduce_sum(tf.square(diff), -1) + 1e-12)


DISTANCES = {"cosine": cosine_distance, "euclidean": euclidean_distance}


def mixture_log_probs(logits: tf.Tensor):
    """log ŷ and log(1 - ŷ) where ŷ is the mean of sigmoid(logits) over the last axis.

    The paper averages the predictions of several sequences (§4.1); computing the logs via
    log-sum-exp keeps the cross-entropy finite for saturated logits.

    Args:
      logits: [..., S] logits of S sequences.

    Returns:
      (log ŷ, log(1 - ŷ)), each of shape [...].
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    log_s = tf.math.log(tf.cast(tf.shape(logits)[-1], logits.dtype))
    log_p = tf.reduce_logsumexp(tf.math.log_sigmoid(logits), axis=-1) - log_s
    log_q = tf.reduce_logsumexp(tf.math.log_sigmoid(-logits), axis=-1) - log_s
    return log_p, log_q


def binary_cross_entropy(labels, logits, sample_weight=None) -> tf.Tensor:
    """Eq 14 averaged over rows, for the mean-of-sigmoids prediction of `logits` [..., S].

    Args:
      labels: [...] 0/1 labels.
      logits: [..., S] per-sequence logits (S = 1 for a single sequence).
      sample_weight: Optional weights of shape [...].

    Returns:
      Scalar weighted mean cross-entropy.
    """
    log_p, log_q = mixture_log_probs(logits)
    labels = tf.cast(labels, log_p.dtype)
    per = -(labels * log_p + (1.0 - labels) * log_q)
    if sample_weight is None:
        return tf.reduce_mean(per)
    w = tf.cast(sample_weight, per.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(per * w), tf.reduce_sum(w))


def in_batch_retrieval_loss(queries, candidates, candidate_ids, user_ids, labels) -> tf.Tensor:
    """Auxiliary retrieval objective (not in the paper): in-batch softmax over the clicked rows.

    Each clicked row's query must pick its own clicked video out of the batch's clicked videos
    by dot product: -log(exp(q_i·c_i) / Σ_j exp(q_i·c_j)) over the clicked rows i, j. As
    `tfrs.tasks.Retrieval(remove_accidental_hits=True)`, a column j ≠ i holding the same video
    is left out of row i's softmax; unlike it, so is a column j ≠ i of the same user (the
    trainer batches several rows of a user together, and the user's other clicks are positives,
    not negatives).

    Args:
      queries: [B, D] query vectors (the retrieval projection of the Eq 7 user vector).
      candidates: [B, D] vectors of the rows' target videos.
      candidate_ids: [B] target video indices.
      user_ids: [B] user ids.
      labels: [B] 0/1 clicks; only the clicked rows take part.

    Returns:
      Scalar: mean over the clicked rows (0 when the batch has none).
    """
    clicked = tf.reshape(tf.cast(labels, tf.float32), [-1]) > 0.5
    q = tf.boolean_mask(tf.cast(queries, tf.float32), clicked)
    c = tf.boolean_mask(tf.cast(candidates, tf.float32), clicked)
    ids = tf.boolean_mask(tf.reshape(candidate_ids, [-1]), clicked)
    users = tf.boolean_mask(tf.reshape(user_ids, [-1]), clicked)
    logits = tf.matmul(q, c, transpose_b=True)  # [P, P]
    num = tf.shape(logits)[0]
    other = tf.logical_not(tf.eye(num, dtype=tf.bool))
    same = tf.logical_or(
        tf.equal(ids[:, None], ids[None, :]), tf.equal(users[:, None], users[None, :])
    )
    # The TFRS value for removed columns: finite, so the softmax stays NaN-free.
    removed = tf.fill(tf.shape(logits), tf.constant(tf.float32.min / 100.0, tf.float32))
    logits = tf.where(tf.logical_and(same, other), removed, logits)
    # Softmax cross-entropy with the diagonal as the label, written out: the op needs >= 1
    # class and a batch may have no click.
    per_row = tf.reduce_logsumexp(logits, axis=1) - tf.linalg.diag_part(logits)
    return tf.math.divide_no_nan(tf.reduce_sum(per_row), tf.cast(num, tf.float32))
