"""The wide logit (item bias + history click statistics) against NumPy."""

import numpy as np
import tensorflow as tf

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.layers import WideLogit, history_statistics
from tf_ccl4rec.layers.wide import history_counts, recent_clicks
from tf_ccl4rec.model import CCL4RecModel


def test_history_counts_take_the_uncut_counts_and_never_less_than_the_histories():
    features = {
        F.MODEL_CLICK_HISTORY: np.array([[3, 4, 0], [0, 0, 0], [5, 6, 7]]),
        F.MODEL_NONCLICK_HISTORY: np.array([[1, 0], [2, 0], [0, 0]]),
        # Row 0: 40 clicks before the cut; row 2: a count below the history (a bad request).
        F.MODEL_CLICK_COUNT: np.array([40.0, 0.0, 1.0], np.float32),
        F.MODEL_NONCLICK_COUNT: np.array([9.0, 1.0, 0.0], np.float32),
    }
    clicks, nonclicks = history_counts(features)
    np.testing.assert_array_equal(clicks.numpy(), [40, 0, 3])
    np.testing.assert_array_equal(nonclicks.numpy(), [9, 1, 0])
    without = {k: v for k, v in features.items() if "count" not in k}
    clicks, nonclicks = history_counts(without)
    np.testing.assert_array_equal(clicks.numpy(), [2, 0, 3])


def test_history_statistics():
    # [log1p(c), log1p(n), log((c + 1) / (n + 1)), log((r + 1) / (w - r + 1))], w = min(10, c + n):
    # c = 3, n = 1, r = 1 -> w = 4: [log 4, log 2, log 2, log(2 / 4)];
    # c = 30, n = 20, r = 9 -> w = 10: [log 31, log 21, log(31 / 21), log(10 / 2)]; empty -> 0.
    got = history_statistics(
        tf.constant([3.0, 30.0, 0.0]), tf.constant([1.0, 20.0, 0.0]), tf.constant([1.0, 9.0, 0.0])
    ).numpy()
    want = [
        [np.log(4), np.log(2), np.log(2), np.log(0.5)],
        [np.log(31), np.log(21), np.log(31 / 21), np.log(5)],
        [0, 0, 0, 0],
    ]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_recent_clicks_are_clipped_to_the_window_or_follow_the_lifetime_rate_when_absent():
    clicks, nonclicks = tf.constant([30.0, 3.0, 0.0]), tf.constant([20.0, 1.0, 0.0])
    # Given: 9 of 10; 7 is more than the 4 exposures there are -> 4; nothing to count -> 0.
    given = {F.MODEL_RECENT_CLICK_COUNT: np.array([9.0, 7.0, 0.0], np.float32)}
    np.testing.assert_allclose(recent_clicks(given, clicks, nonclicks).numpy(), [9, 4, 0])
    # Absent: window * lifetime rate = 10 * 30 / 50 = 6; 4 * 3 / 4 = 3; 0.
    np.testing.assert_allclose(recent_clicks({}, clicks, nonclicks).numpy(), [6, 3, 0])


def test_wide_logit_is_the_bias_plus_the_weighted_statistics():
    layer = WideLogit(num_embeddings=6, item_bias=True, user_statistics=True, l2=0.5)
    features = {
        F.MODEL_CLICK_HISTORY: np.array([[1, 2, 0], [0, 0, 0]]),
        F.MODEL_NONCLICK_HISTORY: np.array([[3, 0], [0, 0]]),
        F.MODEL_CLICK_COUNT: np.array([7.0, 0.0], np.float32),
        F.MODEL_NONCLICK_COUNT: np.array([1.0, 0.0], np.float32),
        F.MODEL_RECENT_CLICK_COUNT: np.array([6.0, 0.0], np.float32),
    }
    candidates = np.array([[1, 4], [5, 0]])
    np.testing.assert_array_equal(layer(candidates, features).numpy(), 0)  # zero-initialised
    bias = np.array([0.0, 0.3, -0.2, 0.1, 0.5, -0.4], np.float32)
    w, b = np.array([[0.2], [-0.1], [0.7], [0.4]], np.float32), np.array([0.05], np.float32)
    layer.bias.set_weights([bias[:, None]])
    layer.statistics.set_weights([w, b])
    # Row 0: c = 7, n = 1, r = 6 of a window of 8 -> log(7 / 3).
    stats = np.array([[np.log(8), np.log(2), np.log(4), np.log(7 / 3)], [0, 0, 0, 0]])
    user = stats @ w[:, 0] + b[0]  # [2]
    np.testing.assert_allclose(
        layer(candidates, features).numpy(), bias[candidates] + user[:, None], rtol=1e-5
    )
    np.testing.assert_allclose(
        layer(np.array([4, 5]), features).numpy(), bias[[4, 5]] + user, rtol=1e-5
    )
    # L2 of the looked-up biases, per batch: 0.5 * (0.5^2 + (-0.4)^2).
    np.testing.assert_allclose(layer.bias_l2(np.array([4, 5])).numpy(), 0.5 * 0.41, rtol=1e-5)


def test_the_model_adds_the_wide_logit_to_every_sequence_and_candidate():
    config = CCL4RecConfig(vocab_size=20, embedding_dim=8, max_history=4, mlp_units=(8,),
                           num_substitutes=10, item_bias=True, history_statistics=True,
                           use_nonclick_sequence=True)  # fmt: skip
    model = CCL4RecModel(config)
    rng = np.random.default_rng(0)
    features = {
        F.MODEL_CLICK_HISTORY: rng.integers(0, 21, (3, 4)),
        F.MODEL_NONCLICK_HISTORY: rng.integers(0, 21, (3, 4)),
        F.MODEL_CLICK_COUNT: np.array([9.0, 2.0, 0.0], np.float32),
        F.MODEL_NONCLICK_COUNT: np.array([1.0, 5.0, 0.0], np.float32),
        F.MODEL_TARGET: np.array([1, 2, 3]),
    }
    before = model(features).numpy()
    model.wide.bias.set_weights([np.full((22, 1), 2.0, np.float32)])
    after = model(features).numpy()
    assert np.all(after > before)  # a higher bias raises every probability
    candidates = np.array([[1, 5], [2, 6], [3, 7]])
    scores = model.score_candidates(features, candidates).numpy()
    np.testing.assert_allclose(scores[:, 0], after, rtol=1e-5)
