"""The batched two-stage substitute sampler (aug.draw_substitutes + aug.sample_substitutes).

Checked against the exact mixture (1 - t)·softmax(-beta_m) + t·softmax(beta_m) written with
NumPy: marginal frequencies (chi-square), independence of draws that share a position, and the
hardness normalisers.
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tf_ccl4rec import augmentation as aug


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _draw(beta_row, positions, t, rows, column_offset=0, num_columns=None, seed=0):
    """Substitutes [rows, S, Nr] for `rows` copies of one history's beta [N, Nz]."""
    tf.random.set_seed(seed)
    beta = np.repeat(beta_row[None], rows, 0).astype(np.float32)
    pos = np.repeat(np.asarray(positions, np.int32)[None], rows, 0)
    num_columns = num_columns or column_offset + pos.shape[1]
    draws = aug.draw_substitutes(tf.constant(beta), tf.constant(t), num_columns)
    got = aug.sample_substitutes(None, tf.constant(pos), tf.constant(t), draws, column_offset)
    return got.numpy(), draws


# Nz = 12: blocks of 3 (two stages); Nz = 7 (prime): one stage.
@pytest.mark.parametrize("nz", [12, 7])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_marginals_match_the_exact_mixture(nz, t):
    rng = np.random.default_rng(nz)
    beta_row = rng.normal(size=(3, nz)) * 1.5
    positions = [[0, 2], [1, 0]]  # [S=2, Nr=2], distinct within each sample
    rows = 6000
    got, _ = _draw(beta_row, positions, t, rows, seed=nz)
    for s, r in np.ndindex(2, 2):
        m = positions[s][r]
        expected = (1 - t) * _np_softmax(-beta_row[m]) + t * _np_softmax(beta_row[m])
        counts = np.bincount(got[:, s, r], minlength=nz)
        assert counts.sum() == rows and got.max() < nz
        keep = expected > 0
        p = stats.chisquare(counts[keep], expected[keep] * rows).pvalue
        print(f"nz={nz} t={t} sample={s} item={r} chi-square p={p:.3g}")
        assert p > 1e-4


def test_draws_sharing_a_position_are_independent():
    """Sample 0 and sample 1 both replace position 1; so do the positives and negatives when
    their candidate sets overlap (ties): their draws must be independent."""
    rng = np.random.default_rng(3)
    nz = 9
    beta_row = rng.normal(size=(2, nz)) * 1.5
    rows = 8000
    pos = [[1], [1]]
    t = 0.5
    positives, draws = _draw(beta_row, pos, t, rows, num_columns=4, seed=4)
    tf.random.set_seed(5)
    negatives = aug.sample_substitutes(
        None, tf.constant(np.full((rows, 2, 1), 1, np.int32)), tf.constant(t), draws, 2
    ).numpy()
    for a, b in (
        (positives[:, 0, 0], positives[:, 1, 0]),
        (positives[:, 0, 0], negatives[:, 0, 0]),
    ):
        table = np.zeros((nz, nz))
        np.add.at(table, (a, b), 1)
        table = table[table.sum(1) > 0][:, table.sum(0) > 0]
        p = stats.chi2_contingency(table).pvalue
        print(f"independence chi-square p={p:.3g}, identical draws {np.mean(a == b):.3f}")
        assert p > 1e-4
    # Reading one column twice would make the two draws always equal.
    expected_equal = np.sum(((_np_softmax(-beta_row[1]) + _np_softmax(beta_row[1])) / 2) ** 2)
    assert np.mean(positives[:, 0, 0] == positives[:, 1, 0]) < expected_equal + 0.05


def test_too_few_columns_is_an_error():
    draws = aug.draw_substitutes(tf.zeros([1, 3, 4]), tf.constant(0.5), 2)
    with pytest.raises(ValueError, match="columns"):
        aug.sample_substitutes(None, tf.zeros([1, 2, 1], tf.int32), tf.constant(0.5), draws, 1)


@pytest.mark.parametrize("nz", [12, 7])
def test_normalisers_and_hardness_match_the_direct_computation(nz):
    rng = np.random.default_rng(nz + 1)
    beta = (rng.normal(size=(2, 4, nz)) * 3).astype(np.float32)
    for t in (tf.constant(0.4), None):
        draws = aug.draw_substitutes(beta, t, 3)
        np.testing.assert_allclose(
            draws.log_norm_related.numpy(), np.log(np.exp(beta).sum(-1)), rtol=1e-5
        )
        np.testing.assert_allclose(
            draws.log_norm_unrelated.numpy(), np.log(np.exp(-beta).sum(-1)), rtol=1e-5
        )
    alpha_t = rng.normal(size=(2, 4)).astype(np.float32)
    mask = np.array([[True] * 4, [True, True, True, False]])
    rep = np.array([[0, 3], [2, 1]])
    sub = rng.integers(0, nz, (2, 2))
    for positive in (True, False):
        direct = aug.hardness(alpha_t, beta, rep, sub, mask, positive)
        cached = aug.hardness(
            alpha_t, beta, rep, sub, mask, positive, log_norm=draws.log_norm(positive)
        )
        np.testing.assert_allclose(cached.numpy(), direct.numpy(), rtol=1e-5)


