"""The baseline models of the paper's Table 2: BPR, LSTM, CNN, NCF, ATRank-style, popularity.

Small re-implementations in our framework (same features, Trainer and export path), not the
original papers' code; sizes come from `BaselineConfig`.
"""

from __future__ import annotations

import tensorflow as tf

from tf_ccl4rec import features as F
from tf_ccl4rec.baselines.base import BaselineConfig, BaselineModel, masked_mean, mlp
from tf_ccl4rec.distribution import per_replica
from tf_ccl4rec.layers.wide import history_counts


def _interaction_features(user, items):
    """[u, v, u * v] for user [B, d] against items [B, C, d] -> [B, C, 3d]."""
    tiled = tf.broadcast_to(user[:, None, :], tf.shape(items))
    return tf.concat([tiled, items, tiled * items], axis=-1)


def _apply_mlp(head, x):
    """Applies a 1-output MLP to [B, C, k] -> [B, C]."""
    return tf.squeeze(head(x), axis=-1)


class BPRModel(BaselineModel):
    """Matrix factorisation with the BPR pairwise loss (Rendle et al., 2009).

    There are no user embeddings (users are not in the feature contract's vocabulary), so the
    user vector is the mean of the history embeddings; score = <u, v> + b_v. The loss ranks every
    clicked target above the other targets of the batch (in-batch negatives).
    """

    model_type = "bpr"
    loss_name = "bpr"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.item_bias = tf.keras.layers.Embedding(
            self.config.num_embeddings, 1, embeddings_initializer="zeros", name="item_bias"
        )

    def _encode_history(self, history_emb, mask, training):
        return masked_mean(history_emb, mask)

    def _user_vector(self, state):
        return state

    def _candidate_logits(self, state, items, training):
        raise NotImplementedError("BPR scores with _logits (needs the item bias)")

    def _logits(self, features, candidates, training):
        user = self._state(features, training)
        items = self.video_embedding(candidates)
        return tf.einsum("bd,bcd->bc", user, items) + self.item_bias(candidates)[..., 0]

    @tf.autograph.experimental.do_not_convert
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """BPR loss: -log sigmoid(s(u_i, pos_i) - s(u_i, t_j)) over clicked rows i, other rows j.

        Args:
          inputs: Feature dict including `MODEL_LABEL`.
          training: Unused.

        Returns:
          Scalar loss (0 for a batch without a click).
        """
        labels = self._labels(inputs)
        targets = self._ids(inputs, F.MODEL_TARGET, rank=1)
        batch = tf.shape(targets)[0]
        # Every user of the batch against every target of the batch: [B, B].
        all_targets = tf.tile(targets[None, :], [batch, 1])
        scores = self._logits(inputs, all_targets, training)
        positive = tf.linalg.diag_part(scores)
        # A pair counts when row i was clicked and t_j is another video that i did not click.
        valid = (
            (labels[:, None] > 0.5)
            & tf.not_equal(targets[:, None], targets[None, :])
            & ~((labels[None, :] > 0.5) & tf.equal(targets[None, :], targets[:, None]))
        )
        valid_f = tf.cast(valid, tf.float32)
        pair_loss = tf.nn.softplus(-(positive[:, None] - scores))  # -log sigmoid(diff)
        loss = tf.math.divide_no_nan(tf.reduce_sum(pair_loss * valid_f), tf.reduce_sum(valid_f))
        self._track(loss, labels, tf.sigmoid(positive))
        return per_replica(loss)


def lstm_layer(units: int, name: str) -> tf.keras.layers.Layer:
    """An LSTM over [B, N, d] returning the last state [B, units], masked steps skipped.

    Keras's `LSTM` traces two implementations of its step in graph mode (generic and cuDNN) and
    lets grappler pick one at run time; with no GPU visible only the generic one can run, so the
    generic RNN over the same `LSTMCell` (same weights and names, same maths) is built instead
    and traces once (tests/model/test_tracing.py's LSTM case 14.0 -> 7.0 s).
    """
    if tf.config.list_physical_devices("GPU"):
        return tf.keras.layers.LSTM(units, name=name)
    return tf.keras.layers.RNN(tf.keras.layers.LSTMCell(units, name="lstm_cell"), name=name)


