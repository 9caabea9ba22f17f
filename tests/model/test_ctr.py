"""CTRHead (Eq 13) against NumPy, for [B] and [B, C] inputs."""

import numpy as np
import tensorflow as tf

from tf_ccl4rec.layers import CTRHead


def _np_head(head, u, v):
    proj = v @ head.w4.numpy()
    x = np.concatenate([u, proj, u * proj], -1)
    for layer in head._hidden:
        k, b = (w.numpy() for w in layer.weights)
        x = np.maximum(x @ k + b, 0)
    k, b = (w.numpy() for w in head._out.weights)
    return (x @ k + b)[..., 0]


def test_ctr_head_matches_eq13():
    rng = np.random.default_rng(0)
    head = CTRHead(4, mlp_units=(8, 3))
    u = rng.normal(size=(5, 4)).astype(np.float32)
    v = rng.normal(size=(5, 6)).astype(np.float32)
    got = head(tf.constant(u), tf.constant(v)).numpy()
    assert got.shape == (5,)
    np.testing.assert_allclose(got, _np_head(head, u, v), atol=1e-5)
    assert not head._w4.use_bias


def test_ctr_head_many_candidates():
    rng = np.random.default_rng(1)
    head = CTRHead(4, mlp_units=(8,))
    u = rng.normal(size=(3, 2, 4)).astype(np.float32)
    v = rng.normal(size=(3, 2, 6)).astype(np.float32)
    got = head(tf.constant(u), tf.constant(v)).numpy()
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, _np_head(head, u, v), atol=1e-5)
