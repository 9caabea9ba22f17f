"""Hardness-aware, controllable replacement augmentation (§3.3 Eq 4-5, §3.5, §4.3.1).

One augmented sample replaces Nr real items of a user's history with substitutes drawn from Nz
videos sampled per batch (shared by the batch). Positives replace items from the least important
half of the history, negatives from the most important half (§3.5: "filter the half items with the
largest/smallest importance"); half of that half is replaced. Which candidates and which
substitutes are drawn is controlled by a "hard weight" t in [0, 1]:

  p(position) = (1 - t) · softmax(-alpha) + t · softmax(alpha)     (over the candidates)
  p(substitute | position m) = (1 - t) · softmax(-beta_m) + t · softmax(beta_m)   (over Nz)

t = 0 is the *easier* strategy (unimportance / unrelatedness weights), t = 1 *harder*,
*easy2hard* uses t = progress, *hard2easy* t = 1 - progress, and *random* samples uniformly.
Hardness scores (Eq 4/5) are computed under tf.stop_gradient, so contrastive objectives that use
them never train W1/W2 through them (§3.2).

Note on direction: Eq 5's a⁺ measures the *quality* of a positive (unimportant items replaced by
unrelated substitutes), so a harder positive has a *lower* a⁺ and a higher Eq 4 score of its
replacements. `difficulty` below is the Eq 4 score, the hardness in the "hard example" sense for
both positives and negatives.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from tf_ccl4rec.config import STRATEGIES
from tf_ccl4rec.layers.scoring import MASKED_LOGIT, masked_log_softmax, masked_softmax


def hardness(
    alpha_t: tf.Tensor,
    beta: tf.Tensor,
    replaced: tf.Tensor,
    substitutes: tf.Tensor,
    mask: tf.Tensor,
    positive: bool,
    replaced_mask: tf.Tensor | None = None,
    log_norm: tf.Tensor | None = None,
    rows: tf.Tensor | None = None,
) -> tf.Tensor:
    """Hardness score of augmented samples, Eq 4 (negatives) or Eq 5 (positives).

    a = Σ_(m,n) softmax_X(±alpha)_m · softmax_Z(±beta_m)_n with the sign + for negatives (Eq 4)
    and - for positives (Eq 5); the first softmax runs over the real items of the history, the
    second over the Nz substitutes. Inputs are wrapped in tf.stop_gradient.

    Args:
      alpha_t: [B, N] importance scores (Eq 2).
      beta: [B, N, Nz] relatedness scores (Eq 3), or with `rows` their distinct rows [R, Nz].
      replaced: int [B, Nr] (or [B, S, Nr]) replaced history positions.
      substitutes: int, same shape as `replaced`: indices into the Nz axis of `beta`.
      mask: [B, N] bool, True for real items.
      positive: True for Eq 5, False for Eq 4.
      replaced_mask: Optional bool, same shape as `replaced`; False entries (rows that replace
        fewer than Nr items) do not count.
      log_norm: Optional [B, N] logsumexp over Nz of ±beta (the sign of this call), e.g. from
        `SubstituteDraws.log_norm`, so a batch computes it once instead of once per call.
      rows: Optional int [B, N]: position (b, n) reads row rows[b, n] of `beta` [R, Nz]
        (`distinct_rows`).

    Returns:
      [B] (or [B, S]) hardness scores.
    """
    sign = -1.0 if positive else 1.0
    alpha_t = sign * tf.stop_gradient(alpha_t)
    beta = tf.stop_gradient(beta)  # the sign goes on the few entries read (not on [B, N, Nz])
    replaced = tf.cast(replaced, tf.int32)
    substitutes = tf.cast(substitutes, tf.int32)
    out_shape = tf.shape(replaced)[:-1]
    batch = tf.shape(replaced)[0]
    flat_rep = tf.reshape(replaced, [batch, -1])  # [B, K]
    flat_sub = tf.reshape(substitutes, [batch, -1])

    log_importance = masked_log_softmax(alpha_t, mask)  # [B, N]
    if rows is None:
        rows = _own_rows(tf.shape(mask))
    beta = tf.reshape(beta, [-1, tf.shape(beta)[-1]])  # [R, Nz]
    row_of = tf.gather(tf.cast(rows, tf.int32), flat_rep, batch_dims=1)  # [B, K]
    if log_norm is None:
        log_norm_mn = tf.gather(tf.reduce_logsumexp(sign * beta, axis=-1), row_of)
    else:
        log_norm_mn = tf.gather(log_norm, flat_rep, batch_dims=1)
    beta_mn = sign * tf.gather_nd(beta, tf.stack([row_of, flat_sub], axis=-1))  # [B, K]
    log_term = (
        tf.gather(log_importance, flat_rep, batch_dims=1) + beta_mn - tf.stop_gradient(log_norm_mn)
    )
    terms = tf.reshape(tf.exp(log_term), tf.shape(replaced))
    if replaced_mask is not None:
        terms *= tf.cast(replaced_mask, terms.dtype)
    return tf.reshape(tf.reduce_sum(terms, axis=-1), out_shape)


def strategy_hard_weight(strategy: str, progress) -> tf.Tensor | None:
    """The hard weight t of a strategy at a training progress in [0, 1]; None means uniform.

    Args:
      strategy: One of "random", "harder", "easier", "easy2hard", "hard2easy".
      progress: Scalar (float or tensor) in [0, 1].

    Returns:
      Scalar float32 tensor t, or None for "random".
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    if strategy == "random":
        return None
    progress = tf.clip_by_value(tf.cast(progress, tf.float32), 0.0, 1.0)
    return {
        "harder": tf.ones_like(progress),
        "easier": tf.zeros_like(progress),
        "easy2hard": progress,
        "hard2easy": 1.0 - progress,
    }[strategy]


