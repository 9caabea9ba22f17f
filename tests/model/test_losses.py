"""Objectives (Eq 9-12, 14-15) against loop-based NumPy computations."""

import numpy as np
import pytest
import tensorflow as tf
from np_reference import np_in_batch_retrieval_loss

from tf_ccl4rec import losses

SCALE, LOWER, UPPER = 2.0, 0.3, 1.2


def _margin(x):
    return np.clip(x * SCALE, LOWER, UPPER)


def _inputs(seed=0, b=5, np_=4, nn=3):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0, 2, (b, np_)).astype(np.float32),
        rng.uniform(0, 2, (b, nn)).astype(np.float32),
        rng.uniform(0, 0.5, (b, np_)).astype(np.float32),
        rng.uniform(0, 0.5, (b, nn)).astype(np.float32),
        (rng.uniform(size=b) > 0.3).astype(np.float32),
    )


def test_adaptive_margin_clips():
    x = np.array([-1.0, 0.1, 0.3, 0.5, 2.0], np.float32)
    got = losses.adaptive_margin(tf.constant(x), SCALE, LOWER, UPPER).numpy()
    np.testing.assert_allclose(got, _margin(x), atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_ccl_loss_eq10(weighted):
    d_pos, d_neg, a_pos, a_neg, w = _inputs(1)
    per_row = np.array(
        [
            sum(
                max(d_pos[b, i] - d_neg[b, j] + _margin(a_pos[b, i] + a_neg[b, j]), 0)
                for i in range(d_pos.shape[1])
                for j in range(d_neg.shape[1])
            )
            for b in range(d_pos.shape[0])
        ]
    )
    expected = (per_row * w).sum() / w.sum() if weighted else per_row.mean()
    got = losses.ccl_loss(
        d_pos, d_neg, a_pos, a_neg, SCALE, LOWER, UPPER, sample_weight=w if weighted else None
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_ccl_positive_loss_eq12():
    d_pos, _, a_pos, _, w = _inputs(2)
    a_pos[0, 1] = a_pos[0, 2]  # a tie contributes nothing (strict a_k < a_i)
    per_row = []
    for b in range(d_pos.shape[0]):
        total = 0.0
        for i in range(d_pos.shape[1]):
            for k in range(d_pos.shape[1]):
                if a_pos[b, k] < a_pos[b, i]:
                    total += max(d_pos[b, i] - d_pos[b, k] + _margin(a_pos[b, i] - a_pos[b, k]), 0)
        per_row.append(total)
    expected = (np.array(per_row) * w).sum() / w.sum()
    got = losses.ccl_positive_loss(d_pos, a_pos, SCALE, LOWER, UPPER, sample_weight=w)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_ccl_negative_loss_pushes_harder_negatives_farther():
    _, d_neg, _, a_neg, _ = _inputs(3)
    per_row = []
    for b in range(d_neg.shape[0]):
        total = 0.0
        for j in range(d_neg.shape[1]):
            for k in range(d_neg.shape[1]):
                if a_neg[b, k] < a_neg[b, j]:
                    total += max(d_neg[b, k] - d_neg[b, j] + _margin(a_neg[b, j] - a_neg[b, k]), 0)
        per_row.append(total)
    got = losses.ccl_negative_loss(d_neg, a_neg, SCALE, LOWER, UPPER)
    np.testing.assert_allclose(got.numpy(), np.mean(per_row), rtol=1e-5, atol=1e-5)
    # Well-separated, correctly ordered negatives cost nothing.
    ordered = losses.ccl_negative_loss(
        np.array([[0.0, 1.5, 3.0]], np.float32),
        np.array([[0.0, 0.1, 0.2]], np.float32),
        SCALE,
        LOWER,
        UPPER,
    )
    assert ordered.numpy() == 0.0


def _np_cui(scores, labels, users):
    vals = []
    for u in np.unique(users):
        s, y = scores[users == u], labels[users == u]
        if y.max() > 0 and y.min() == 0:
            vals.append(-np.log(np.exp(s[y == 1]).sum() / np.exp(s).sum()))
    return (np.mean(vals) if vals else 0.0), len(vals) / len(np.unique(users))


def test_cui_loss_eq15():
    rng = np.random.default_rng(4)
    m = 40
    scores = rng.normal(size=m).astype(np.float32)
    users = rng.integers(100, 110, m)
    labels = (rng.uniform(size=m) > 0.6).astype(np.float32)
    labels[users == users[0]] = 1.0  # one user with only positives does not count
    expected, frac = _np_cui(scores, labels, users)
    loss, got_frac = losses.cui_loss(scores, labels, users, return_fraction=True)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(got_frac.numpy(), frac, rtol=1e-6)
    assert frac < 1.0


def test_cui_loss_is_zero_without_mixed_users():
    loss = losses.cui_loss(
        np.array([0.2, 0.9, 0.1], np.float32), np.array([1.0, 1.0, 0.0]), np.array([1, 1, 2])
    )
    assert loss.numpy() == 0.0


def test_mixture_cross_entropy_matches_numpy():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(6, 3)).astype(np.float32) * 4
    labels = (rng.uniform(size=6) > 0.5).astype(np.float32)
    w = rng.uniform(size=6).astype(np.float32)
    p = (1 / (1 + np.exp(-logits))).mean(-1)
    per = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    got = losses.binary_cross_entropy(labels, logits, w).numpy()
    np.testing.assert_allclose(got, (per * w).sum() / w.sum(), rtol=1e-5)
    # Saturated logits stay finite.
    assert np.isfinite(losses.binary_cross_entropy([1.0], [[-200.0, -300.0]]).numpy())


def test_distances_on_unit_hypersphere():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(2, 4, 5)).astype(np.float32)
    an = a / np.linalg.norm(a, axis=-1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        losses.cosine_distance(a, b).numpy(), 1 - (an * bn).sum(-1), atol=1e-5
    )
    np.testing.assert_allclose(
        losses.euclidean_distance(a, b).numpy(), np.linalg.norm(an - bn, axis=-1), atol=1e-5
    )


def test_in_batch_retrieval_loss_matches_numpy():
    rng = np.random.default_rng(3)
    b, d = 12, 4
    queries = rng.normal(size=(b, d)).astype(np.float32)
    candidates = rng.normal(size=(b, d)).astype(np.float32)
    ids = rng.integers(1, 6, b)  # repeats: accidental hits
    users = rng.integers(0, 4, b)  # several rows per user
    labels = (rng.uniform(size=b) > 0.3).astype(np.float32)
    got = losses.in_batch_retrieval_loss(queries, candidates, ids, users, labels).numpy()
    want = np_in_batch_retrieval_loss(queries, candidates, ids, users, labels)
    assert want > 0
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Gradients stay finite with removed columns.
    q = tf.Variable(queries)
    with tf.GradientTape() as tape:
        loss = losses.in_batch_retrieval_loss(q, candidates, ids, users, labels)
    assert np.all(np.isfinite(tape.gradient(loss, q).numpy()))


def test_in_batch_retrieval_loss_is_zero_without_clicks_or_others():
    q = np.ones((3, 2), np.float32)
    no_clicks = losses.in_batch_retrieval_loss(q, q, [1, 2, 3], [0, 1, 2], [0, 0, 0])
    assert no_clicks.numpy() == 0.0
    # One user's rows only: every other column is removed, each row's softmax is over itself.
    one_user = losses.in_batch_retrieval_loss(q, q, [1, 2, 3], [5, 5, 5], [1, 1, 1])
    assert one_user.numpy() == pytest.approx(0.0, abs=1e-6)
