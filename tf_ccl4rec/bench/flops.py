"""Analytic FLOP counts of one training step and one inference batch (CCL4Rec, ATRank, LSTM).

Only matrix products are counted (2 FLOPs per multiply-add: 2·m·k·n for [m, k] @ [k, n]), the
work a matmul peak bounds; softmaxes, masks, norms, exps and other elementwise ops are left out
(they are memory-bound, and TF's own counter prices them differently per op). The backward pass
of a product costs two products of the same size (input and weight gradients), so a training
step is 3x the forward FLOPs of everything that gets gradients, plus 1x the forward FLOPs under
tf.stop_gradient (CCL4Rec's relatedness of Eq 3, used only for sampling and hardness).
tests/bench/test_bench_flops.py checks the CCL4Rec forward formulas against TensorFlow's
profiler count of the traced graph, so they cannot drift from the code silently.

Notation: B batch, N history length, d embedding size, u units (W1..W4 width, = d by default),
Nz substitutes, Np / Nn augmented positives / negatives, (m1, m2, ...) the CTR MLP's hidden
sizes, F content-feature width.
"""

from __future__ import annotations

import dataclasses


def matmul(m: int, k: int, n: int) -> int:
    """FLOPs of an [m, k] @ [k, n] product."""
    return 2 * m * k * n