def replacement_counts(
    mask: tf.Tensor, filter_fraction: float, replace_fraction: float, min_history: int
):
    """Per-row number of candidates and of replaced items.

    Args:
      mask: [B, N] bool.
      filter_fraction: Share of real items that are candidates (at least 1).
      replace_fraction: Share of candidates replaced (at least 1).
      min_history: Rows with fewer real items get 0 candidates (no augmentation).

    Returns:
      (num_candidates [B] int32, num_replaced [B] int32).
    """
    n_real = tf.reduce_sum(tf.cast(mask, tf.int32), axis=-1)
    keep = n_real >= min_history
    cand = tf.maximum(1, tf.cast(tf.floor(tf.cast(n_real, tf.float32) * filter_fraction), tf.int32))
    rep = tf.maximum(1, tf.cast(tf.floor(tf.cast(cand, tf.float32) * replace_fraction), tf.int32))
    zeros = tf.zeros_like(n_real)
    return tf.where(keep, cand, zeros), tf.where(keep, rep, zeros)


def max_replaced(length, filter_fraction: float, replace_fraction: float) -> tf.Tensor:
    """Nr: the largest number of replaced items for a history of `length` positions."""
    length = tf.cast(length, tf.float32)
    cand = tf.maximum(1.0, tf.floor(length * filter_fraction))
    return tf.cast(tf.maximum(1.0, tf.floor(cand * replace_fraction)), tf.int32)


def candidate_mask(alpha_t: tf.Tensor, mask: tf.Tensor, num_candidates: tf.Tensor, positive: bool):
    """Real items among the `num_candidates` least (positive) / most (negative) important.

    Args:
      alpha_t: [B, N] importance.
      mask: [B, N] bool.
      num_candidates: [B] int32.
      positive: Least important for positives, most important for negatives.

    Returns:
      [B, N] bool.
    """
    key = -alpha_t if positive else alpha_t
    key = tf.where(mask, key, tf.fill(tf.shape(key), tf.constant(-float("inf"), key.dtype)))
    order = tf.argsort(key, axis=-1, direction="DESCENDING", stable=True)
    rank = tf.argsort(order, axis=-1, stable=True)
    return tf.logical_and(mask, rank < num_candidates[:, None])


def position_probabilities(alpha_t, candidates, hard_weight):
    """Sampling probabilities of the candidate positions (see module docstring).

    Args:
      alpha_t: [B, N] importance.
      candidates: [B, N] bool candidate mask.
      hard_weight: Scalar t in [0, 1], or None for uniform.

    Returns:
      [B, N] probabilities, 0 outside the candidates.
    """
    if hard_weight is None:
        return masked_softmax(tf.zeros_like(alpha_t), candidates)
    t = tf.cast(hard_weight, alpha_t.dtype)
    return (1.0 - t) * masked_softmax(-alpha_t, candidates) + t * masked_softmax(
        alpha_t, candidates
    )


