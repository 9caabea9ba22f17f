"""Hardness (Eq 4-5), its stop-gradient, the replacement sampling and the strategies of §3.5."""

import types

import numpy as np
import pytest
import tensorflow as tf
from np_reference import np_masked_softmax

from tf_ccl4rec import augmentation as aug
from tf_ccl4rec.layers import BehaviorScorer, masked_softmax
from tf_ccl4rec.losses import adaptive_margin

CFG = types.SimpleNamespace(filter_fraction=0.5, replace_fraction=0.5, min_augment_history=2)


def _np_hardness(alpha_t, beta, rep, sub, mask, positive, valid):
    s = -1.0 if positive else 1.0
    imp = np_masked_softmax(s * alpha_t, mask)
    rel = np_masked_softmax(s * beta)
    out = np.zeros(rep.shape[:-1])
    for idx in np.ndindex(rep.shape):
        b = idx[0]
        if valid[idx]:
            out[idx[:-1]] += imp[b, rep[idx]] * rel[b, rep[idx], sub[idx]]
    return out


def _scores(seed, b=4, n=8, nz=6):
    rng = np.random.default_rng(seed)
    lengths = np.array([n, 5, 3, 2][:b])
    mask = np.arange(n)[None, :] < lengths[:, None]
    alpha_t = np.where(mask, rng.normal(size=(b, n)) * 2, 0).astype(np.float32)
    beta = (rng.normal(size=(b, n, nz)) * 2).astype(np.float32)
    rep = np.stack([rng.choice(lengths[i], 2, replace=False) for i in range(b)])
    sub = rng.integers(0, nz, (b, 2))
    valid = np.ones((b, 2), bool)
    valid[3, 1] = False
    return alpha_t, beta, rep, sub, mask, valid


@pytest.mark.parametrize("positive", [False, True])
def test_hardness_matches_eq4_eq5(positive):
    alpha_t, beta, rep, sub, mask, valid = _scores(0)
    got = aug.hardness(alpha_t, beta, rep, sub, mask, positive, replaced_mask=valid).numpy()
    expected = _np_hardness(alpha_t, beta, rep, sub, mask, positive, valid)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    no_mask = aug.hardness(alpha_t, beta, rep, sub, mask, positive).numpy()
    expected_all = _np_hardness(alpha_t, beta, rep, sub, mask, positive, np.ones_like(valid))
    np.testing.assert_allclose(no_mask, expected_all, atol=1e-5)


def test_hardness_with_sample_axis():
    alpha_t, beta, rep, sub, mask, valid = _scores(1)
    rep3, sub3, valid3 = (np.stack([x, x[:, ::-1]], 1) for x in (rep, sub, valid))
    got = aug.hardness(alpha_t, beta, rep3, sub3, mask, False, valid3).numpy()
    np.testing.assert_allclose(
        got, _np_hardness(alpha_t, beta, rep3, sub3, mask, False, valid3), atol=1e-5
    )


def test_margin_has_exactly_zero_gradient_wrt_w1_w2():
    rng = np.random.default_rng(2)
    seq = tf.constant(rng.normal(size=(3, 6, 5)), tf.float32)
    subs = tf.constant(rng.normal(size=(7, 5)), tf.float32)
    mask = tf.constant(np.arange(6)[None] < np.array([[6], [4], [2]]))
    rep = tf.constant([[0, 1], [2, 3], [0, 1]])
    sub = tf.constant([[1, 2], [3, 4], [5, 6]])
    scorer = BehaviorScorer(4)
    with tf.GradientTape(persistent=True) as tape:
        _, alpha_t = scorer(seq, mask)
        beta = scorer.relatedness(seq, subs)
        a_pos = aug.hardness(alpha_t, beta, rep, sub, mask, True)
        a_neg = aug.hardness(alpha_t, beta, rep, sub, mask, False)
        # Unclipped margins (Eq 9 and Eq 11) so only the stop-gradient can zero them.
        margin = adaptive_margin(a_pos + a_neg, 10.0, -1e9, 1e9)
        margin_diff = adaptive_margin(a_pos - a_neg, 10.0, -1e9, 1e9)
        control = tf.reduce_sum(masked_softmax(alpha_t, mask)[:, :2] * beta[:, :2, 0])
    weights = [scorer.w1, scorer.w2]
    for target in (margin, margin_diff):
        for grad in tape.gradient(target, weights):
            assert grad is None or np.all(grad.numpy() == 0)
    # The same scores without stop_gradient do reach W1/W2 (the check above can fail).
    assert all(np.any(g.numpy() != 0) for g in tape.gradient(control, weights))