class LSTMModel(BaselineModel):
    """LSTM over the click history; final hidden state + target embedding -> MLP."""

    model_type = "lstm"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.lstm = lstm_layer(self.config.embedding_dim, name="lstm")
        self.head = mlp(self.config.mlp_units, self.config.l2, "lstm_mlp")

    def _encode_history(self, history_emb, mask, training):
        # Keras keeps the previous state at masked steps, so right padding yields the state after
        # the last real item, and an empty history yields the zero initial state.
        return self.lstm(history_emb, mask=mask, training=training)

    def _user_vector(self, state):
        return state

    def _candidate_logits(self, state, items, training):
        return _apply_mlp(self.head, _interaction_features(state, items))


class CNNModel(BaselineModel):
    """1-D convolutions of several widths over the history, masked max pooling, MLP (Caser-like).

    Args:
      config: BaselineConfig.
      kernel_widths: Convolution widths.
    """

    model_type = "cnn"

    def __init__(self, config, kernel_widths=(2, 3, 4), **kwargs):
        super().__init__(config, **kwargs)
        d = self.config.embedding_dim
        self.convs = [
            tf.keras.layers.Conv1D(d, w, padding="same", activation="relu", name=f"conv_{w}")
            for w in kernel_widths
        ]
        self.project = tf.keras.layers.Dense(d, name="cnn_project")
        self.head = mlp(self.config.mlp_units, self.config.l2, "cnn_mlp")

    def _encode_history(self, history_emb, mask, training):
        # "same" padding lets windows overlap the PAD_ID tail, whose embeddings are zeroed; the
        # pooling then only looks at real positions. ReLU outputs are >= 0, so zeroing masked
        # positions before the max is the masked max, and an empty history pools to 0.
        keep = tf.cast(mask, tf.float32)[..., None]
        pooled = [tf.reduce_max(conv(history_emb) * keep, axis=1) for conv in self.convs]
        return self.project(tf.concat(pooled, axis=-1))

    def _user_vector(self, state):
        return state

    def _candidate_logits(self, state, items, training):
        return _apply_mlp(self.head, _interaction_features(state, items))


class NCFModel(BaselineModel):
    """Neural collaborative filtering (NeuMF, He et al., 2017): GMF + MLP branches.

    The user side is the mean of the history embeddings (one table per branch, as NeuMF keeps
    separate GMF and MLP embeddings); the target side is the target's embedding.
    """

    model_type = "ncf"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        cfg = self.config
        reg = tf.keras.regularizers.L2(cfg.l2) if cfg.l2 > 0 else None
        self.mlp_embedding = tf.keras.layers.Embedding(
            cfg.num_embeddings, cfg.embedding_dim, name="mlp_video_embedding"
        )
        self.mlp_layers = [
            tf.keras.layers.Dense(n, activation="relu", kernel_regularizer=reg, name=f"ncf_{i}")
            for i, n in enumerate(cfg.mlp_units)
        ]
        self.out = tf.keras.layers.Dense(1, kernel_regularizer=reg, name="neumf_logit")

    def _state(self, features, training):
        history = self._ids(features, F.MODEL_CLICK_HISTORY, rank=2)
        mask = tf.not_equal(history, F.PAD_ID)
        return (
            masked_mean(self.video_embedding(history), mask),
            masked_mean(self.mlp_embedding(history), mask),
        )

    def _user_vector(self, state):
        return tf.concat(state, axis=-1)

    def _logits(self, features, candidates, training):
        user_gmf, user_mlp = self._state(features, training)
        items_gmf = self.video_embedding(candidates)
        items_mlp = self.mlp_embedding(candidates)
        gmf = user_gmf[:, None, :] * items_gmf
        x = tf.concat([tf.broadcast_to(user_mlp[:, None, :], tf.shape(items_mlp)), items_mlp], -1)
        for layer in self.mlp_layers:
            x = layer(x)
        return tf.squeeze(self.out(tf.concat([gmf, x], axis=-1)), axis=-1)