def sample_positions(alpha_t, mask, num_samples: int, positive: bool, hard_weight, config):
    """Draws the replaced positions of `num_samples` augmented samples per row.

    Positions are drawn without replacement from the candidates (Gumbel top-k on the log
    probabilities, which samples sequentially proportional to p).

    Args:
      alpha_t: [B, N] importance (gradient is stopped).
      mask: [B, N] bool.
      num_samples: S (Np or Nn).
      positive: Positives (least important half) or negatives (most important half).
      hard_weight: t, or None for the random strategy.
      config: Object with filter_fraction, replace_fraction, min_augment_history.

    Returns:
      (positions int32 [B, S, Nr], valid bool [B, S, Nr], num_replaced int32 [B]).
    """
    alpha_t = tf.stop_gradient(alpha_t)
    n_cand, n_rep = replacement_counts(
        mask, config.filter_fraction, config.replace_fraction, config.min_augment_history
    )
    candidates = candidate_mask(alpha_t, mask, n_cand, positive)
    probs = position_probabilities(alpha_t, candidates, hard_weight)
    log_p = tf.math.log(tf.maximum(probs, 1e-30))
    log_p = tf.where(candidates, log_p, tf.cast(MASKED_LOGIT, log_p.dtype))
    batch, length = tf.shape(mask)[0], tf.shape(mask)[1]
    u = tf.random.uniform([batch, num_samples, length], minval=1e-20, maxval=1.0)
    gumbel = -tf.math.log(-tf.math.log(u))
    k = max_replaced(length, config.filter_fraction, config.replace_fraction)
    _, positions = tf.math.top_k(log_p[:, None, :] + gumbel, k=k)
    valid = tf.range(k)[None, None, :] < n_rep[:, None, None]
    valid = tf.broadcast_to(valid, tf.shape(positions))
    return positions, valid, n_rep


@dataclasses.dataclass
class SubstituteDraws:
    """Per-position relatedness summaries of one batch, shared by its positives and negatives.

    Substitutes are drawn in two stages (see `draw_substitutes`): `related[b, n, k]` /
    `unrelated[b, n, k]` are independent draws of a *block* of `block_size` consecutive
    substitutes from the block masses of softmax(beta[b, n]) / softmax(-beta[b, n]); column k
    serves sample k of one augmentation call, and `sample_substitutes` draws the item inside the
    block. Both are None for the random strategy (uniform draws need no beta). Positions holding
    the same item share one row of `beta` (`distinct_rows`).
    """

    beta: tf.Tensor  # [R, Nz] relatedness rows
    rows: tf.Tensor  # int32 [B, N]: the row of `beta` of history position (b, n)
    log_norm_related: tf.Tensor  # [B, N] logsumexp_z(beta)
    log_norm_unrelated: tf.Tensor  # [B, N] logsumexp_z(-beta)
    related: tf.Tensor | None  # int32 [B, N, K] block indices
    unrelated: tf.Tensor | None  # int32 [B, N, K] block indices
    block_size: int = 1

    def log_norm(self, positive: bool) -> tf.Tensor:
        """The normaliser of Eq 5 (positive) or Eq 4 (negative) hardness."""
        return self.log_norm_unrelated if positive else self.log_norm_related


def _block_size(num: int) -> int:
    """The largest divisor of `num` not above sqrt(num) (1 when `num` is prime)."""
    return max(size for size in range(1, int(num**0.5) + 1) if num % size == 0)


def _log_block_sums(logits, sign: float, size: int):
    """log Σ exp(sign · logits) over consecutive blocks of `size`, and over the whole row.

    Args:
      logits: float32 [R, Nz] (Nz divisible by `size`).
      sign: +1 or -1.
      size: Block length (1: every item is its own block).

    Returns:
      (float32 [R, Nz / size] log block sums, float32 [R] logsumexp of the row).
    """
    if size == 1:
        signed = sign * logits
        return signed, tf.reduce_logsumexp(signed, axis=-1)
    # Shift by the row max of sign * logits; a block whose sum underflows (all terms < 1e-38 of
    # the largest) gets probability 0, as it would in an exp of the single items.
    if sign > 0:
        shift = tf.reduce_max(logits, axis=-1, keepdims=True)
        scaled = tf.exp(logits - shift)
    else:
        shift = -tf.reduce_min(logits, axis=-1, keepdims=True)
        scaled = tf.exp(-shift - logits)
    rows = tf.shape(logits)[0]
    sums = tf.reduce_sum(tf.reshape(scaled, [rows, -1, size]), axis=-1)
    log_sums = tf.math.log(sums) + shift
    return log_sums, tf.reduce_logsumexp(log_sums, axis=-1)


