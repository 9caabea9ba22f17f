"""Behavior importance and substitute relatedness scoring (Eq 1-3)."""

from __future__ import annotations

import tensorflow as tf

# Finite stand-in for -inf: keeps exp() and its gradient NaN-free for fully masked rows.
MASKED_LOGIT = -1e9


def masked_softmax(logits: tf.Tensor, mask: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """Softmax over the positions where `mask` is True only.

    Hand-written because tf.nn.softmax has no mask and Keras' Softmax(mask) gives uniform
    weights (not zeros) to fully masked rows.

    Args:
      logits: Float tensor.
      mask: Bool tensor broadcastable to `logits`; True for real items.
      axis: Axis to normalise over.

    Returns:
      Weights of `logits`' shape: 0 on masked positions, summing to 1 over real positions, and
      all 0 (not NaN) where a row has no real position.
    """
    mask = tf.broadcast_to(mask, tf.shape(logits))
    logits = tf.where(mask, logits, tf.cast(MASKED_LOGIT, logits.dtype))
    logits = logits - tf.stop_gradient(tf.reduce_max(logits, axis=axis, keepdims=True))
    weights = tf.exp(logits) * tf.cast(mask, logits.dtype)
    total = tf.reduce_sum(weights, axis=axis, keepdims=True)
    return weights / tf.where(total > 0, total, tf.ones_like(total))


def masked_log_softmax(logits: tf.Tensor, mask: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """log of `masked_softmax`, finite everywhere (masked positions get a large negative value).

    Args:
      logits: Float tensor.
      mask: Bool tensor broadcastable to `logits`.
      axis: Axis to normalise over.

    Returns:
      Log-weights of `logits`' shape.
    """
    mask = tf.broadcast_to(mask, tf.shape(logits))
    logits = tf.where(mask, logits, tf.cast(MASKED_LOGIT, logits.dtype))
    return tf.nn.log_softmax(logits, axis=axis)


def pairwise_scores(left: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """Eq 1 on projections: [..., N, u] (v W1) and [..., N, u] (v W2) -> [..., N, N]."""
    return tf.matmul(left, right, transpose_b=True)


def importance(alpha_ij: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """alpha_t = sum over real j of alpha_tj (Eq 2).

    Args:
      alpha_ij: [..., N, N] from `pairwise_scores`.
      mask: [..., N] bool, True for real items.

    Returns:
      [..., N] importance; 0 on padded positions.
    """
    m = tf.cast(mask, alpha_ij.dtype)
    return tf.reduce_sum(alpha_ij * m[..., None, :], axis=-1) * m


def relatedness_scores(left: tf.Tensor, right: tf.Tensor) -> tf.Tensor:
    """Eq 3 on projections: [..., u] (v W1, e.g. [B, N, u]) and [Nz, u] (z W2) -> [..., Nz]."""
    # One 2-D matmul: TF runs this einsum as a slower batched matmul (~2x on CPU, measured).
    shape = tf.shape(left)
    flat = tf.matmul(tf.reshape(left, [-1, shape[-1]]), right, transpose_b=True)
    num = right.shape[0] if right.shape[0] is not None else tf.shape(flat)[1]
    # Keeps a static Nz for sampling.
    return tf.reshape(flat, tf.concat([shape[:-1], [num]], axis=0))


class BehaviorScorer(tf.keras.layers.Layer):
    """Bilinear relevance scores shared by importance (Eq 1-2) and relatedness (Eq 3).

    Holds W1 and W2 (no bias); f(x, y) = (x W1) . (y W2).

    Args:
      units: Output size of W1 and W2.
      kernel_regularizer: Optional regularizer for W1/W2.
    """

    def __init__(self, units: int, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self._w1 = tf.keras.layers.Dense(
            self.units, use_bias=False, kernel_regularizer=kernel_regularizer, name="W1"
        )
        self._w2 = tf.keras.layers.Dense(
            self.units, use_bias=False, kernel_regularizer=kernel_regularizer, name="W2"
        )

    @property
    def w1(self) -> tf.Variable:
        return self._w1.kernel

    @property
    def w2(self) -> tf.Variable:
        return self._w2.kernel

    def project(self, seq: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(x W1, x W2): both sides of f for every item of `seq` [..., d].

        Computed once per sequence: Eq 1 of the sequence, Eq 3 (its left side) and the augmented
        copies of the sequence (their kept items) all read these.
        """
        return self._w1(seq), self._w2(seq)

    def pairwise(self, seq: tf.Tensor) -> tf.Tensor:
        """alpha_ij = (v_i W1) . (v_j W2) (Eq 1).

        Args:
          seq: [B, N, d] item representations.

        Returns:
          [B, N, N] relevance of item i (row) to item j (column); padding is not masked here.
        """
        return pairwise_scores(*self.project(seq))

    def importance(self, alpha_ij: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """alpha_t (Eq 2), see `importance`."""
        return importance(alpha_ij, mask)

    def relatedness(self, seq: tf.Tensor, substitutes: tf.Tensor) -> tf.Tensor:
        """beta_tk = (v_t W1) . (z_k W2) (Eq 3).

        Args:
          seq: [B, N, d] behavior representations.
          substitutes: [Nz, d] substitute representations shared by the batch.

        Returns:
          [B, N, Nz] relatedness of substitute k to behavior t.
        """
        return relatedness_scores(self._w1(seq), self._w2(substitutes))

    def scores(self, left: tf.Tensor, right: tf.Tensor, mask: tf.Tensor):
        """(alpha_ij, alpha_t) (Eq 1-2) from the projections `project` returns."""
        alpha_ij = pairwise_scores(left, right)
        return alpha_ij, importance(alpha_ij, mask)

    def call(self, seq: tf.Tensor, mask: tf.Tensor, with_projections: bool = False):
        """Returns (alpha_ij [B,N,N], alpha_t [B,N]) for `seq` [B,N,d] and `mask` [B,N], and
        with `with_projections` also `project(seq)`."""
        projections = self.project(seq)
        alpha_ij, alpha_t = self.scores(*projections, mask)
        return (alpha_ij, alpha_t, projections) if with_projections else (alpha_ij, alpha_t)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