class ATRankModel(BaselineModel):
    """ATRank-style (Zhou et al., 2018): self-attention over the history, then target attention.

    Positional embeddings + one multi-head self-attention block (residual, layer norm, feed
    forward) over the click history; the target attends over the result; MLP on
    [attended, target, attended * target]. `user_embedding` is the masked mean of the
    self-attended history (the target-free part).

    Args:
      config: BaselineConfig.
      num_heads: Attention heads (embedding_dim must be divisible by it).
    """

    model_type = "atrank"

    def __init__(self, config, num_heads: int = 2, **kwargs):
        super().__init__(config, **kwargs)
        d = self.config.embedding_dim
        if d % num_heads:
            raise ValueError(f"ATRank: embedding_dim {d} is not divisible by num_heads {num_heads}")
        self.position = tf.keras.layers.Embedding(self.config.max_history, d, name="position")
        self.self_attention = tf.keras.layers.MultiHeadAttention(
            num_heads, d // num_heads, name="self_attention"
        )
        self.norm1 = tf.keras.layers.LayerNormalization(name="norm1")
        self.ffn = tf.keras.Sequential(
            [tf.keras.layers.Dense(2 * d, activation="relu"), tf.keras.layers.Dense(d)], name="ffn"
        )
        self.norm2 = tf.keras.layers.LayerNormalization(name="norm2")
        self.target_attention = tf.keras.layers.MultiHeadAttention(
            num_heads, d // num_heads, name="target_attention"
        )
        self.head = mlp(self.config.mlp_units, self.config.l2, "atrank_mlp")

    def _encode_history(self, history_emb, mask, training):
        n = tf.shape(history_emb)[1]
        positions = tf.minimum(tf.range(n), self.config.max_history - 1)
        x = history_emb + self.position(positions)[None]
        pair_mask = mask[:, :, None] & mask[:, None, :]
        h = self.norm1(x + self.self_attention(x, x, attention_mask=pair_mask, training=training))
        h = self.norm2(h + self.ffn(h))
        return h * tf.cast(mask, tf.float32)[..., None], mask

    def _user_vector(self, state):
        return masked_mean(*state)

    def _candidate_logits(self, state, items, training):
        h, mask = state
        num = tf.shape(items)[1]
        # Each candidate is a query over the user's history: [B, C, N] key mask.
        key_mask = tf.tile(mask[:, None, :], [1, num, 1])
        attended = self.target_attention(items, h, attention_mask=key_mask, training=training)
        # A fully masked row would attend uniformly over padding: zero it instead.
        has_history = tf.cast(tf.reduce_any(mask, axis=1), tf.float32)[:, None, None]
        attended = attended * has_history
        x = tf.concat([attended, items, attended * items], axis=-1)
        return _apply_mlp(self.head, x)


class PopularityModel(BaselineModel):
    """Non-personalised: the smoothed training CTR of the target video.

    score(v) = (clicks_v + m * ctr) / (exposures_v + m), ctr = the global training CTR and m =
    `prior_strength` pseudo-exposures, so unseen and rare videos fall back to the global CTR.
    Nothing is trained: `train_step` (hence `model.fit`, as the Trainer calls it) adds each
    batch's counts; `fit_counts` does the same for any dataset of feature dicts.

    Args:
      config: BaselineConfig (only the table size is used).
      prior_strength: m above.
    """

    model_type = "popularity"
    loss_name = "ce"

    def __init__(self, config, prior_strength: float = 1.0, **kwargs):
        super().__init__(config, **kwargs)
        self.video_embedding = None  # no embeddings
        rows = self.config.num_embeddings
        self.prior_strength = float(prior_strength)
        # ON_READ + SUM: under MirroredStrategy each replica counts its own batches and a read
        # sums them, so the counts are those of all the data whatever the number of replicas.
        counter = dict(
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.SUM,
        )
        self.clicks = tf.Variable(tf.zeros([rows]), name="clicks", **counter)
        self.exposures = tf.Variable(tf.zeros([rows]), name="exposures", **counter)

    def add_counts(self, features) -> None:
        """Adds one batch's clicks and exposures per target video.

        Args:
          features: Dict with `MODEL_TARGET` [B] and `MODEL_LABEL` [B].
        """
        targets = self._ids(features, F.MODEL_TARGET, rank=1)
        labels = self._labels(features)
        rows = self.config.num_embeddings
        self.clicks.assign_add(tf.math.unsorted_segment_sum(labels, targets, rows))
        self.exposures.assign_add(tf.math.unsorted_segment_sum(tf.ones_like(labels), targets, rows))

    def fit_counts(self, dataset) -> None:
        """Counts clicks/exposures over a finite dataset of feature-dict batches."""
        for batch in dataset:
            self.add_counts(batch)

    def _prior(self):
        """The global training CTR (0.5 before anything was counted: uninformative)."""
        total = tf.reduce_sum(self.exposures)
        prior = tf.math.divide_no_nan(tf.reduce_sum(self.clicks), total)
        return tf.where(total > 0, prior, 0.5)

    def _ctr(self, candidates):
        prior = self._prior()
        clicks = tf.gather(self.clicks, candidates)
        exposures = tf.gather(self.exposures, candidates)
        m = self.prior_strength
        return (clicks + m * prior) / (exposures + m)

    @tf.autograph.experimental.do_not_convert
    def call(self, features, training=False):
        return self._ctr(self._ids(features, F.MODEL_TARGET, rank=1))

    def score_candidates(self, features, candidate_indices) -> tf.Tensor:
        candidate_indices = tf.convert_to_tensor(candidate_indices)
        if candidate_indices.shape.rank != 2:
            raise ValueError(
                f"candidate_indices must be [B, C], got shape {candidate_indices.shape}"
            )
        return self._ctr(tf.cast(candidate_indices, tf.int64))

    def user_embedding(self, features) -> tf.Tensor:
        """No user representation: a [B, 1] zero vector (kept for the export signature)."""
        history = self._ids(features, F.MODEL_CLICK_HISTORY, rank=2)
        return tf.zeros([tf.shape(history)[0], 1])

    @tf.autograph.experimental.do_not_convert
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """Cross-entropy of the current estimate (constant w.r.t. any weight; for logging)."""
        labels = self._labels(inputs)
        probs = tf.clip_by_value(self(inputs), 1e-6, 1 - 1e-6)
        loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(labels[:, None], probs[:, None]))
        self._track(loss, labels, probs)
        return loss

    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs):
        # Counting, not gradient descent: there are no trainable variables to apply gradients to.
        self.add_counts(inputs)
        loss = self.compute_loss(inputs, training=True)
        return {"loss": loss, **{m.name: m.result() for m in self.metrics}}

    def parameter_counts(self) -> dict[str, int]:
        rows = int(self.clicks.shape[0])
        return {"embedding": 0, "non_embedding": 0, "trainable": 0, "total": 2 * rows}