# With the shift at the middle of a row's range, exp(±(x - mid)) lies in [e^-80, e^80] when the
# row spans at most 160: neither the terms nor block sums of up to 4096 of them (< 2.3e38) under-
# or overflow in float32.
ONE_EXP_SPAN = 160.0
ONE_EXP_MAX_BLOCK = 4096


def _log_block_sums_both_signs(logits, size: int, abs_bound=None):
    """`_log_block_sums` of both signs, [(+1 log sums, lse), (-1 log sums, lse)].

    The exps and the passes over [B·N, Nz] are the cost here (two exps per item, 102 M at paper
    settings). When every row spans at most ONE_EXP_SPAN (always at initialisation), one exp per
    item serves both signs: exp(mid - x) = 1 / exp(x - mid). When `abs_bound` (a bound of |logits|,
    e.g. Cauchy-Schwarz on the projections of Eq 3) is at most half of it, mid = 0 needs neither
    the row max / min passes nor a subtraction. Otherwise each sign gets its own exp, as before.
    """
    if size == 1 or size > ONE_EXP_MAX_BLOCK:
        return [_log_block_sums(logits, sign, size) for sign in (1.0, -1.0)]
    rows = tf.shape(logits)[0]

    def one_exp(mid=None):
        scaled = tf.exp(logits if mid is None else logits - mid)
        out = []
        for terms, sign in ((scaled, 1.0), (tf.math.reciprocal(scaled), -1.0)):
            log_sums = tf.math.log(tf.reduce_sum(tf.reshape(terms, [rows, -1, size]), axis=-1))
            if mid is not None:
                log_sums += sign * mid
            out.append((log_sums, tf.reduce_logsumexp(log_sums, axis=-1)))
        return out

    def by_range():
        hi = tf.reduce_max(logits, axis=-1, keepdims=True)
        lo = tf.reduce_min(logits, axis=-1, keepdims=True)
        return tf.cond(
            tf.reduce_max(hi - lo) <= ONE_EXP_SPAN,
            lambda: one_exp(0.5 * (hi + lo)),
            lambda: [_log_block_sums(logits, sign, size) for sign in (1.0, -1.0)],
        )

    if abs_bound is None:
        return by_range()
    return tf.cond(abs_bound <= ONE_EXP_SPAN / 2, one_exp, by_range)


def _own_rows(shape) -> tf.Tensor:
    """int32 [B, N] row map of a full [B, N, Nz] beta: position (b, n) reads row b·N + n."""
    return tf.reshape(tf.range(tf.reduce_prod(shape)), shape)


def distinct_rows(ids) -> tuple[tf.Tensor, tf.Tensor]:
    """One row per distinct item of a batch's histories, for Eq 3 on the distinct items only.

    beta_tk = (v_t W1) . (z_k W2) depends on the item at t, not on t: positions holding the same
    item (the same user's rows of a Trainer batch, popular items, padding) share one row.

    Args:
      ids: int [B, N] history ids.

    Returns:
      (first int32 [R]: the flat position (b·N + n) of each distinct item's first occurrence,
       rows int32 [B, N]: the distinct item (row of `first`) at every position).
    """
    flat = tf.reshape(ids, [-1])
    distinct, rows = tf.unique(flat, out_idx=tf.int32)
    first = tf.math.unsorted_segment_min(
        tf.range(tf.size(flat, out_type=tf.int32)), rows, tf.size(distinct, out_type=tf.int32)
    )
    return first, tf.reshape(rows, tf.shape(ids))


