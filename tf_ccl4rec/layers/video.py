"""Video representations: trainable id embedding, projected frozen content features, or both."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class VideoRepresentation(tf.keras.layers.Layer):
    """Maps video indices (0 = padding) to d-dimensional vectors.

    Modes: "id" (trainable embedding), "content" (trainable Dense projection of a frozen content
    table aligned with the vocabulary), "both" (their sum). Padding (index 0) maps to 0 in every
    mode, so nothing of it reaches masked computations even by accident.

    Args:
      num_embeddings: Table rows (1 + vocab_size + num_oov_buckets).
      embedding_dim: d.
      mode: "id", "content" or "both".
      content_features: float32 [num_embeddings, F] numpy table (row 0 = padding); required for
        "content"/"both". Stored as a non-trainable variable (a graph constant would hit the 2 GB
        GraphDef limit on real catalogues).
      kernel_regularizer: Optional regularizer for the projection kernel.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        mode: str = "id",
        content_features: np.ndarray | None = None,
        kernel_regularizer=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in ("id", "content", "both"):
            raise ValueError(f"mode must be 'id', 'content' or 'both', got {mode!r}")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.mode = mode
        self.embedding = None
        self.content_table = None
        self.projection = None
        if mode in ("id", "both"):
            self.embedding = tf.keras.layers.Embedding(
                self.num_embeddings,
                self.embedding_dim,
                embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.05, seed=seed),
                name="video_embedding",
            )
        if mode in ("content", "both"):
            if content_features is None:
                raise ValueError(f"video representation {mode!r} needs content_features")
            table = np.asarray(content_features, dtype=np.float32)
            if table.ndim != 2 or table.shape[0] != self.num_embeddings:
                raise ValueError(
                    "content_features must be float32 [1 + vocab_size + num_oov_buckets, F] = "
                    f"[{self.num_embeddings}, F], got shape {table.shape}"
                )
            self.content_table = tf.Variable(table, trainable=False, name="content_table")
            self.projection = tf.keras.layers.Dense(
                self.embedding_dim, kernel_regularizer=kernel_regularizer, name="content_projection"
            )

    @property
    def embedding_variables(self) -> list[tf.Variable]:
        """Per-video tables (trainable id embedding and frozen content table)."""
        out = []
        if self.embedding is not None:
            if not self.embedding.built:
                self.embedding.build(None)
            out.append(self.embedding.embeddings)
        if self.content_table is not None:
            out.append(self.content_table)
        return out

    def call(self, indices: tf.Tensor) -> tf.Tensor:
        """Looks up videos.

        Args:
          indices: int tensor of any shape; 0 = padding.

        Returns:
          float32 tensor of shape indices.shape + [d]; zeros at padding.
        """
        indices = tf.cast(indices, tf.int32)
        out = None
        if self.embedding is not None:
            out = self.embedding(indices)
        if self.projection is not None:
            projected = self.projection(tf.gather(self.content_table, indices))
            out = projected if out is None else out + projected
        not_pad = tf.cast(tf.not_equal(indices, 0), out.dtype)[..., None]
        return out * not_pad

    def get_config(self):
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "mode": self.mode,
        }
