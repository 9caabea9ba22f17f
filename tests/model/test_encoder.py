"""SequenceEncoder (Eq 6-7) against NumPy, with padding, empty and single-item histories."""

import numpy as np
import tensorflow as tf
from np_reference import np_masked_softmax

from tf_ccl4rec.layers import BehaviorScorer, SequenceEncoder

B, N, D, U = 4, 7, 6, 5


def _np_encode(seq, alpha_ij, alpha_t, mask, w3):
    proj = seq @ w3
    row_w = np_masked_softmax(alpha_ij, np.broadcast_to(mask[:, None, :], alpha_ij.shape))
    v_hat = row_w @ proj
    w = np_masked_softmax(alpha_t, mask)
    return (v_hat * w[..., None]).sum(1)


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.normal(size=(B, N, D)).astype(np.float32)
    lengths = np.array([N, 4, 1, 0])
    mask = np.arange(N)[None, :] < lengths[:, None]
    scorer, encoder = BehaviorScorer(U), SequenceEncoder(U)
    alpha_ij, alpha_t = scorer(tf.constant(seq), tf.constant(mask))
    u = encoder(tf.constant(seq), alpha_ij, alpha_t, tf.constant(mask))
    return seq, mask, scorer, encoder, alpha_ij.numpy(), alpha_t.numpy(), u.numpy()


def test_encoder_matches_eq6_eq7():
    seq, mask, _, encoder, alpha_ij, alpha_t, u = _setup()
    expected = _np_encode(seq, alpha_ij, alpha_t, mask, encoder.w3.numpy())
    assert u.shape == (B, U)
    np.testing.assert_allclose(u, expected, atol=1e-5)
    assert not encoder._w3.use_bias


def test_empty_and_single_item_histories():
    seq, _, _, encoder, _, _, u = _setup(1)
    np.testing.assert_allclose(u[2], seq[2, 0] @ encoder.w3.numpy(), atol=1e-5)
    assert np.all(u[3] == 0)
    assert np.all(np.isfinite(u))


def test_padding_values_never_leak():
    seq, mask, scorer, encoder, *_, u = _setup(2)
    noisy = seq.copy()
    noisy[~mask] = 1e3 * np.random.default_rng(0).normal(size=noisy[~mask].shape)
    alpha_ij, alpha_t = scorer(tf.constant(noisy), tf.constant(mask))
    u2 = encoder(tf.constant(noisy), alpha_ij, alpha_t, tf.constant(mask)).numpy()
    np.testing.assert_allclose(u2, u, atol=1e-5)


def test_scaled_scores_option_divides_before_the_softmaxes():
    seq, mask, _, _, alpha_ij, alpha_t, _ = _setup(3)
    encoder = SequenceEncoder(U, scaled_scores=True)
    u = encoder(tf.constant(seq), tf.constant(alpha_ij), tf.constant(alpha_t), tf.constant(mask))
    n_real = np.maximum(mask.sum(-1, keepdims=True), 1)
    expected = _np_encode(
        seq, alpha_ij / np.sqrt(D), alpha_t / (np.sqrt(D) * n_real), mask, encoder.w3.numpy()
    )
    np.testing.assert_allclose(u.numpy(), expected, atol=1e-5)