def draw_substitutes(
    beta, hard_weight, num_columns: int, abs_bound=None, rows=None
) -> SubstituteDraws:
    """First stage of the substitute draws of one batch, and the hardness normalisers.

    Hand-written two-stage sampling because tf.random.categorical runs a scalar double-precision
    exp over every logit (~4 ns each here) and the old path also gathered beta per replaced
    item. Here one vectorised exp pass over the rows of beta (`_log_block_sums_both_signs`) gives
    the block masses of both signs (hence a block per draw) and logsumexp_z(±beta) for Eq 4-5;
    `sample_substitutes` then draws the item within the block from its `block_size` logits, so
    p(z) = (S_block / Z) · (exp(±beta_z) / S_block) = softmax(±beta)_z exactly.

    Args:
      beta: [B, N, Nz] relatedness with a static Nz (gradient is stopped), or with `rows` its
        distinct rows [R, Nz].
      hard_weight: t, or None for the random strategy (only the normalisers are computed).
      num_columns: K, at least the total number of samples the draws serve (Np + Nn).
      abs_bound: Optional scalar bound of |beta| (saves passes, see
        `_log_block_sums_both_signs`).
      rows: Optional int [B, N] (`distinct_rows`): position (b, n) reads row rows[b, n] of
        `beta`. Each position still gets its own independent draws.

    Returns:
      SubstituteDraws.
    """
    beta = tf.stop_gradient(tf.convert_to_tensor(beta, tf.float32))
    expected_rank = 3 if rows is None else 2
    if beta.shape.rank != expected_rank or beta.shape[-1] is None:
        wanted = "[B, N, Nz]" if rows is None else "[R, Nz] (with rows)"
        raise ValueError(f"beta must be {wanted} with a static Nz, got shape {beta.shape}")
    num = int(beta.shape[-1])
    size = _block_size(num)
    flat = tf.reshape(beta, [-1, num])
    if rows is None:
        shape = tf.shape(beta)[:2]
        rows = _own_rows(shape)
        per_position = None
    else:
        rows = tf.cast(rows, tf.int32)
        shape = tf.shape(rows)
        per_position = tf.reshape(rows, [-1])
    out = {"block_size": size}
    sums = _log_block_sums_both_signs(flat, size, abs_bound)
    for name, (log_sums, lse) in zip(("related", "unrelated"), sums, strict=True):
        if per_position is not None:
            log_sums, lse = tf.gather(log_sums, per_position), tf.gather(lse, per_position)
        out[name] = None
        if hard_weight is not None:
            blocks = tf.random.categorical(log_sums, num_columns, dtype=tf.int32)
            out[name] = tf.reshape(blocks, [shape[0], shape[1], num_columns])
        out[f"log_norm_{name}"] = tf.reshape(lse, shape)
    return SubstituteDraws(beta=flat, rows=rows, **out)