def test_replacement_counts_half_of_half():
    mask = tf.constant(np.arange(10)[None] < np.array([[10], [9], [4], [3], [2], [1], [0]]))
    cand, rep = aug.replacement_counts(mask, 0.5, 0.5, 2)
    n = np.array([10, 9, 4, 3, 2, 1, 0])
    exp_cand = np.where(n >= 2, np.maximum(1, n // 2), 0)
    exp_rep = np.where(n >= 2, np.maximum(1, exp_cand // 2), 0)
    np.testing.assert_array_equal(cand.numpy(), exp_cand)
    np.testing.assert_array_equal(rep.numpy(), exp_rep)


@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("strategy", ["random", "harder", "easier", "easy2hard"])
def test_sampled_positions_are_real_candidates(positive, strategy):
    tf.random.set_seed(3)
    rng = np.random.default_rng(3)
    n = 12
    lengths = np.array([12, 9, 5, 2, 1, 0])
    mask = np.arange(n)[None] < lengths[:, None]
    alpha_t = np.where(mask, rng.normal(size=mask.shape), 0).astype(np.float32)
    t = aug.strategy_hard_weight(strategy, 0.5)
    positions, valid, n_rep = aug.sample_positions(alpha_t, tf.constant(mask), 5, positive, t, CFG)
    positions, valid = positions.numpy(), valid.numpy()
    assert positions.shape[:2] == (6, 5)
    for b, length in enumerate(lengths):
        n_cand = max(1, length // 2) if length >= 2 else 0
        expected_rep = max(1, n_cand // 2) if length >= 2 else 0
        assert n_rep.numpy()[b] == expected_rep
        order = np.argsort(alpha_t[b, :length] * (-1 if positive else 1))[::-1]
        allowed = set(order[:n_cand].tolist())
        for s in range(5):
            chosen = positions[b, s][valid[b, s]]
            assert len(chosen) == expected_rep
            assert len(set(chosen.tolist())) == len(chosen)  # without replacement
            assert set(chosen.tolist()) <= allowed  # real items of the right half only


def test_substitute_ids_are_real_distinct_videos():
    tf.random.set_seed(4)
    ids = aug.sample_substitute_ids(500, 100).numpy()
    assert len(ids) == 100 and len(np.unique(ids)) == 100
    assert ids.min() >= 1 and ids.max() <= 500
    np.testing.assert_array_equal(aug.sample_substitute_ids(30, 100).numpy(), np.arange(1, 31))


def test_apply_replacement_matches_numpy():
    rng = np.random.default_rng(5)
    seq = rng.normal(size=(2, 5, 3)).astype(np.float32)
    z = rng.normal(size=(4, 3)).astype(np.float32)
    positions = np.array([[[0, 2]], [[4, 1]]])
    subs = np.array([[[3, 1]], [[0, 2]]])
    valid = np.array([[[True, True]], [[True, False]]])
    got = aug.apply_replacement(seq, z, positions, subs, valid).numpy()
    expected = np.repeat(seq[:, None], 1, 1)
    for b, s, r in np.ndindex(positions.shape):
        if valid[b, s, r]:
            expected[b, s, positions[b, s, r]] = z[subs[b, s, r]]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_augment_never_touches_padding_or_short_rows():
    tf.random.set_seed(6)
    rng = np.random.default_rng(6)
    lengths = np.array([8, 4, 1, 0])
    mask = np.arange(8)[None] < lengths[:, None]
    seq = np.where(mask[..., None], rng.normal(size=(4, 8, 3)), 0).astype(np.float32)
    z = rng.normal(size=(5, 3)).astype(np.float32)
    alpha_t = np.where(mask, rng.normal(size=(4, 8)), 0).astype(np.float32)
    beta = rng.normal(size=(4, 8, 5)).astype(np.float32)
    out = aug.augment(
        seq,
        tf.constant(mask),
        alpha_t,
        substitute_embeddings=z,
        draws=aug.draw_substitutes(beta, None, 3),
        num_samples=3,
        positive=False,
        hard_weight=None,
        config=CFG,
    )
    sequences = out.sequences.numpy()
    assert np.all(sequences[~np.broadcast_to(mask[:, None], sequences.shape[:3])] == 0)
    np.testing.assert_array_equal(out.row_valid.numpy(), [True, True, False, False])
    np.testing.assert_allclose(sequences[2], np.repeat(seq[2][None], 3, 0))
    changed = np.any(sequences != seq[:, None], axis=-1)  # [B, S, N]
    assert np.all(changed.sum(-1)[:2] >= 1)  # augmented rows do change
    assert not np.any(changed & ~mask[:, None, :])


def _mean_scores(strategy, progress, positive, alpha_t, beta, mask, seq, z):
    t = aug.strategy_hard_weight(strategy, progress)
    out = aug.augment(
        seq,
        mask,
        alpha_t,
        substitute_embeddings=z,
        draws=aug.draw_substitutes(beta, t, 4),
        num_samples=4,
        positive=positive,
        hard_weight=t,
        config=CFG,
    )
    return float(np.mean(out.difficulty.numpy())), float(np.mean(out.hardness.numpy()))


@pytest.mark.parametrize("positive", [False, True])
def test_strategies_control_the_hardness(positive):
    """Difficulty = Eq 4 score of the replacements (for negatives it is Eq 4's a⁻ itself).

    Harder samples replace more important items with more related substitutes; for positives
    this lowers the quality score a⁺ of Eq 5.
    """
    tf.random.set_seed(7)
    rng = np.random.default_rng(7)
    b, n, nz, d = 300, 24, 60, 3
    mask = tf.ones([b, n], tf.bool)
    alpha_t = (rng.normal(size=(b, n)) * 2).astype(np.float32)
    beta = (rng.normal(size=(b, n, nz)) * 2).astype(np.float32)
    seq = np.zeros((b, n, d), np.float32)
    z = np.zeros((nz, d), np.float32)
    args = (positive, alpha_t, beta, mask, seq, z)
    e2h = [_mean_scores("easy2hard", p, *args) for p in (0.0, 0.5, 1.0)]
    h2e = [_mean_scores("hard2easy", p, *args) for p in (0.0, 0.5, 1.0)]
    harder, random_, easier = (_mean_scores(s, 0.3, *args) for s in ("harder", "random", "easier"))
    print(f"positive={positive} easy2hard={e2h} hard2easy={h2e}")
    print(f"harder={harder} random={random_} easier={easier}")
    difficulty = [x[0] for x in e2h]
    assert difficulty[0] < difficulty[1] < difficulty[2]
    difficulty = [x[0] for x in h2e]
    assert difficulty[0] > difficulty[1] > difficulty[2]
    assert harder[0] > random_[0] > easier[0]
    if positive:  # Eq 5 quality moves the other way
        assert harder[1] < random_[1] < easier[1]
        assert e2h[0][1] > e2h[2][1]


def test_strategy_weights():
    assert aug.strategy_hard_weight("random", 0.3) is None
    assert float(aug.strategy_hard_weight("easy2hard", 0.25)) == 0.25
    assert float(aug.strategy_hard_weight("hard2easy", 0.25)) == 0.75
    assert float(aug.strategy_hard_weight("harder", 0.0)) == 1.0
    assert float(aug.strategy_hard_weight("easier", 1.0)) == 0.0
    with pytest.raises(ValueError, match="unknown strategy"):
        aug.strategy_hard_weight("hardest", 0.0)


def test_augment_reads_its_columns_of_shared_draws():
    """One `draw_substitutes` call serves positives (columns 0..Np-1) and negatives (Np..)."""
    rng = np.random.default_rng(8)
    mask = tf.ones([2, 6], tf.bool)
    seq = rng.normal(size=(2, 6, 3)).astype(np.float32)
    z = rng.normal(size=(7, 3)).astype(np.float32)
    alpha_t = rng.normal(size=(2, 6)).astype(np.float32)
    beta = rng.normal(size=(2, 6, 7)).astype(np.float32)
    t = aug.strategy_hard_weight("harder", 0.3)
    draws = aug.draw_substitutes(beta, t, 5)
    kwargs = dict(substitute_embeddings=z, draws=draws, hard_weight=t, config=CFG)
    pos = aug.augment(seq, mask, alpha_t, num_samples=2, positive=True, **kwargs)
    neg = aug.augment(seq, mask, alpha_t, num_samples=3, positive=False, column_offset=2, **kwargs)
    assert pos.sequences.shape == (2, 2, 6, 3) and neg.sequences.shape == (2, 3, 6, 3)
    with pytest.raises(ValueError, match="columns"):
        aug.augment(seq, mask, alpha_t, num_samples=3, positive=False, column_offset=3, **kwargs)
