"""Shared parts of the baseline models: their config and the sequence-model base class.

Every baseline has CCL4RecModel's input contract (`tf_ccl4rec.features` MODEL_* names): it reads
`MODEL_CLICK_HISTORY` int64 [B, N] (PAD_ID-padded), `MODEL_TARGET` [B] and, for the loss,
`MODEL_LABEL` [B]; other inputs (non-click history, user index) are ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig, layer_sizes
from tf_ccl4rec.distribution import ReplicaScaledTrainStep, per_replica
from tf_ccl4rec.tracing import VariablesBeforeTracing


@dataclasses.dataclass
class BaselineConfig:
    """Hyper-parameters shared by the baselines (a subset of CCL4RecConfig's names).

    Attributes:
      vocab_size / num_oov_buckets: As in CCL4RecConfig; the tables have
        `1 + vocab_size + num_oov_buckets` rows (row 0 = PAD_ID).
      embedding_dim: Video embedding size.
      max_history: N, the padded history length (ATRank's positional table size).
      learning_rate: Adam learning rate (used by `build_model`'s compile).
      mlp_units: Hidden layer sizes of the scoring MLPs.
      l2: L2 rate on the dense kernels.
      seed: Seed for the initialisers.
    """

    vocab_size: int = 1000
    num_oov_buckets: int = 1
    embedding_dim: int = 32
    max_history: int = F.DEFAULT_MAX_HISTORY
    learning_rate: float = 0.003
    mlp_units: tuple[int, ...] = (64, 32)
    l2: float = 0.0
    seed: int = 0

    def __post_init__(self):
        self.mlp_units = layer_sizes(self.mlp_units)
        problems = []
        if self.vocab_size < 1:
            problems.append(f"vocab_size must be >= 1, got {self.vocab_size}")
        if self.num_oov_buckets < 0:
            problems.append("num_oov_buckets must be >= 0")
        if self.embedding_dim < 1 or self.max_history < 1:
            problems.append("embedding_dim and max_history must be >= 1")
        if self.learning_rate <= 0:
            problems.append("learning_rate must be > 0")
        if any(u < 1 for u in self.mlp_units):
            problems.append("mlp_units must be positive")
        if problems:
            raise ValueError("BaselineConfig: " + "; ".join(problems))

    @property
    def num_embeddings(self) -> int:
        return 1 + self.vocab_size + self.num_oov_buckets

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> BaselineConfig:
        """Reads the shared keys; CCL4Rec-only keys are ignored, keys known to neither raise."""
        values = dict(values or {})
        own = {f.name for f in dataclasses.fields(cls)}
        ccl = CCL4RecConfig.field_names()
        unknown = sorted(set(values) - own - ccl)
        if unknown:
            raise ValueError(f"BaselineConfig: unknown keys {unknown}; known: {sorted(own | ccl)}")
        return cls(**{k: v for k, v in values.items() if k in own})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mlp_units"] = list(self.mlp_units)
        return out


def mlp(units, l2: float, name: str) -> tf.keras.Sequential:
    """ReLU hidden layers and a 1-unit logit layer."""
    reg = tf.keras.regularizers.L2(l2) if l2 > 0 else None
    layers = [
        tf.keras.layers.Dense(n, activation="relu", kernel_regularizer=reg, name=f"{name}_{i}")
        for i, n in enumerate(units)
    ]
    layers.append(tf.keras.layers.Dense(1, kernel_regularizer=reg, name=f"{name}_logit"))
    return tf.keras.Sequential(layers, name=name)


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean over axis 1 of values [B, N, d] where mask [B, N]; zeros for an empty row."""
    weights = tf.cast(mask, values.dtype)[..., None]
    total = tf.reduce_sum(values * weights, axis=1)
    return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)


# `do_not_convert` on the Keras entry points: traced without AutoGraph, as CCL4RecModel (model.py).
class BaselineModel(VariablesBeforeTracing, ReplicaScaledTrainStep, tfrs.models.Model):
    """Base of the sequence baselines: `call`, `score_candidates`, `user_embedding`, the loss.

    Subclasses implement `_encode_history(history_emb, mask, training)` -> state (any nest of
    [B, ...] tensors), `_user_vector(state)` -> [B, h] and `_candidate_logits(state, items)` with
    items [B, C, d] -> logits [B, C]. `call` is `score_candidates` on the target, so both agree
    by construction. The default loss is the binary cross-entropy of the click label.

    Args:
      config: BaselineConfig (or its dict).
    """

    model_type = "baseline"
    loss_name = "ce"  # the tracked metric is "<loss_name>_loss", as CCL4Rec's per-term losses

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(config, BaselineConfig):
            config = BaselineConfig.from_dict(config)
        self._baseline_config = config
        self.video_embedding = tf.keras.layers.Embedding(
            config.num_embeddings, config.embedding_dim, name="video_embedding"
        )
        self.loss_tracker = tf.keras.metrics.Mean(name=f"{self.loss_name}_loss")
        self.auc = tf.keras.metrics.AUC(name="auc")

    @property
    def config(self) -> BaselineConfig:
        return self._baseline_config

    # --- public API ---------------------------------------------------------------------------
    @tf.autograph.experimental.do_not_convert
    def call(self, features, training=False):
        """Click probability [B] of the target video.

        Args:
          features: Dict with `MODEL_CLICK_HISTORY` int64 [B, N] and `MODEL_TARGET` [B].
          training: Passed to dropout-free layers; unused.

        Returns:
          float32 [B].
        """
        target = self._ids(features, F.MODEL_TARGET, rank=1)
        return tf.sigmoid(self._logits(features, target[:, None], training))[:, 0]

    def user_embedding(self, features) -> tf.Tensor:
        """Target-independent user vector of the click history.

        Args:
          features: Dict with `MODEL_CLICK_HISTORY` int64 [B, N].

        Returns:
          float32 [B, h].
        """
        return self._user_vector(self._state(features, training=False))

    def score_candidates(self, features, candidate_indices) -> tf.Tensor:
        """Click probabilities of C candidates per user.

        Args:
          features: Dict with `MODEL_CLICK_HISTORY` int64 [B, N].
          candidate_indices: int [B, C] video indices.

        Returns:
          float32 [B, C].
        """
        candidate_indices = tf.convert_to_tensor(candidate_indices)
        if candidate_indices.shape.rank != 2:
            raise ValueError(
                f"candidate_indices must be [B, C], got shape {candidate_indices.shape}"
            )
        return tf.sigmoid(self._logits(features, tf.cast(candidate_indices, tf.int64), False))

    @tf.autograph.experimental.do_not_convert
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """Mean binary cross-entropy of the click label (BPR overrides this).

        Args:
          inputs: Feature dict including `MODEL_LABEL`.
          training: Passed to the layers.

        Returns:
          Scalar loss.
        """
        labels = self._labels(inputs)
        target = self._ids(inputs, F.MODEL_TARGET, rank=1)
        logits = self._logits(inputs, target[:, None], training)[:, 0]
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
        self._track(loss, labels, tf.sigmoid(logits))
        return per_replica(loss)

    def parameter_counts(self) -> dict[str, int]:
        """Same keys as CCL4RecModel.parameter_counts (embedding tables vs the rest)."""
        from tf_ccl4rec.model import split_parameter_counts

        self._build_if_needed()
        tables = [v for v in self.variables if "embedding" in v.name and "position" not in v.name]
        return split_parameter_counts(tables, self.trainable_variables)

    def get_config(self):
        return {"config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(BaselineConfig.from_dict(config["config"]))

    # --- for subclasses -----------------------------------------------------------------------
    def _encode_history(self, history_emb, mask, training):
        raise NotImplementedError

    def _user_vector(self, state):
        raise NotImplementedError

    def _candidate_logits(self, state, items, training):
        raise NotImplementedError

    # --- internals ----------------------------------------------------------------------------
    @staticmethod
    def _ids(features, name, rank):
        if name not in features:
            raise KeyError(f"baseline model: missing input feature {name!r}")
        ids = tf.cast(features[name], tf.int64)
        if rank == 1:
            return tf.reshape(ids, [-1])
        if ids.shape.rank is not None and ids.shape.rank != 2:
            raise ValueError(f"feature {name!r} must be [B, N], got shape {ids.shape}")
        return ids

    @staticmethod
    def _labels(inputs):
        if F.MODEL_LABEL not in inputs:
            raise KeyError(f"compute_loss needs the label feature {F.MODEL_LABEL!r}")
        return tf.reshape(tf.cast(inputs[F.MODEL_LABEL], tf.float32), [-1])

    def _state(self, features, training):
        history = self._ids(features, F.MODEL_CLICK_HISTORY, rank=2)
        mask = tf.not_equal(history, F.PAD_ID)
        emb = self.video_embedding(history) * tf.cast(mask, tf.float32)[..., None]
        return self._encode_history(emb, mask, training)

    def _logits(self, features, candidates, training):
        state = self._state(features, training)
        return self._candidate_logits(state, self.video_embedding(candidates), training)

    def _track(self, loss, labels, probs):
        self.loss_tracker.update_state(loss)
        self.auc.update_state(labels, probs)

    def _build_if_needed(self):
        if not self.built or not self.variables:
            n = min(2, self.config.max_history)
            self(
                {
                    F.MODEL_CLICK_HISTORY: tf.ones([1, n], tf.int64),
                    F.MODEL_NONCLICK_HISTORY: tf.ones([1, n], tf.int64),  # user_item_rate reads it
                    F.MODEL_TARGET: tf.ones([1], tf.int64),
                }
            )
