"""The wide logit: a per-video click bias and the user's click statistics (lifetime and recent).

Not in the paper (see the NOTE in `tf_ccl4rec/config.py`). Eq 13 sees the history only through
attention-pooled vectors, which are averages: how often this user clicks, and how often this video
is clicked, are not recoverable from them. On real exposure logs those two counts alone rank well
(MovieLens: AUC 0.77), so the model gets them as an additive logit, like the wide part of
Wide & Deep; the deep part (Eq 1-13) models what the counts cannot. The user's click rate over
the latest exposures (`F.RECENT_WINDOW`) adds what the lifetime rate misses: on MovieLens a user's
later ratings are lower (train click rate 0.56, eval 0.45), which the recent rate follows.
The user's click rate in the candidate's category (`category_statistics`, from the raw log's
category column) is the other thing an average of the history loses: a user who clicks most of
the comedies shown and few of the dramas has one blended vector, not two rates.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_ccl4rec import features as F

NUM_STATISTICS = 4  # columns of `history_statistics`
NUM_CATEGORY_STATISTICS = 3  # columns of `category_statistics`


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


def category_statistics(
    click_history,
    nonclick_history,
    candidates,
    category_of,
    num_categories,
    candidates_are_categories=False,
):
    """The user's clicks and non-clicks in each candidate's category, float32 [..., 3].

    Counted over the id histories (the newest `max_history` clicks and non-clicks), not lifetime:
    with cc / cn the clicks / non-clicks of the candidate's category and wc / wn the real items of
    each history,

    [log1p(cc) - log1p(cn), log((cc + 1) / (wc + 2)) - log((cn + 1) / (wn + 2)), log1p(cc + cn)]

    i.e. the logit of the user's click rate in the category, the log ratio of the category's share
    of the clicks to its share of the non-clicks, and how much evidence there is. All 0 for a
    candidate without a category (index 0).

    Args:
      click_history / nonclick_history: int [B, N] video indices (PAD_ID = padding).
      candidates: int [B] or [B, C] video indices.
      category_of: int32 [num_embeddings] category index per video (0 = none; padding row 0).
      num_categories: Largest category index + 1.
      candidates_are_categories: `candidates` are category indices, not video indices (the
        statistics of every category at once, as the retrieval query needs).

    Returns:
      float32 [B, 3] or [B, C, 3] (the shape of `candidates` plus 3).
    """
    counts = []
    for ids in (click_history, nonclick_history):
        cats = tf.gather(category_of, tf.cast(ids, tf.int32))  # padding row -> 0
        # [B, K] histogram; category 0 (none, padding) is counted but never looked up.
        hist = tf.math.bincount(cats, minlength=num_categories, maxlength=num_categories, axis=-1)
        real = tf.reduce_sum(tf.cast(tf.not_equal(ids, F.PAD_ID), tf.float32), axis=-1)
        counts.append((tf.cast(hist, tf.float32), real))
    cand = tf.cast(candidates, tf.int32)
    flat = tf.reshape(cand, [tf.shape(cand)[0], -1])  # [B, C'] (C' = 1 for [B])
    cand_cat = flat if candidates_are_categories else tf.gather(category_of, flat)
    (hist_c, wc), (hist_n, wn) = counts
    cc = tf.gather(hist_c, cand_cat, batch_dims=1)  # [B, C']
    cn = tf.gather(hist_n, cand_cat, batch_dims=1)
    wc, wn = wc[:, None], wn[:, None]
    stats = tf.stack(
        [
            tf.math.log1p(cc) - tf.math.log1p(cn),
            tf.math.log((cc + 1.0) / (wc + 2.0)) - tf.math.log((cn + 1.0) / (wn + 2.0)),
            tf.math.log1p(cc + cn),
        ],
        axis=-1,
    )
    stats *= tf.cast(cand_cat > 0, tf.float32)[..., None]
    return tf.reshape(stats, tf.concat([tf.shape(cand), [NUM_CATEGORY_STATISTICS]], 0))


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

    Newton's method on k + 1 parameters (hand-written: a solver dependency for a system of 5 to 8
    unknowns is not worth it): minimises mean BCE(labels, offset + stats @ w + b) + ridge/2 * |w|^2.

    Args:
      stats: float [R, k] the wide statistics of the training rows (`WideLogit.statistics_of`).
      offset: float [R] the rest of the logit (the video's count logit).
      labels: [R] 0/1.

    Returns:
      (float32 [k, 1] weights, float32 [1] bias).
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
    """logit_wide = b_v + w · [history_statistics, category_statistics] (each optional).

    Args:
      num_embeddings: Rows of the video table (1 + vocab_size + num_oov_buckets).
      item_bias: Learn a scalar bias per video (initialised at 0).
      user_statistics: Use `history_statistics` (needs the non-click history).
      l2: L2 rate on the biases of the looked-up videos and on w.
      video_categories: Optional int [num_embeddings] category index per video (0 = none); with
        `user_statistics`, adds `category_statistics` of each candidate to the statistics.
    """

    def __init__(
        self,
        num_embeddings: int,
        item_bias: bool,
        user_statistics: bool,
        l2=0.0,
        video_categories=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.l2 = float(l2)
        self.category_of = None
        self.num_categories = 0
        if video_categories is not None and user_statistics:
            table = np.asarray(video_categories, np.int32)
            if table.shape != (int(num_embeddings),) or table.min(initial=0) < 0:
                raise ValueError(
                    f"video_categories must be int [{num_embeddings}] >= 0, got {table.shape}"
                )
            self.num_categories = int(table.max(initial=0)) + 1
            self.category_of = tf.Variable(table, trainable=False, name="video_category")
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
            out += tf.squeeze(self.statistics(self.statistics_of(candidates, features)), -1)
        return out

    @property
    def num_statistics(self) -> int:
        return NUM_STATISTICS + (NUM_CATEGORY_STATISTICS if self.category_of is not None else 0)

    def statistics_of(self, candidates: tf.Tensor, features) -> tf.Tensor:
        """The inputs of the statistics term, float32 [..., num_statistics] (`candidates`' shape):
        the user's `history_statistics`, then the candidate's `category_statistics` if any."""
        clicks, nonclicks = history_counts(features)
        user = history_statistics(clicks, nonclicks, recent_clicks(features, clicks, nonclicks))
        shape = tf.shape(candidates)
        user = tf.reshape(
            user, tf.concat([shape[:1], tf.ones_like(shape[1:]), [NUM_STATISTICS]], 0)
        )
        user = tf.broadcast_to(user, tf.concat([shape, [NUM_STATISTICS]], 0))
        if self.category_of is None:
            return user
        per_candidate = category_statistics(
            features[F.MODEL_CLICK_HISTORY],
            features[F.MODEL_NONCLICK_HISTORY],
            candidates,
            self.category_of,
            self.num_categories,
        )
        return tf.concat([user, per_candidate], axis=-1)

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
                self.statistics.build((None, self.num_statistics))
            # Only the lifetime rate's logit: the count's solution (the rest is learned).
            kernel = np.zeros((self.num_statistics, 1), np.float32)
            kernel[2, 0] = 1.0
            self.statistics.kernel.assign(kernel)
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
