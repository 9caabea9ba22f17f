"""CCL4RecModel: the TFRS model that ties scoring, augmentation, encoding and all objectives.

Inference (`call`, `user_embedding`, `score_candidates`) never augments. `compute_loss(training=
True)` adds the hardness-aware augmentation and every enabled term of Eq 16; each term is tracked
by its own `tf.keras.metrics.Mean` (shown in Keras logs / TensorBoard as `<term>_loss`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_ccl4rec import augmentation as aug
from tf_ccl4rec import features as F
from tf_ccl4rec import losses
from tf_ccl4rec.config import LOSS_TERMS, CCL4RecConfig
from tf_ccl4rec.distribution import ReplicaScaledTrainStep, per_replica
from tf_ccl4rec.layers import (
    BehaviorScorer,
    CTRHead,
    SequenceEncoder,
    VideoRepresentation,
    WideLogit,
)
from tf_ccl4rec.layers.encoder import item_weights
from tf_ccl4rec.layers.scoring import importance, pairwise_scores, relatedness_scores
from tf_ccl4rec.layers.wide import (
    NUM_STATISTICS,
    category_statistics,
    count_logits,
    fit_statistics_weights,
    history_statistics,
)
from tf_ccl4rec.tracing import VariablesBeforeTracing

# Training-only XLA clusters for the augmented sequences: each fuses the elementwise passes over
# their [B, S, N, N] scores (Eq 2, the masked softmaxes of Eq 6-7) that TF runs op by op, forward
# and backward (~50 -> ~23 ms at paper settings). Inference keeps plain TF ops, so exported
# models need no XLA at serving time. Small batches skip them (config `augmentation_xla`).
_compiled_importance = tf.function(importance, jit_compile=True, autograph=False)
_compiled_item_weights = tf.function(item_weights, jit_compile=True, autograph=False)

# Keras' entry points here (call, compute_loss, train_step) are traced without AutoGraph
# (`do_not_convert`): they branch only on Python values, and AutoGraph's source conversion of this
# code was most of a first trace (scripts/bench_trace.py, tiny model: 28.9 -> 11.0 s).
# tests/model/test_tracing.py checks that tracing converts none of our functions.


def feature_specs(config: CCL4RecConfig, with_label: bool = False) -> dict[str, tf.TensorSpec]:
    """TensorSpecs of the model inputs (batch and history length left dynamic).

    Args:
      config: The model config (decides the optional inputs).
      with_label: Also include `features.MODEL_LABEL` and `features.MODEL_USER`, which only
        `compute_loss` reads (training / evaluation); inference needs neither.

    Returns:
      Dict of feature name -> tf.TensorSpec.
    """
    specs = {
        F.MODEL_CLICK_HISTORY: tf.TensorSpec([None, None], tf.int64, F.MODEL_CLICK_HISTORY),
        F.MODEL_TARGET: tf.TensorSpec([None], tf.int64, F.MODEL_TARGET),
    }
    if config.reads_nonclick_history:
        specs[F.MODEL_NONCLICK_HISTORY] = tf.TensorSpec(
            [None, None], tf.int64, F.MODEL_NONCLICK_HISTORY
        )
    if config.history_statistics:
        for name in (F.MODEL_CLICK_COUNT, F.MODEL_NONCLICK_COUNT, F.MODEL_RECENT_CLICK_COUNT):
            specs[name] = tf.TensorSpec([None], tf.float32, name)
    if config.num_interest_vectors:
        specs[F.MODEL_INTEREST_VECTORS] = tf.TensorSpec(
            [None, config.num_interest_vectors, config.effective_interest_vector_dim],
            tf.float32,
            F.MODEL_INTEREST_VECTORS,
        )
    if with_label:
        specs[F.MODEL_LABEL] = tf.TensorSpec([None], tf.float32, F.MODEL_LABEL)
        specs[F.MODEL_USER] = tf.TensorSpec([None], tf.int64, F.MODEL_USER)
    return specs


def split_parameter_counts(tables, trainable_variables) -> dict[str, int]:
    """Parameter counts with the per-video tables apart from everything else.

    Args:
      tables: The embedding-table variables (trainable or frozen).
      trainable_variables: All trainable variables of the model.

    Returns:
      Dict with "embedding", "non_embedding" (trainable, not a table), "trainable" and "total".
    """
    table_ids = {id(v) for v in tables}
    embedding = int(sum(np.prod(v.shape) for v in tables))
    non_embedding = int(
        sum(np.prod(v.shape) for v in trainable_variables if id(v) not in table_ids)
    )
    trainable = int(sum(np.prod(v.shape) for v in trainable_variables))
    return {
        "embedding": embedding,
        "non_embedding": non_embedding,
        "trainable": trainable,
        "total": embedding + non_embedding,
    }


class CCL4RecModel(VariablesBeforeTracing, ReplicaScaledTrainStep, tfrs.models.Model):
    """CCL4Rec (§3) as a `tfrs.models.Model`.

    Args:
      config: CCL4RecConfig (or its dict).
      content_features: float32 [1 + vocab_size + num_oov_buckets, F] frozen content table
        (row 0 = padding); required when config.video_representation is "content" or "both".
      video_categories: int [1 + vocab_size + num_oov_buckets] category index per video (0 =
        none); used when config.category_statistics is on (the trainer's `video_categories`).
    """

    def __init__(
        self,
        config,
        content_features: np.ndarray | None = None,
        video_categories: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(config, CCL4RecConfig):
            config = CCL4RecConfig.from_dict(config)
        config.validate()
        if content_features is not None and config.video_representation != "id":
            cols = np.shape(content_features)[-1]
            if cols != config.content_feature_dim:
                raise ValueError(
                    f"content_features has {cols} columns, config.content_feature_dim is "
                    f"{config.content_feature_dim}"
                )
        self._ccl_config = config
        units = config.effective_units
        reg = tf.keras.regularizers.L2(config.l2) if config.l2 > 0 else None
        self.video = VideoRepresentation(
            config.num_embeddings,
            config.embedding_dim,
            mode=config.video_representation,
            content_features=content_features if config.video_representation != "id" else None,
            kernel_regularizer=reg,
            seed=config.seed,
        )
        self.scorer = BehaviorScorer(units, reg, name="click_scorer")
        self.encoder = SequenceEncoder(
            units, reg, scaled_scores=config.scaled_attention_scores, name="click_encoder"
        )
        zero_head = config.warm_start_from_counts
        self.ctr = CTRHead(units, config.mlp_units, reg, zero_output=zero_head, name="ctr")
        self._sum_logits = config.combine_sequences == "sum_logits"
        self.sequence_heads = [self.ctr]  # one Eq 13 head per sequence of `_user_vectors`
        # §4.1: extra sequences get their own scorer/encoder weights and no augmentation.
        if config.use_nonclick_sequence:
            self.nonclick_scorer = BehaviorScorer(units, reg, name="nonclick_scorer")
            self.nonclick_encoder = SequenceEncoder(
                units, reg, scaled_scores=config.scaled_attention_scores, name="nonclick_encoder"
            )
            self.sequence_heads.append(
                CTRHead(units, config.mlp_units, reg, zero_output=zero_head, name="nonclick_ctr")
                if self._sum_logits
                else self.ctr
            )
        if config.num_interest_vectors:
            self.interest_projection = tf.keras.layers.Dense(
                config.embedding_dim,
                use_bias=False,
                kernel_regularizer=reg,
                name="interest_projection",
            )
            self.interest_scorer = BehaviorScorer(units, reg, name="interest_scorer")
            self.interest_encoder = SequenceEncoder(
                units, reg, scaled_scores=config.scaled_attention_scores, name="interest_encoder"
            )
            self.sequence_heads.append(
                CTRHead(units, config.mlp_units, reg, zero_output=zero_head, name="interest_ctr")
                if self._sum_logits
                else self.ctr
            )
        self.wide = None
        if config.item_bias or config.history_statistics:
            categories = video_categories if config.category_statistics else None
            self.wide = WideLogit(
                config.num_embeddings, config.item_bias, config.history_statistics, config.l2,
                video_categories=categories, name="wide",
            )  # fmt: skip
        # Not in the paper: the query side of the two-stage `recommend` (config.retrieval_weight);
        # the candidate side is the video representation itself. Built here, since `call` does
        # not use it and checkpoints must hold it.
        self.retrieval_query = None
        if config.retrieval_weight > 0:
            self.retrieval_query = tf.keras.layers.Dense(
                config.embedding_dim, use_bias=False, kernel_regularizer=reg,
                name="retrieval_query",
            )  # fmt: skip
            self.retrieval_query.build((None, units))
        # Augmentation schedule (§3.5), advanced by ScheduleCallback, saved with the model.
        self.training_progress = tf.Variable(
            0.0, trainable=False, dtype=tf.float32, name="training_progress"
        )
        self._distance = losses.DISTANCES[config.distance]
        names = [f"{t}_loss" for t in LOSS_TERMS if config.loss_enabled(t)]
        if config.retrieval_weight > 0:
            names.append("retrieval_loss")
        names.append("embedding_l2")
        if config.use_cui:
            names.append("cui_user_fraction")
        if config.needs_augmentation:
            names += ["augmented_row_fraction", "hardness_pos", "hardness_neg"]
        self.loss_trackers = {n: tf.keras.metrics.Mean(name=n) for n in names}
        self.auc = tf.keras.metrics.AUC(name="auc")

    # --- public API ---------------------------------------------------------------------------
    @property
    def config(self) -> CCL4RecConfig:
        return self._ccl_config

    @tf.autograph.experimental.do_not_convert
    def call(self, features, training=False):
        """Click probability ŷ [B] of the target video (no augmentation).

        Args:
          features: Dict with the inputs of `feature_specs(config)`.
          training: Unused (inference never augments).

        Returns:
          float32 [B]: the mean over sequences of sigmoid(Eq 13).
        """
        users = self._user_vectors(features)
        target_ids = self._ids(features, F.MODEL_TARGET, rank=1)
        target = self.video(target_ids)
        logits = tf.stack(
            [head(u, target) for head, u in zip(self.sequence_heads, users["all"], strict=True)],
            axis=-1,
        )
        logits = self._combine(logits, self._wide_logits(features, target_ids))
        return tf.reduce_mean(tf.sigmoid(logits), axis=-1)

    def user_embedding(self, features) -> tf.Tensor:
        """User vector u of the click sequence (Eq 7).

        Args:
          features: Dict with at least `features.MODEL_CLICK_HISTORY` int64 [B, N].

        Returns:
          float32 [B, units].
        """
        return self._encode_click(features)[0]

    def retrieval_queries(self, features) -> tf.Tensor:
        """Query vectors of the retrieval stage, float32 [B, d + w].

        [W u, 1, s_u]: the projection of u (Eq 7) to d, then the user's side of the wide logit's
        per-video part (`_wide_retrieval_parts`): with `retrieval_candidates`' [v, b_v,
        onehot(category)], the dot product is W u · v + b_v + s_u[category(v)], i.e. the wide
        logit exactly (up to the user's own statistics, the same for every video) plus a
        learned bilinear stand-in for Eq 13's MLP. Needs `config.retrieval_weight` > 0.
        """
        if self.retrieval_query is None:
            raise ValueError("retrieval_queries needs a model with config.retrieval_weight > 0")
        u = self.user_embedding(features)
        if not self.config.retrieval_trains_encoder:
            u = tf.stop_gradient(u)
        parts = [self.retrieval_query(u)] + self._wide_retrieval_parts(features=features)
        return tf.concat(parts, axis=-1)

    def retrieval_candidates(self, indices) -> tf.Tensor:
        """Candidate vectors of the retrieval stage, [..., d + w]: the video representation, then
        the video's side of the wide logit (`retrieval_queries`)."""
        indices = tf.cast(indices, tf.int64)
        v = self.video(indices)
        if not self.config.retrieval_trains_encoder:
            v = tf.stop_gradient(v)
        return tf.concat([v] + self._wide_retrieval_parts(indices=indices), axis=-1)

    def _wide_retrieval_parts(self, features=None, indices=None):
        """The wide logit's per-video part as a dot product (fixed: no gradient from retrieval).

        Query side (`features`): [1] for the per-video bias, then s_u [K], the statistics term
        of each category for this user (category_statistics · their weights; 0 for none).
        Candidate side (`indices`): [b_v], then the one-hot of the video's category.
        """
        wide = self.wide
        if wide is None:
            return []
        parts = []
        if features is not None:
            clicked = self._ids(features, F.MODEL_CLICK_HISTORY, rank=2)
            batch = tf.shape(clicked)[0]
            if wide.bias is not None:
                parts.append(tf.ones([batch, 1], tf.float32))
            if wide.category_of is not None:
                k = wide.num_categories
                stats = category_statistics(
                    clicked,
                    self._ids(features, F.MODEL_NONCLICK_HISTORY, rank=2),
                    tf.tile(tf.range(k, dtype=tf.int32)[None, :], [batch, 1]),
                    wide.category_of,
                    k,
                    candidates_are_categories=True,
                )  # [B, K, 3]
                weights = wide.statistics.kernel[NUM_STATISTICS:, 0]
                parts.append(tf.stop_gradient(tf.linalg.matvec(stats, weights)))
            return parts
        if wide.bias is not None:
            parts.append(tf.stop_gradient(wide.bias(tf.cast(indices, tf.int32))))
        if wide.category_of is not None:
            category = tf.gather(wide.category_of, tf.cast(indices, tf.int32))
            parts.append(tf.one_hot(category, wide.num_categories, dtype=tf.float32))
        return parts

    def score_candidates(self, features, candidate_indices) -> tf.Tensor:
        """Click probabilities of C candidate videos per user with the same CTR head as `call`.

        Args:
          features: Dict with the history inputs of `feature_specs(config)` (no target needed).
          candidate_indices: int [B, C] video indices.

        Returns:
          float32 [B, C].
        """
        candidate_indices = tf.convert_to_tensor(candidate_indices)
        if candidate_indices.shape.rank != 2:
            raise ValueError(
                f"candidate_indices must be [B, C], got shape {candidate_indices.shape}"
            )
        items = self.video(candidate_indices)  # [B, C, d]
        num = tf.shape(candidate_indices)[1]
        wide = self._wide_logits(features, candidate_indices)
        logits = []
        for head, u in zip(self.sequence_heads, self._user_vectors(features)["all"], strict=True):
            logits.append(head(tf.tile(u[:, None, :], [1, num, 1]), items))
        logits = self._combine(tf.stack(logits, axis=-1), wide)  # [B, C, S or 1]
        return tf.reduce_mean(tf.sigmoid(logits), axis=-1)

    @tf.autograph.experimental.do_not_convert
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """Eq 16: the sum of the enabled terms (augmented terms only when training).

        Args:
          inputs: Feature dict including `features.MODEL_LABEL` and `features.MODEL_USER`.
          training: Adds the augmentation and the contrastive / augmented CE terms.

        Returns:
          Scalar loss (the Keras kernel L2 is added by the TFRS train step; the L2 of the
          looked-up embeddings is included here).
        """
        cfg = self.config
        if F.MODEL_LABEL not in inputs:
            raise KeyError(f"compute_loss needs the label feature {F.MODEL_LABEL!r}")
        labels = tf.reshape(tf.cast(inputs[F.MODEL_LABEL], tf.float32), [-1])
        users = self._user_vectors(inputs)
        u, seq, mask, alpha_t, projections, click_ids = users["click"]
        target_ids = self._ids(inputs, F.MODEL_TARGET, rank=1)
        target = self.video(target_ids)
        wide = self._wide_logits(inputs, target_ids)  # [B]
        extra_logits = [
            head(x, target)
            for head, x in zip(self.sequence_heads[1:], users["all"][1:], strict=True)
        ]
        logits = self._combine(tf.stack([self.ctr(u, target)] + extra_logits, axis=-1), wide)
        probs = tf.reduce_mean(tf.sigmoid(logits), axis=-1)
        terms = {}
        if cfg.use_ce:
            terms["ce"] = losses.binary_cross_entropy(labels, logits)
        if cfg.use_cui:
            user_ids = self._ids(inputs, F.MODEL_USER, rank=1)
            terms["cui"], fraction = losses.cui_loss(probs, labels, user_ids, True)
            self.loss_trackers["cui_user_fraction"].update_state(fraction)
        if self.retrieval_query is not None:
            terms["retrieval"] = cfg.retrieval_weight * losses.in_batch_retrieval_loss(
                self.retrieval_queries(inputs),
                self.retrieval_candidates(target_ids),
                target_ids,
                self._ids(inputs, F.MODEL_USER, rank=1),
                labels,
            )
        if training and cfg.needs_augmentation:
            augmented = self._augmented_terms(
                click_ids, u, seq, mask, alpha_t, projections, target, extra_logits, wide, labels
            )
            terms.update(augmented)
        # Per-batch L2 on the looked-up vectors only (hand-written: a table regularizer would
        # touch every row of a million-video table at every step).
        emb_l2 = cfg.l2 * (tf.reduce_sum(tf.square(seq)) + tf.reduce_sum(tf.square(target)))
        if self.wide is not None:
            emb_l2 += self.wide.bias_l2(target_ids)
        for name, value in terms.items():
            self.loss_trackers[f"{name}_loss"].update_state(value)
        self.loss_trackers["embedding_l2"].update_state(emb_l2)
        self.auc.update_state(labels, probs)
        # The terms are batch means, the embedding L2 a sum over the batch's rows (see per_replica).
        return per_replica(tf.add_n(list(terms.values()))) + emb_l2

    def warm_start(self, targets, labels, user_counts=None, rows=None) -> bool:
        """Starts the wide logit at the user + video count of the training rows when the config
        asks for it (`warm_start_from_counts`); returns whether it did.

        With `user_counts`, the statistics' weights are then fitted to those rows by logistic
        regression with the count's video logits as an offset (`fit_statistics_weights`): the
        recent click rate gets its weight from the data, not from gradient steps.

        Args:
          targets: int [R] video indices of the training rows.
          labels: [R] their clicks.
          user_counts: Optional float [R, 3] (clicks, non-clicks, recent clicks) before each row
            (`MODEL_CLICK_COUNT`, `MODEL_NONCLICK_COUNT`, `MODEL_RECENT_CLICK_COUNT`).
          rows: Optional tf.data.Dataset of batches of the same rows in the same order; with the
            category statistics on, every statistic is computed from them instead (the category
            counts need the histories).
        """
        if not self.config.warm_start_from_counts or self.wide is None:
            return False
        video_logits, prior_logit = count_logits(targets, labels, self.config.num_embeddings)
        weights = None
        stats = None
        if self.wide.statistics is not None and self.wide.category_of is not None:
            if rows is None:
                # The category counts need the histories: fitting without them would leave the
                # category weights at their initial values without a word.
                raise ValueError(
                    "warm start: the category statistics are on; pass the training rows (`rows`)"
                )
            stats = self._statistics_of_rows(rows)
        elif user_counts is not None and self.wide.statistics is not None:
            counts = np.asarray(user_counts, np.float32)
            stats = history_statistics(counts[:, 0], counts[:, 1], counts[:, 2]).numpy()
        if stats is not None:
            if len(stats) != len(targets):
                raise ValueError(
                    f"warm start: {len(stats)} rows of statistics, {len(targets)} targets"
                )
            offset = video_logits[np.asarray(targets)] if self.wide.bias is not None else 0.0
            weights = fit_statistics_weights(stats, offset + np.zeros(len(stats)), labels)
        self.wide.warm_start(video_logits, prior_logit, weights)
        return True

    def _statistics_of_rows(self, rows) -> np.ndarray:
        """The wide statistics of every row of `rows` (batches of model inputs), [R, k]: one
        trace for all batches, or none for a model compiled to run eagerly (runs of a few steps,
        such as `ccl4rec experiment --quick`, whose batches cost less than the trace)."""

        def compute(batch):
            return self.wide.statistics_of(batch[F.MODEL_TARGET], batch)

        if not self.run_eagerly:
            compute = tf.function(compute, autograph=False)
        return np.concatenate([compute(batch).numpy() for batch in rows], axis=0)

    def parameter_counts(self) -> dict[str, int]:
        """Parameter counts split into per-video tables and the rest.

        Returns:
          Dict with "embedding" (trainable id table + frozen content table), "non_embedding"
          (all other trainable weights), "trainable" and "total".
        """
        self._build_if_needed()
        return split_parameter_counts(self.video.embedding_variables, self.trainable_variables)

    def get_config(self):
        return {"config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(CCL4RecConfig.from_dict(config["config"]))

    # --- internals ----------------------------------------------------------------------------
    @staticmethod
    def _ids(features, name, rank):
        if name not in features:
            raise KeyError(f"CCL4RecModel: missing input feature {name!r}")
        ids = tf.cast(features[name], tf.int64)
        if rank == 1:
            return tf.reshape(ids, [-1])
        if ids.shape.rank is not None and ids.shape.rank != 2:
            raise ValueError(f"feature {name!r} must be [B, N], got shape {ids.shape}")
        return ids

    def _combine(self, logits, wide):
        """Per-sequence logits [..., S] and the wide logit [...] -> the logits whose sigmoids are
        averaged: [..., S] (each plus the wide logit) or, summing, [..., 1]."""
        if self._sum_logits:
            return tf.reduce_sum(logits, axis=-1, keepdims=True) + wide[..., None]
        return logits + wide[..., None]

    def _wide_logits(self, features, candidates):
        # The wide logit of `candidates` ([B] or [B, C]); 0 when the config has none.
        if self.wide is None:
            return tf.zeros(tf.shape(candidates), tf.float32)
        return self.wide(candidates, features)

    def _encode(self, seq, mask, scorer, encoder):
        # (u, alpha_t, (seq W1, seq W2)): the projections serve Eq 3 and the augmented copies.
        alpha_ij, alpha_t, projections = scorer(seq, mask, with_projections=True)
        return encoder(seq, alpha_ij, alpha_t, mask), alpha_t, projections

    def _encode_click(self, features):
        ids = self._ids(features, F.MODEL_CLICK_HISTORY, rank=2)
        mask = tf.not_equal(ids, F.PAD_ID)
        seq = self.video(ids)
        u, alpha_t, projections = self._encode(seq, mask, self.scorer, self.encoder)
        return u, seq, mask, alpha_t, projections, ids

    def _user_vectors(self, features):
        click = self._encode_click(features)
        out = [click[0]]
        if self.config.use_nonclick_sequence:
            ids = self._ids(features, F.MODEL_NONCLICK_HISTORY, rank=2)
            mask = tf.not_equal(ids, F.PAD_ID)
            u, *_ = self._encode(self.video(ids), mask, self.nonclick_scorer, self.nonclick_encoder)
            out.append(u)
        if self.config.num_interest_vectors:
            if F.MODEL_INTEREST_VECTORS not in features:
                raise KeyError(f"CCL4RecModel: missing input feature {F.MODEL_INTEREST_VECTORS!r}")
            vectors = self.interest_projection(
                tf.cast(features[F.MODEL_INTEREST_VECTORS], tf.float32)
            )
            mask = tf.ones(tf.shape(vectors)[:2], tf.bool)
            u, *_ = self._encode(vectors, mask, self.interest_scorer, self.interest_encoder)
            out.append(u)
        return {"click": click, "all": out}

    def _encode_samples(self, index, seq, mask, projections, sub_emb, sub_projections):
        """User vectors [B, S, units] of augmented samples with the click-sequence weights.

        The same Eq 1-2 and 6-7 as `_encode` on the augmented sequences (`index`: int32
        [B, S, N] from aug.replacement_index), with every per-item row (v, v W1, v W2) taken from
        the original history's or the substitutes' rows: a kept item is not projected again
        (exact), and Eq 1's [N, N] product is the only per-sample matmul of size N².
        """
        left, right = (
            aug.replace_rows(p, z, index) for p, z in zip(projections, sub_projections, strict=True)
        )
        mask = mask[:, None, :]
        alpha_ij = pairwise_scores(left, right)  # Eq 1
        xla = self.config.uses_augmentation_xla
        sample_importance = _compiled_importance if xla else importance
        sample_item_weights = _compiled_item_weights if xla else item_weights
        alpha_t = sample_importance(alpha_ij, mask)  # Eq 2
        scaled_by = tf.shape(seq)[-1] if self.encoder.scaled_scores else None
        c = sample_item_weights(alpha_ij, alpha_t, mask, scaled_by)  # Eq 6-7
        pooled = tf.matmul(c[..., None, :], aug.replace_rows(seq, sub_emb, index))[..., 0, :]
        return self.encoder.output_from_pooled(pooled)

    def _sample_logits(self, u_samples, target, extra_logits, wide):
        # Per-sample logits [B, S, 1 + extra]: the augmented click sequence replaces the original
        # one; the (non-augmented) extra sequences keep their logits.
        num = tf.shape(u_samples)[1]
        tiled_target = tf.tile(target[:, None, :], [1, num, 1])
        logits = [self.ctr(u_samples, tiled_target)]
        logits += [tf.tile(x[:, None], [1, num]) for x in extra_logits]
        return self._combine(tf.stack(logits, axis=-1), wide[:, None])

    def _augmented_terms(
        self, ids, u, seq, mask, alpha_t, projections, target, extra_logits, wide, labels
    ):
        cfg = self.config
        sub_ids = aug.sample_substitute_ids(cfg.vocab_size, cfg.effective_num_substitutes)
        sub_emb = self.video(sub_ids)
        # (z W1, z W2) once per batch: the substitutes' rows of every augmented sequence.
        sub_projections = self.scorer.project(sub_emb)
        # Eq 3 from the same projections, once per distinct history item (positions holding the
        # same item have the same row). Relatedness is only used for sampling and hardness: no
        # gradient needed.
        first, rows = aug.distinct_rows(ids)
        left = tf.gather(tf.reshape(projections[0], [-1, self.scorer.units]), first)
        beta = tf.stop_gradient(relatedness_scores(left, sub_projections[1]))  # [R, Nz]
        t = aug.strategy_hard_weight(cfg.strategy, self.training_progress)
        alpha_t = tf.stop_gradient(alpha_t)
        margins = (cfg.margin_scale, cfg.margin_lower, cfg.margin_upper)
        terms = {}
        need_pos = cfg.use_ccl or cfg.use_ccl_pos or cfg.use_ce_pos
        need_neg = cfg.use_ccl or cfg.use_ccl_neg or cfg.use_ce_neg
        pos = neg = None
        # One pass over beta serves both signs: positives read draw columns [0, Np), negatives
        # [Np, Np + Nn) (see aug.sample_substitutes).
        # |beta_tk| <= |v_t W1| |z_k W2| (Cauchy-Schwarz): lets the draws skip passes over beta.
        abs_bound = tf.stop_gradient(
            tf.reduce_max(tf.norm(left, axis=-1))
            * tf.reduce_max(tf.norm(sub_projections[1], axis=-1))
        )
        draws = aug.draw_substitutes(
            beta, t, cfg.num_positives + cfg.num_negatives, abs_bound=abs_bound, rows=rows
        )
        if need_pos:
            pos = aug.augment(
                seq, mask, alpha_t, substitute_embeddings=sub_emb, draws=draws,
                num_samples=cfg.num_positives, positive=True, hard_weight=t, config=cfg,
            )  # fmt: skip
            row_valid = pos.row_valid
        if need_neg:
            neg = aug.augment(
                seq, mask, alpha_t, substitute_embeddings=sub_emb, draws=draws,
                num_samples=cfg.num_negatives, positive=False, hard_weight=t, config=cfg,
                column_offset=cfg.num_positives,
            )  # fmt: skip
            row_valid = neg.row_valid
        row_w = tf.cast(row_valid, tf.float32)
        self.loss_trackers["augmented_row_fraction"].update_state(tf.reduce_mean(row_w))
        # Positives and negatives go through the encoder together (one op per step, not two).
        samples = [
            (s, n) for s, n in ((pos, cfg.num_positives), (neg, cfg.num_negatives)) if s is not None
        ]
        encoded = self._encode_samples(
            tf.concat([s.index for s, _ in samples], axis=1), seq, mask, projections, sub_emb,
            sub_projections,
        )  # fmt: skip
        parts = iter(tf.split(encoded, [n for _, n in samples], axis=1))
        if pos is not None:
            u_pos = next(parts)
            d_pos = self._distance(u[:, None, :], u_pos)
            self.loss_trackers["hardness_pos"].update_state(pos.hardness, row_w[:, None])
        if neg is not None:
            u_neg = next(parts)
            d_neg = self._distance(u[:, None, :], u_neg)
            self.loss_trackers["hardness_neg"].update_state(neg.hardness, row_w[:, None])
        w = cfg.contrastive_weight
        if cfg.use_ccl:
            terms["ccl"] = w * losses.ccl_loss(
                d_pos, d_neg, pos.hardness, neg.hardness, *margins, sample_weight=row_w
            )
        if cfg.use_ccl_pos:
            terms["ccl_pos"] = w * losses.ccl_positive_loss(
                d_pos, pos.hardness, *margins, sample_weight=row_w
            )
        if cfg.use_ccl_neg:
            terms["ccl_neg"] = w * losses.ccl_negative_loss(
                d_neg, neg.hardness, *margins, sample_weight=row_w
            )
        if cfg.use_ce_pos:
            logits = self._sample_logits(u_pos, target, extra_logits, wide)
            weight = tf.broadcast_to(row_w[:, None], tf.shape(logits)[:2])
            terms["ce_pos"] = losses.binary_cross_entropy(
                tf.broadcast_to(labels[:, None], tf.shape(weight)), logits, weight
            )
        if cfg.use_ce_neg:
            # §3.5.2: labels reversed (1 -> 0), label-0 targets disregarded.
            logits = self._sample_logits(u_neg, target, extra_logits, wide)
            weight = tf.broadcast_to((row_w * labels)[:, None], tf.shape(logits)[:2])
            terms["ce_neg"] = losses.binary_cross_entropy(tf.zeros_like(weight), logits, weight)
        return terms

    def _build_if_needed(self):
        if self.built and self.scorer.built:
            return
        dummy = {
            name: tf.zeros([1] + [d if d is not None else 2 for d in spec.shape[1:]], spec.dtype)
            for name, spec in feature_specs(self.config).items()
        }
        self(dummy)


class ScheduleCallback(tf.keras.callbacks.Callback):
    """Advances `model.training_progress` = min(step / total_steps, 1) before every batch.

    Args:
      total_steps: Optimizer steps over which the schedule of §3.5 goes from 0 to 1.
    """

    def __init__(self, total_steps: int):
        super().__init__()
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.total_steps = int(total_steps)

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.model.training_progress.assign(min(step / self.total_steps, 1.0))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["training_progress"] = float(self.model.training_progress.numpy())
