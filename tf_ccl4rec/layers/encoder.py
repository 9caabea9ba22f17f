"""The simplified sequence encoder of §3.4 (Eq 6-7)."""

from __future__ import annotations

import tensorflow as tf

from tf_ccl4rec.layers.scoring import masked_softmax


class SequenceEncoder(tf.keras.layers.Layer):
    """User vector from a behavior sequence; its only weight is W3 (no bias).

    Eq 6: v̂_t = Σ_i softmax_i(alpha_ti) · v_i W3; Eq 7: u = Σ_t softmax_t(alpha_t) · v̂_t; both
    softmaxes run over real items only, so an empty history gives u = 0 and a history of one item
    gives u = v_1 W3.

    Args:
      units: Output size of W3 (the user vector size).
      kernel_regularizer: Optional regularizer for W3.
    """

    def __init__(self, units: int, kernel_regularizer=None, scaled_scores: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.scaled_scores = bool(scaled_scores)
        self._w3 = tf.keras.layers.Dense(
            self.units, use_bias=False, kernel_regularizer=kernel_regularizer, name="W3"
        )

    @property
    def w3(self) -> tf.Variable:
        return self._w3.kernel

    def call(self, seq, alpha_ij, alpha_t, mask):
        """Encodes a sequence.

        Args:
          seq: [B, N, d] item representations.
          alpha_ij: [B, N, N] pairwise scores (Eq 1).
          alpha_t: [B, N] importance scores (Eq 2).
          mask: [B, N] bool, True for real items.

        Returns:
          u: [B, units].
        """
        projected = self._w3(seq)  # [B, N, units]
        if self.scaled_scores:
            # Not in the paper: alpha_ij grows with d and alpha_t with d * N, which saturates
            # both softmaxes (u collapses onto one item); dividing by sqrt(d) and by
            # sqrt(d) * n_real keeps them soft. The hardness (Eq 4-5) still uses raw scores.
            d = tf.cast(tf.shape(seq)[-1], alpha_ij.dtype)
            real = tf.reduce_sum(tf.cast(mask, alpha_ij.dtype), axis=-1, keepdims=True)
            alpha_ij = alpha_ij / tf.sqrt(d)
            alpha_t = alpha_t / (tf.sqrt(d) * tf.maximum(real, 1.0))
        row_weights = masked_softmax(alpha_ij, mask[:, None, :], axis=-1)  # over i, per t
        v_hat = tf.matmul(row_weights, projected)  # Eq 6: [B, N, units]
        weights = masked_softmax(alpha_t, mask, axis=-1)  # Eq 7
        return tf.reduce_sum(v_hat * weights[..., None], axis=1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scaled_scores": self.scaled_scores}
