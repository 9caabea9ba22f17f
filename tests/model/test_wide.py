"""The wide logit (item bias + history click statistics) against NumPy."""

import numpy as np
import tensorflow as tf

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.layers import WideLogit, history_statistics
from tf_ccl4rec.layers.wide import category_statistics, history_counts, recent_clicks
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


def _category_statistics_numpy(clicks, nonclicks, candidate, category_of):
    """Reference for one (user, candidate): counts by a Python loop over the histories."""
    cat = category_of[candidate]
    if cat == 0:
        return [0.0, 0.0, 0.0]
    cc = sum(1 for v in clicks if v != 0 and category_of[v] == cat)
    cn = sum(1 for v in nonclicks if v != 0 and category_of[v] == cat)
    wc, wn = sum(1 for v in clicks if v != 0), sum(1 for v in nonclicks if v != 0)
    return [np.log1p(cc) - np.log1p(cn),
            np.log((cc + 1) / (wc + 2)) - np.log((cn + 1) / (wn + 2)),
            np.log1p(cc + cn)]  # fmt: skip


def test_category_statistics_against_a_loop():
    # Videos 1..6; categories: 1, 2 -> a; 3, 4 -> b; 5 -> c; 6 -> none (0).
    category_of = np.array([0, 1, 1, 2, 2, 3, 0], np.int32)
    clicks = np.array([[1, 2, 3, 0], [0, 0, 0, 0], [5, 6, 1, 4]])
    nonclicks = np.array([[4, 3, 0], [1, 0, 0], [2, 0, 0]])
    candidates = np.array([[2, 4, 5, 6], [1, 3, 6, 5], [1, 3, 5, 0]])
    got = category_statistics(clicks, nonclicks, candidates, category_of, 4).numpy()
    # E.g. user 0, candidate 2 (category a): cc = 2, cn = 0, wc = 3, wn = 2 ->
    # [log 3, log(3 / 5) - log(1 / 4), log 3].
    np.testing.assert_allclose(got[0, 0], [np.log(3), np.log(3 / 5) - np.log(1 / 4), np.log(3)],
                               rtol=1e-6)  # fmt: skip
    want = [[_category_statistics_numpy(clicks[b], nonclicks[b], c, category_of)
             for c in candidates[b]] for b in range(3)]  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # One candidate per row ([B]) gives [B, 3].
    single = category_statistics(clicks, nonclicks, candidates[:, 0], category_of, 4).numpy()
    np.testing.assert_allclose(single, np.array(want)[:, 0], rtol=1e-5, atol=1e-6)


def test_wide_logit_adds_the_weighted_category_statistics_per_candidate():
    category_of = np.array([0, 1, 1, 2, 2, 0], np.int32)
    layer = WideLogit(6, item_bias=False, user_statistics=True, video_categories=category_of)
    assert layer.num_statistics == 7
    features = {
        F.MODEL_CLICK_HISTORY: np.array([[1, 2, 0], [3, 0, 0]]),
        F.MODEL_NONCLICK_HISTORY: np.array([[3, 0], [1, 4]]),
    }
    candidates = np.array([[1, 4, 5], [2, 3, 0]])
    layer(candidates, features)
    w = np.array([[0.2], [-0.1], [0.7], [0.4], [1.0], [0.5], [-0.3]], np.float32)
    layer.statistics.set_weights([w, np.array([0.1], np.float32)])
    # User statistics (no count inputs: the histories' lengths; recent = lifetime rate share).
    user = [[np.log(3), np.log(2), np.log(3 / 2), np.log(3 / 2)],  # c 2, n 1, r = 3 * 2/3 = 2
            [np.log(2), np.log(3), np.log(2 / 3), np.log(2 / 3)]]  # c 1, n 2, r = 1  # fmt: skip
    want = np.zeros((2, 3))
    for b in range(2):
        for j, c in enumerate(candidates[b]):
            stats = np.array(user[b] + _category_statistics_numpy(
                features[F.MODEL_CLICK_HISTORY][b], features[F.MODEL_NONCLICK_HISTORY][b], c,
                category_of))  # fmt: skip
            want[b, j] = stats @ w[:, 0] + 0.1
    np.testing.assert_allclose(layer(candidates, features).numpy(), want, rtol=1e-5)


def test_category_statistics_ride_on_the_history_statistics():
    import pytest

    # Without the history statistics there is no statistics term, so no category statistics.
    config = CCL4RecConfig(vocab_size=5, embedding_dim=8, max_history=4, mlp_units=(8,),
                           num_substitutes=3, item_bias=True, category_statistics=True)  # fmt: skip
    model = CCL4RecModel(config, video_categories=np.ones(7, np.int32))
    assert model.wide.statistics is None and model.wide.category_of is None
    with pytest.raises(ValueError, match="video_categories"):
        WideLogit(6, False, True, video_categories=np.zeros(5, np.int32))