def sample_substitutes(beta, positions, hard_weight, draws=None, column_offset: int = 0):
    """Draws one substitute (an index into Nz) per replaced position.

    The mixture (1 - t)·softmax(-beta) + t·softmax(beta) is sampled exactly by picking the
    "related" component with probability t, which avoids materialising both softmaxes.

    With `draws` (from `draw_substitutes`), replaced position p of sample s takes column
    `column_offset + s` of the chosen component's draws at p. Positions within one sample are
    distinct (drawn without replacement), so every replaced item reads its own independent draw:
    the distribution is the same as drawing each one afresh, and calls with disjoint column
    ranges (positives, negatives) stay independent.

    Args:
      beta: [B, N, Nz] relatedness (gradient is stopped); unused when `draws` is given.
      positions: int32 [B, S, Nr], distinct within each [b, s].
      hard_weight: t, or None for uniform sampling.
      draws: Optional SubstituteDraws with at least column_offset + S columns.
      column_offset: First column of `draws` this call uses.

    Returns:
      int32 [B, S, Nr] indices into the Nz axis.
    """
    shape = tf.shape(positions)
    num_sub = tf.shape(draws.beta if draws is not None else beta)[-1]
    if hard_weight is None:
        return tf.random.uniform(shape, maxval=num_sub, dtype=tf.int32)
    related = tf.random.uniform(shape) < tf.cast(hard_weight, tf.float32)
    if draws is not None:
        positions = tf.cast(positions, tf.int32)
        num_columns = draws.related.shape[-1]
        if num_columns is not None and positions.shape[1] is not None:
            if column_offset + positions.shape[1] > num_columns:
                raise ValueError(
                    f"draws have {num_columns} columns; samples {column_offset}.."
                    f"{column_offset + positions.shape[1] - 1} need more"
                )
        rows = tf.broadcast_to(tf.range(shape[0])[:, None, None], shape)
        cols = tf.broadcast_to(column_offset + tf.range(shape[1])[None, :, None], shape)
        index = tf.stack([rows, positions, cols], axis=-1)
        block = tf.where(
            related, tf.gather_nd(draws.related, index), tf.gather_nd(draws.unrelated, index)
        )
        size = draws.block_size
        if size == 1:
            return block
        # Second stage: the item within the block, from its own ±beta logits.
        row_of = tf.reshape(
            tf.gather(draws.rows, tf.reshape(positions, [shape[0], -1]), batch_dims=1), shape
        )
        # Row (row_of, block) of beta viewed as [R·Nz / size, size]: the block's logits.
        members = row_of * (num_sub // size) + block  # [B, S, Nr]
        inner = tf.gather(tf.reshape(draws.beta, [-1, size]), tf.reshape(members, [-1]))
        inner *= tf.reshape(tf.where(related, 1.0, -1.0), [-1, 1])
        offset = tf.random.categorical(inner, 1, dtype=tf.int32)
        return block * size + tf.reshape(offset, shape)
    beta = tf.stop_gradient(beta)
    flat_pos = tf.reshape(positions, [shape[0], -1])
    logits = tf.gather(beta, flat_pos, batch_dims=1)  # [B, S*Nr, Nz]
    sign = tf.where(tf.reshape(related, tf.shape(flat_pos)), 1.0, -1.0)[..., None]
    draws = tf.random.categorical(tf.reshape(sign * logits, [-1, num_sub]), 1, dtype=tf.int32)
    return tf.reshape(draws, shape)


def sample_substitute_ids(vocab_size: int, num_substitutes: int) -> tf.Tensor:
    """Nz distinct real video indices (1..vocab_size) drawn uniformly, shared by a batch.

    Uses tf.random.uniform_candidate_sampler (unique=True) so the cost is O(Nz), not O(vocab).
    Padding (0) and OOV buckets are never drawn.

    Args:
      vocab_size: Number of real videos.
      num_substitutes: Nz; all videos are used when Nz >= vocab_size.

    Returns:
      int64 [min(Nz, vocab_size)].
    """
    if num_substitutes >= vocab_size:
        return tf.range(1, vocab_size + 1, dtype=tf.int64)
    sampled, _, _ = tf.random.uniform_candidate_sampler(
        true_classes=tf.zeros([1, 1], tf.int64),
        num_true=1,
        num_sampled=num_substitutes,
        unique=True,
        range_max=vocab_size,
    )
    return sampled + 1


def replacement_index(positions, substitutes, valid, length) -> tf.Tensor:
    """Where every item of the augmented sequences comes from, int32 [B, S, N].

    n for a kept item n of the history, `length` + k for an item replaced by substitute k.

    Args:
      positions: int32 [B, S, Nr] replaced positions, distinct within each [b, s].
      substitutes: int32 [B, S, Nr] indices into Nz.
      valid: bool [B, S, Nr].
      length: N.
    """
    positions = tf.cast(positions, tf.int32)
    shape = tf.shape(positions)
    rows = tf.broadcast_to(tf.range(shape[0])[:, None, None], shape)
    cols = tf.broadcast_to(tf.range(shape[1])[None, :, None], shape)
    # Positions are distinct within a sample, so each item gets at most one (summed) update.
    shift = tf.where(valid, length + tf.cast(substitutes, tf.int32) - positions, 0)
    kept = tf.broadcast_to(tf.range(length)[None, None, :], [shape[0], shape[1], length])
    return kept + tf.scatter_nd(
        tf.stack([rows, cols, positions], axis=-1), shift, [shape[0], shape[1], length]
    )


def replace_rows(rows, substitute_rows, index) -> tf.Tensor:
    """Per-item rows of the augmented sequences by a gather (no one-hot product).

    Works for any per-item quantity: the representations themselves or their projections
    (x W1, x W2), which is how the augmented encoders reuse the original history's projections
    and project only the Nz substitutes (exact: a kept item's row is the original row).

    Args:
      rows: [B, N, c] rows of the original histories.
      substitute_rows: [Nz, c] rows of the substitutes.
      index: int32 [B, S, N] from `replacement_index`.

    Returns:
      [B, S, N, c].
    """
    shape = tf.shape(rows)
    flat = tf.reshape(rows, [-1, shape[-1]])
    batch_offset = (tf.range(shape[0]) * shape[1])[:, None, None]
    # Kept items index the flattened history rows, replaced ones the rows after them.
    flat_index = tf.where(
        index < shape[1], index + batch_offset, index - shape[1] + shape[0] * shape[1]
    )
    return tf.gather(tf.concat([flat, substitute_rows], axis=0), flat_index)


def apply_replacement(seq, substitute_embeddings, positions, substitutes, valid):
    """Builds the augmented sequences in representation space.

    Args:
      seq: [B, N, d].
      substitute_embeddings: [Nz, d].
      positions: int32 [B, S, Nr] replaced positions, distinct within each [b, s].
      substitutes: int32 [B, S, Nr] indices into Nz.
      valid: bool [B, S, Nr].

    Returns:
      [B, S, N, d] augmented sequences (the mask is unchanged: only real items are replaced).
    """
    index = replacement_index(positions, substitutes, valid, tf.shape(seq)[1])
    return replace_rows(seq, substitute_embeddings, index)


@dataclasses.dataclass
class AugmentedSamples:
    """Output of `augment` for S samples per row."""

    positions: tf.Tensor  # int32 [B, S, Nr]
    substitutes: tf.Tensor  # int32 [B, S, Nr], indices into Nz
    valid: tf.Tensor  # bool [B, S, Nr]
    hardness: tf.Tensor  # [B, S]: Eq 5 for positives, Eq 4 for negatives
    difficulty: tf.Tensor  # [B, S]: Eq 4 score of the replacements (same as hardness for negatives)
    row_valid: tf.Tensor  # bool [B]: the row was augmented
    index: tf.Tensor  # int32 [B, S, N]: `replacement_index`
    original: tf.Tensor  # [B, N, d] the histories
    substitute_embeddings: tf.Tensor  # [Nz, d]

    @property
    def sequences(self) -> tf.Tensor:
        """[B, S, N, d] augmented sequences, built on demand: training gathers the projections
        of their items with `index` instead (CCL4RecModel._encode_samples)."""
        return replace_rows(self.original, self.substitute_embeddings, self.index)


def augment(
    seq,
    mask,
    alpha_t,
    *,
    substitute_embeddings,
    draws: SubstituteDraws,
    num_samples: int,
    positive: bool,
    hard_weight,
    config,
    column_offset: int = 0,
) -> AugmentedSamples:
    """Draws S augmented samples per row and scores their hardness.

    Args:
      seq: [B, N, d] original histories.
      mask: [B, N] bool.
      alpha_t: [B, N] importance of the original history.
      substitute_embeddings: [Nz, d].
      draws: `draw_substitutes(beta, hard_weight, columns)` for the relatedness beta of the
        substitutes; its columns column_offset..column_offset + S - 1 are used, so one
        call serves positives and negatives.
      num_samples: S.
      positive: Build positives (True) or negatives (False).
      hard_weight: t from `strategy_hard_weight` (None = random).
      config: Object with filter_fraction, replace_fraction, min_augment_history.
      column_offset: See `draws`.

    Returns:
      AugmentedSamples.
    """
    positions, valid, n_rep = sample_positions(
        alpha_t, mask, num_samples, positive, hard_weight, config
    )
    substitutes = sample_substitutes(draws.beta, positions, hard_weight, draws, column_offset)

    def score(sign_positive):
        return hardness(
            alpha_t, draws.beta, positions, substitutes, mask, sign_positive, valid,
            draws.log_norm(sign_positive), draws.rows,
        )  # fmt: skip

    hardness_score = score(positive)
    difficulty = score(False) if positive else hardness_score
    return AugmentedSamples(
        positions=positions,
        substitutes=substitutes,
        valid=valid,
        hardness=hardness_score,
        difficulty=difficulty,
        row_valid=n_rep > 0,
        index=replacement_index(positions, substitutes, valid, tf.shape(mask)[1]),
        original=seq,
        substitute_embeddings=substitute_embeddings,
    )
