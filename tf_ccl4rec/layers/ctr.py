"""The click-through-rate head of Eq 13."""

from __future__ import annotations

import tensorflow as tf


class CTRHead(tf.keras.layers.Layer):
    """logit = MLP([u, v W4, u * v W4]) (Eq 13); apply a sigmoid to get ŷ.

    Args:
      units: Output size of W4; must equal the user vector size.
      mlp_units: Hidden layer sizes (ReLU) before the final 1-unit layer.
      kernel_regularizer: Optional regularizer for W4 and the MLP kernels.
      zero_output: Initialise the output layer's kernel at 0 (the head starts at logit 0).
    """

    def __init__(
        self,
        units: int,
        mlp_units=(200, 80),
        kernel_regularizer=None,
        zero_output: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.mlp_units = tuple(int(u) for u in mlp_units)
        self._w4 = tf.keras.layers.Dense(
            self.units, use_bias=False, kernel_regularizer=kernel_regularizer, name="W4"
        )
        self._hidden = [
            tf.keras.layers.Dense(
                n, activation="relu", kernel_regularizer=kernel_regularizer, name=f"mlp_{i}"
            )
            for i, n in enumerate(self.mlp_units)
        ]
        # zero_output: the head starts at logit 0, so a warm-started wide logit is the whole
        # prediction at the first step (the last layer still gets gradients).
        self._out = tf.keras.layers.Dense(
            1,
            kernel_initializer="zeros" if zero_output else "glorot_uniform",
            kernel_regularizer=kernel_regularizer,
            name="logit",
        )

    @property
    def w4(self) -> tf.Variable:
        return self._w4.kernel

    def call(self, user: tf.Tensor, item: tf.Tensor) -> tf.Tensor:
        """Scores (user, item) pairs.

        Args:
          user: [..., units] user vectors.
          item: [..., d] item representations, same leading shape as `user`.

        Returns:
          Logits of shape [...].
        """
        projected = self._w4(item)
        x = tf.concat([user, projected, user * projected], axis=-1)
        for layer in self._hidden:
            x = layer(x)
        return tf.squeeze(self._out(x), axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "mlp_units": list(self.mlp_units)}
