"""BehaviorScorer (Eq 1-3) and the masked softmax against NumPy."""

import numpy as np
import tensorflow as tf
from np_reference import np_masked_softmax

from tf_ccl4rec.layers import BehaviorScorer, masked_softmax

B, N, D, U, NZ = 3, 6, 5, 4, 7


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.normal(size=(B, N, D)).astype(np.float32)
    lengths = np.array([N, 3, 0])
    mask = np.arange(N)[None, :] < lengths[:, None]
    return rng, seq, mask


def _built_scorer(seq):
    scorer = BehaviorScorer(U)
    scorer(tf.constant(seq), tf.ones(seq.shape[:2], tf.bool))
    return scorer, scorer.w1.numpy(), scorer.w2.numpy()


def test_pairwise_is_eq1():
    _, seq, _ = _inputs()
    scorer, w1, w2 = _built_scorer(seq)
    expected = np.einsum("biu,bju->bij", seq @ w1, seq @ w2)
    np.testing.assert_allclose(scorer.pairwise(tf.constant(seq)).numpy(), expected, atol=1e-5)
    assert not scorer._w1.use_bias and not scorer._w2.use_bias


def test_importance_sums_real_items_only():
    _, seq, mask = _inputs(1)
    scorer, w1, w2 = _built_scorer(seq)
    alpha_ij = np.einsum("biu,bju->bij", seq @ w1, seq @ w2)
    expected = np.where(mask, (alpha_ij * mask[:, None, :]).sum(-1), 0.0)
    got = scorer.importance(tf.constant(alpha_ij), tf.constant(mask)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_relatedness_is_eq3():
    rng, seq, _ = _inputs(2)
    subs = rng.normal(size=(NZ, D)).astype(np.float32)
    scorer, w1, w2 = _built_scorer(seq)
    expected = np.einsum("bnu,ku->bnk", seq @ w1, subs @ w2)
    got = scorer.relatedness(tf.constant(seq), tf.constant(subs)).numpy()
    assert got.shape == (B, N, NZ)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_masked_softmax_matches_numpy_and_handles_empty_rows():
    rng, _, mask = _inputs(3)
    logits = rng.normal(size=(B, N)).astype(np.float32) * 3
    got = masked_softmax(tf.constant(logits), tf.constant(mask)).numpy()
    np.testing.assert_allclose(got, np_masked_softmax(logits, mask), atol=1e-6)
    assert np.all(got[~mask] == 0)
    assert np.all(got[2] == 0)  # no real item: zeros, not NaN
    np.testing.assert_allclose(got[:2].sum(-1), 1.0, atol=1e-6)


def test_masked_softmax_gradient_is_finite_for_empty_rows():
    logits = tf.Variable(tf.random.normal([2, 4]))
    mask = tf.constant([[True, True, False, False], [False] * 4])
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(masked_softmax(logits, mask) * tf.range(4, dtype=tf.float32))
    grad = tape.gradient(out, logits).numpy()
    assert np.all(np.isfinite(grad))
    assert np.all(grad[1] == 0) and np.all(grad[0, 2:] == 0)