def mlp(inputs: int, hidden, outputs: int = 1) -> int:
    """FLOPs of a dense stack inputs -> hidden... -> outputs for one row."""
    sizes = [inputs, *hidden, outputs]
    return sum(matmul(1, a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def ccl4rec_pooling(n: int, d: int, u: int) -> int:
    """Eq 1 and Eq 6-7 of one sequence whose projections v W1, v W2 are given (per row).

    alpha_ij = (v W1)(v W2)^T (Eq 1): 2·N·u·N; the item weights c = w A (layers/encoder.py,
    `item_weights`): 2·N·N; the pooled items c v: 2·N·d; u = (c v) W3: 2·d·u. Eq 2's row sums and
    the softmaxes are elementwise.
    """
    return matmul(n, u, n) + matmul(1, n, n) + matmul(1, n, d) + matmul(1, d, u)


def ccl4rec_encoder(n: int, d: int, u: int) -> int:
    """The original sequence through Eq 1-2 and Eq 6-7 as written (per row; layers/encoder.py).

    W1, W2 (Eq 1) and W3 (Eq 6) projections: 3 · 2·N·d·u; alpha_ij = (v W1)(v W2)^T (Eq 1):
    2·N·u·N; Eq 6's softmax-weighted sum of the projected items: 2·N·N·u. Eq 2's row sums and
    Eq 7's weighted sum are elementwise.
    """
    return 3 * matmul(n, d, u) + matmul(n, u, n) + matmul(n, n, u)


def ccl4rec_ctr(d: int, u: int, mlp_units) -> int:
    """Eq 13 for one (user, item) pair: v W4 (2·d·u) and the MLP on [u, vW4, u*vW4] (3u wide)."""
    return matmul(1, d, u) + mlp(3 * u, mlp_units)


@dataclasses.dataclass
class FlopCount:
    """FLOPs of one batch: per term, split into parts with and without gradients."""

    terms: dict  # name -> (forward FLOPs, has_gradient)

    @property
    def forward(self) -> int:
        return sum(f for f, _ in self.terms.values())

    @property
    def train_step(self) -> int:
        """Forward + backward (2x forward) for the terms with gradients."""
        return sum(3 * f if grad else f for f, grad in self.terms.values())

    def to_dict(self) -> dict:
        return {
            "forward": self.forward,
            "train_step": self.train_step,
            "terms": {k: {"forward": f, "gradient": g} for k, (f, g) in self.terms.items()},
        }


def ccl4rec(
    config, batch_size: int, training: bool = True, relatedness_rows: float | None = None
) -> FlopCount:
    """CCL4RecModel.compute_loss (training) or CCL4RecModel.call (inference) on one batch.

    Args:
      config: CCL4RecConfig.
      batch_size: B.
      training: Count the training step (augmentation and all enabled terms) or inference.
      relatedness_rows: Rows of Eq 3: the distinct items of the batch's click histories
        (aug.distinct_rows; padding counts as one); None counts every position, B · N.

    Returns:
      FlopCount.
    """
    if config.use_nonclick_sequence or config.num_interest_vectors:
        raise ValueError("flops.ccl4rec: the non-click sequence / interest vectors are not counted")
    b, n, d, u = batch_size, config.max_history, config.embedding_dim, config.effective_units
    ctr = ccl4rec_ctr(d, u, config.mlp_units)
    terms = {
        "encode_original (Eq 1-2, 6-7)": (b * ccl4rec_encoder(n, d, u), True),
        "ctr_original (Eq 13)": (b * ctr, True),
    }
    looked_up = b * (n + 1)  # history + target
    augment = training and config.needs_augmentation
    nz = config.effective_num_substitutes
    if augment:
        looked_up += nz
    if config.video_representation in ("content", "both"):
        # Dense F -> d on every looked-up video (history, target, substitutes).
        terms["content_projection"] = (looked_up * matmul(1, config.content_feature_dim, d), True)
    if not augment:
        return FlopCount(terms)
    samples = 0
    need_pos = config.use_ccl or config.use_ccl_pos or config.use_ce_pos
    need_neg = config.use_ccl or config.use_ccl_neg or config.use_ce_neg
    samples = config.num_positives * need_pos + config.num_negatives * need_neg
    # z W1 and z W2 once per batch: the substitutes' rows of the augmented sequences (their kept
    # items reuse the original's v W1, v W2) and the right side of Eq 3.
    terms["substitute_projections (W1, W2)"] = (2 * matmul(nz, d, u), True)
    # Eq 3 under stop_gradient from those projections: [R, u] @ [u, Nz], one row per distinct
    # history item.
    rows = b * n if relatedness_rows is None else relatedness_rows
    terms["relatedness (Eq 3, no gradient)"] = (round(rows * matmul(1, u, nz)), False)
    terms["encode_augmented (Np + Nn sequences)"] = (b * samples * ccl4rec_pooling(n, d, u), True)
    scored = config.num_positives * config.use_ce_pos + config.num_negatives * config.use_ce_neg
    if scored:
        terms["ctr_augmented (L_ce+, L_ce-)"] = (b * scored * ctr, True)
    return FlopCount(terms)


def atrank(config, batch_size: int) -> FlopCount:
    """ATRankModel forward on one batch (one target per row), per term.

    Self-attention: Q, K, V and output projections 4 · 2·N·d·d, scores 2·N·d·N and weighted
    values 2·N·N·d (summed over heads, head size d/h); feed-forward d -> 2d -> d: 2 · 2·N·d·2d;
    target attention with one query: Q and output projections 2 · 2·d·d, K and V over the
    history 2 · 2·N·d·d, scores and values 2 · 2·N·d; MLP on [attended, v, attended*v] (3d).

    Args:
      config: An object with embedding_dim, max_history and mlp_units (BaselineConfig).
      batch_size: B.
    """
    b, n, d = batch_size, config.max_history, config.embedding_dim
    return FlopCount(
        {
            "self_attention": (
                b * (4 * matmul(n, d, d) + matmul(n, d, n) + matmul(n, n, d)),
                True,
            ),
            "feed_forward": (b * (matmul(n, d, 2 * d) + matmul(n, 2 * d, d)), True),
            "target_attention": (
                b * (2 * matmul(1, d, d) + 2 * matmul(n, d, d) + 2 * matmul(1, d, n)),
                True,
            ),
            "mlp": (b * mlp(3 * d, config.mlp_units), True),
        }
    )


def lstm(config, batch_size: int) -> FlopCount:
    """LSTMModel forward on one batch: N steps of the 4 gates ([x, h] (d + h wide) -> 4h, h = d)
    and the MLP on [h, v, h*v] (3d).

    Args:
      config: An object with embedding_dim, max_history and mlp_units (BaselineConfig).
      batch_size: B.
    """
    b, n, d = batch_size, config.max_history, config.embedding_dim
    return FlopCount(
        {
            "lstm": (b * n * matmul(1, 2 * d, 4 * d), True),
            "mlp": (b * mlp(3 * d, config.mlp_units), True),
        }
    )


def for_model(
    model_type: str, config, batch_size: int, training: bool, relatedness_rows=None
) -> FlopCount:
    """The FlopCount of a benchmarked model type ("ccl4rec", "atrank" or "lstm");
    `relatedness_rows` as in `ccl4rec`."""
    if model_type == "ccl4rec":
        return ccl4rec(config, batch_size, training, relatedness_rows)
    if model_type == "atrank":
        return atrank(config, batch_size)
    if model_type == "lstm":
        return lstm(config, batch_size)
    raise ValueError(f"no FLOP formula for model type {model_type!r}")