@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("scale", [3.0, 60.0])  # spans below and above aug.ONE_EXP_SPAN
def test_block_masses_of_both_signs_match_numpy(scale, bounded):
    """One exp per item (its reciprocal for the other sign; centred on the row or, with a small
    bound of |logits|, not shifted) or one per sign: the same block probabilities and normalisers
    (a block below float32's range has probability 0)."""
    rng = np.random.default_rng(11)
    logits = (rng.normal(size=(5, 12)) * scale).astype(np.float32)
    span = logits.max(-1) - logits.min(-1)
    assert np.all(span <= aug.ONE_EXP_SPAN) == (scale == 3.0)
    bound = tf.constant(np.abs(logits).max()) if bounded else None
    got = aug._log_block_sums_both_signs(tf.constant(logits), 3, bound)
    for (log_sums, lse), sign in zip(got, (1.0, -1.0), strict=True):
        signed = sign * logits.astype(np.float64)
        top = signed.max(-1, keepdims=True)
        masses = np.exp(signed - top).reshape(5, 4, 3).sum(-1)
        probs = np.exp(log_sums.numpy() - lse.numpy()[:, None])
        # float32 log sums of magnitude ~100 carry ~1e-5 relative error into the probabilities.
        np.testing.assert_allclose(
            probs, masses / masses.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(lse.numpy(), np.log(masses.sum(-1)) + top[:, 0], rtol=1e-6)


def test_distinct_rows_map_every_position_to_its_items_first_occurrence():
    ids = np.array([[5, 0, 7, 5], [7, 7, 0, 9]])
    first, rows = aug.distinct_rows(tf.constant(ids))
    first, rows = first.numpy(), rows.numpy()
    # Distinct ids in order of appearance: 5 (flat 0), 0 (1), 7 (2), 9 (7).
    np.testing.assert_array_equal(first, [0, 1, 2, 7])
    np.testing.assert_array_equal(rows, [[0, 1, 2, 0], [2, 2, 1, 3]])
    np.testing.assert_array_equal(ids.reshape(-1)[first][rows], ids)


def _hardness(alpha_t, draws, positions, substitutes, positive, **normaliser):
    """Eq 4-5 on the rows of `draws`, every position real."""
    mask = np.ones(alpha_t.shape, bool)
    return aug.hardness(
        alpha_t, draws.beta, positions, substitutes, mask, positive, rows=draws.rows, **normaliser
    ).numpy()


# Nz = 12: blocks of 3 (two stages); Nz = 7 (prime): one stage.
@pytest.mark.parametrize("nz", [12, 7])
def test_distinct_rows_give_the_draws_and_hardness_of_the_full_relatedness(nz):
    """Positions that hold the same item share a row of beta: the draws (same seed), the
    normalisers and Eq 4-5 equal those computed on the full [B, N, Nz] beta."""
    rng = np.random.default_rng(nz + 2)
    ids = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])  # 1, 3 and 5 repeat
    table = (rng.normal(size=(10, nz)) * 2).astype(np.float32)  # beta row of each item
    full = table[ids]  # [B, N, Nz]
    first, rows = aug.distinct_rows(tf.constant(ids))
    distinct = tf.gather(tf.reshape(full, [-1, nz]), first)  # [R, Nz], R = 7
    assert distinct.shape[0] == 7
    positions = tf.constant([[[0, 3], [1, 2]], [[4, 0], [2, 1]]], tf.int32)  # [B, S, Nr]
    t = tf.constant(0.4)
    alpha_t = rng.normal(size=ids.shape).astype(np.float32)
    got = {}
    for name, beta, row_map in (("full", full, None), ("distinct", distinct, rows)):
        tf.random.set_seed(11)
        draws = aug.draw_substitutes(beta, t, 4, rows=row_map)
        subs = aug.sample_substitutes(None, positions, t, draws, column_offset=1)
        scores = [
            _hardness(alpha_t, draws, positions, subs, p, log_norm=draws.log_norm(p))
            for p in (True, False)
        ]
        for positive, cached in zip((True, False), scores, strict=True):
            # Without the cached normaliser: logsumexp from the rows of beta.
            uncached = _hardness(alpha_t, draws, positions, subs, positive)
            np.testing.assert_allclose(uncached, cached, rtol=1e-5)
        got[name] = (draws, subs.numpy(), scores)
    (d_full, s_full, h_full), (d_dist, s_dist, h_dist) = got["full"], got["distinct"]
    np.testing.assert_array_equal(s_dist, s_full)
    np.testing.assert_array_equal(d_dist.related.numpy(), d_full.related.numpy())
    for positive in (True, False):
        want = np.log(np.exp((-1 if positive else 1) * full).sum(-1))
        np.testing.assert_allclose(d_dist.log_norm(positive).numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(h_dist, h_full, rtol=1e-6)