class UserItemRateModel(PopularityModel):
    """The count to beat: the video's and the user's smoothed click rates, added as logits.

    logit = logit(r_v) + logit(r_u) - logit(ctr), with r_v the smoothed training CTR of the video
    (as `PopularityModel`) and r_u = (clicks_u + m * ctr) / (clicks_u + non_clicks_u + m) over
    the user's exposures before the target (`layers.wide.history_counts`: the example's uncut
    counts, or the history lengths when a request has none). Subtracting logit(ctr) once keeps a
    user and a video at the global rate at the global rate. Counted, not trained, like `PopularityModel`.

    Args:
      config: BaselineConfig (only the table size is used).
      prior_strength: m above, for both rates.
    """

    model_type = "user_item_rate"

    def _user_logit(self, features, prior):
        clicks, nonclicks = history_counts(features)
        exposures = clicks + nonclicks
        m = self.prior_strength
        return _logit((clicks + m * prior) / (exposures + m)) - _logit(prior)

    def _scores(self, features, candidates):
        user = self._user_logit(features, self._prior())
        user = tf.reshape(
            user, tf.concat([tf.shape(user), tf.ones_like(tf.shape(candidates)[1:])], 0)
        )
        return tf.sigmoid(_logit(self._ctr(candidates)) + user)

    @tf.autograph.experimental.do_not_convert
    def call(self, features, training=False):
        return self._scores(features, self._ids(features, F.MODEL_TARGET, rank=1))

    def score_candidates(self, features, candidate_indices) -> tf.Tensor:
        candidate_indices = tf.convert_to_tensor(candidate_indices)
        if candidate_indices.shape.rank != 2:
            raise ValueError(
                f"candidate_indices must be [B, C], got shape {candidate_indices.shape}"
            )
        return self._scores(features, tf.cast(candidate_indices, tf.int64))


def _logit(p):
    p = tf.clip_by_value(p, 1e-6, 1 - 1e-6)
    return tf.math.log(p) - tf.math.log1p(-p)


BASELINES = {
    cls.model_type: cls
    for cls in (
        BPRModel, LSTMModel, CNNModel, NCFModel, ATRankModel, PopularityModel, UserItemRateModel
    )
}  # fmt: skip


def build_baseline(model_type: str, config: BaselineConfig) -> BaselineModel:
    if model_type not in BASELINES:
        raise ValueError(f"unknown baseline {model_type!r}; known: {sorted(BASELINES)}")
    return BASELINES[model_type](config)
