"""The wide logit: a per-video click bias and the user's click statistics (lifetime and recent).

Not in the paper (see the NOTE in `tf_ccl4rec/config.py`). Eq 13 sees the history only through
attention-pooled vectors, which are averages: how often this user clicks, and how often this video
is clicked, are not recoverable from them. On real exposure logs those two counts alone rank well
(MovieLens: AUC 0.77), so the model gets them as an additive logit, like the wide part of
Wide & Deep; the deep part (Eq 1-13) models what the counts cannot. The user's click rate over
the latest exposures (`F.RECENT_WINDOW`) adds what the lifetime rate misses: on MovieLens a user's
later ratings are lower (train click rate 0.56, eval 0.45), which the recent rate follows.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_ccl4rec import features as F

NUM_STATISTICS = 4  # columns of `history_statistics`


def history_counts(features) -> tuple[tf.Tensor, tf.Tensor]:
    """The user's clicks and non-clicks before the exposure, float32 [B] each.

    Reads `MODEL_CLICK_COUNT` / `MODEL_NONCLICK_COUNT` (uncut counts from Transform) and never goes
    below the real items of the id histories, which stand in when the counts are absent.
    """
    out = []
    for ids_name, count_name in (
        (F.MODEL_CLICK_HISTORY, F.MODEL_CLICK_COUNT),
        (F.MODEL_NONCLICK_HISTORY, F.MODEL_NONCLICK_COUNT),
    ):
        if ids_name not in features:
            raise KeyError(f"history counts need the input feature {ids_name!r}")
        ids = features[ids_name]
        count = tf.reduce_sum(tf.cast(tf.not_equal(ids, F.PAD_ID), tf.float32), axis=-1)
        if count_name in features:
            given = tf.reshape(tf.cast(features[count_name], tf.float32), tf.shape(count))
            count = tf.maximum(count, given)
        out.append(count)
    return out[0], out[1]


def recent_clicks(features, clicks: tf.Tensor, nonclicks: tf.Tensor) -> tf.Tensor:
    """float32 [B] clicks among the latest `F.RECENT_WINDOW` exposures (`MODEL_RECENT_CLICK_COUNT`);
    without that input, the share of the window the lifetime rate predicts (as Transform does)."""
    from tf_ccl4rec.preprocessing import recent_click_count

    given = features.get(F.MODEL_RECENT_CLICK_COUNT)
    if given is not None:
        given = tf.reshape(tf.cast(given, tf.float32), tf.shape(clicks))
    return recent_click_count(given, clicks, nonclicks)


def history_statistics(clicks: tf.Tensor, nonclicks: tf.Tensor, recent: tf.Tensor) -> tf.Tensor:
    """The user's click statistics, float32 [B, 4]:

    [log1p(clicks), log1p(non-clicks), log((clicks + 1) / (non-clicks + 1)),
     log((recent + 1) / (window - recent + 1))], window = min(RECENT_WINDOW, clicks + non-clicks).

    The third column is the logit of the lifetime click rate, the fourth that of the rate over
    the latest exposures, each with one pseudo-count each way.
    """
    a, b = tf.math.log1p(clicks), tf.math.log1p(nonclicks)
    window = tf.minimum(float(F.RECENT_WINDOW), clicks + nonclicks)
    recent_logit = tf.math.log1p(recent) - tf.math.log1p(tf.maximum(window - recent, 0.0))
    return tf.stack([a, b, a - b, recent_logit], axis=-1)


def count_logits(targets, labels, num_embeddings: int, prior_strength: float = 1.0):
    """The user + video count (`baselines.UserItemRateModel`) as initial wide-logit weights.

    Args:
      targets: int [R] video index of each training row.
      labels: [R] 0/1 clicks.
      num_embeddings: Rows of the video table.
      prior_strength: m pseudo-exposures at the global click rate.

    Returns:
      (float32 [num_embeddings] logit of each video's smoothed click rate, logit of the global
      rate). With statistics weights (0, 0, 1, 0) and bias -logit(global), the wide logit is then
      logit(r_v) + log((clicks + 1) / (non-clicks + 1)) - logit(global) ≈ the count's logit.
    """
    targets = np.asarray(targets, np.int64)
    labels = np.asarray(labels, np.float64)
    clicks = np.bincount(targets, labels, num_embeddings)[:num_embeddings]
    shows = np.bincount(targets, minlength=num_embeddings)[:num_embeddings]
    prior = float(np.clip(labels.mean() if len(labels) else 0.5, 1e-3, 1 - 1e-3))
    rate = (clicks + prior_strength * prior) / (shows + prior_strength)

    def logit(p):
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p) - np.log1p(-p)

    return logit(rate).astype(np.float32), float(logit(prior))


def fit_statistics_weights(stats, offset, labels, ridge: float = 1e-3, iterations: int = 25):
    """Logistic regression of the labels on the user statistics, the video logits as an offset.

    Newton's method on 5 parameters (hand-written: a solver dependency for a 5x5 system is not
    worth it): minimises mean BCE(labels, offset + stats @ w + b) + ridge/2 * |w|^2.

    Args:
      stats: float [R, NUM_STATISTICS] `history_statistics` of the training rows.
      offset: float [R] the rest of the logit (the video's count logit).
      labels: [R] 0/1.

    Returns:
      (float32 [NUM_STATISTICS, 1] weights, float32 [1] bias).
    """
    x = np.concatenate([np.asarray(stats, np.float64), np.ones((len(stats), 1))], axis=1)
    y, offset = np.asarray(labels, np.float64), np.asarray(offset, np.float64)
    penalty = np.diag([ridge] * (x.shape[1] - 1) + [0.0])
    theta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(offset + x @ theta)))
        gradient = x.T @ (p - y) / len(y) + penalty @ theta
        hessian = (x * (p * (1 - p))[:, None]).T @ x / len(y) + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(theta)), gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:-1, None].astype(np.float32), theta[-1:].astype(np.float32)


class WideLogit(tf.keras.layers.Layer):
    """logit_wide = b_v + w · history_statistics (both optional).

    Args:
      num_embeddings: Rows of the video table (1 + vocab_size + num_oov_buckets).
      item_bias: Learn a scalar bias per video (initialised at 0).
      user_statistics: Use `history_statistics` (needs the non-click history).
      l2: L2 rate on the biases of the looked-up videos and on w.
    """

    def __init__(
        self, num_embeddings: int, item_bias: bool, user_statistics: bool, l2=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.l2 = float(l2)
        self.bias = (
            tf.keras.layers.Embedding(
                int(num_embeddings), 1, embeddings_initializer="zeros", name="video_bias"
            )
            if item_bias
            else None
        )
        self.statistics = (
            tf.keras.layers.Dense(
                1,
                kernel_initializer="zeros",
                kernel_regularizer=tf.keras.regularizers.L2(self.l2) if self.l2 else None,
                name="history_statistics",
            )
            if user_statistics
            else None
        )

    def call(self, candidates: tf.Tensor, features=None) -> tf.Tensor:
        """Wide logits of `candidates` (int [B] or [B, C]); same shape as `candidates`.

        Args:
          candidates: Video indices, [B] or [B, C].
          features: The model inputs (`history_counts` reads them) when user statistics are on.
        """
        out = tf.zeros(tf.shape(candidates), tf.float32)
        if self.bias is not None:
            out += tf.squeeze(self.bias(tf.cast(candidates, tf.int32)), axis=-1)
        if self.statistics is not None:
            clicks, nonclicks = history_counts(features)
            stats = history_statistics(
                clicks, nonclicks, recent_clicks(features, clicks, nonclicks)
            )
            user = tf.squeeze(self.statistics(stats), -1)
            out += tf.reshape(user, tf.concat([tf.shape(user), tf.ones_like(tf.shape(out)[1:])], 0))
        return out

    def warm_start(
        self, video_logits: np.ndarray, prior_logit: float, statistics_weights=None
    ) -> None:
        """Starts at the user + video count (`count_logits`): training begins where it ends.

        Args:
          video_logits / prior_logit: `count_logits`.
          statistics_weights: Optional (kernel, bias) of the statistics term
            (`fit_statistics_weights`) instead of the count's (0, 0, 1, 0) and -prior_logit.
        """
        if self.bias is not None:
            if not self.bias.built:
                self.bias.build(None)
            self.bias.embeddings.assign(np.asarray(video_logits, np.float32)[:, None])
        if self.statistics is not None:
            if not self.statistics.built:
                self.statistics.build((None, NUM_STATISTICS))
            # Only the lifetime rate's logit: the count's solution (the rest is learned).
            self.statistics.kernel.assign(np.array([[0.0], [0.0], [1.0], [0.0]], np.float32))
            offset = 0.0 if self.bias is None else -prior_logit
            self.statistics.bias.assign(np.array([offset], np.float32))
            if statistics_weights is not None:
                self.statistics.kernel.assign(statistics_weights[0])
                self.statistics.bias.assign(statistics_weights[1])

    def bias_l2(self, candidates: tf.Tensor) -> tf.Tensor:
        """L2 of the looked-up biases (per batch, as for the video embeddings)."""
        if self.bias is None or not self.l2:
            return tf.constant(0.0)
        return self.l2 * tf.reduce_sum(tf.square(self.bias(tf.cast(candidates, tf.int32))))
