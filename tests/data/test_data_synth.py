"""The planted-noise generator: determinism and the planted properties."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tf_ccl4rec import features as F
from tf_ccl4rec.data import load_video_features, synth


def _auc(labels, scores):
    """Rank AUC (Mann-Whitney), ties averaged."""
    labels = np.asarray(labels, bool)
    ranks = pd.Series(scores).rank().to_numpy()
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return (ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@pytest.fixture(scope="module")
def big_log():
    # ~200k exposures: the noise share's binomial std is ~0.002, so +-0.01 is a 5-sigma bound.
    return synth.generate(synth.SynthConfig(users=1500, exposures_per_user=130, seed=3))


def test_same_seed_same_log_other_seed_other_log():
    cfg = synth.SynthConfig(users=30, videos=100, topics=5, exposures_per_user=20, seed=7)
    a, b = synth.generate(cfg), synth.generate(cfg)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.ground_truth, b.ground_truth)
    np.testing.assert_array_equal(a.video_features, b.video_features)
    c = synth.generate(synth.SynthConfig(**{**cfg.__dict__, "seed": 8}))
    assert not a.interactions.equals(c.interactions)


@pytest.mark.parametrize("noise_rate", [0.2, 0.35])
def test_noise_share_of_clicks_matches_the_flag(noise_rate):
    log = synth.generate(synth.SynthConfig(users=1500, noise_rate=noise_rate, seed=1))
    gt = log.ground_truth
    measured = gt[synth.IS_NOISE].sum() / gt[F.RAW_CLICK].sum()
    print(f"noise_rate={noise_rate} measured={measured:.4f} on {len(gt)} exposures")
    assert abs(measured - noise_rate) <= 0.01


def test_noise_clicks_are_off_interest_clicks(big_log):
    gt = big_log.ground_truth
    noise = gt[gt[synth.IS_NOISE] == 1]
    assert (noise[F.RAW_CLICK] == 1).all()
    assert (noise[synth.IS_INTEREST] == 0).all()


def test_planted_probability_ranks_genuine_clicks(big_log):
    gt = big_log.ground_truth
    genuine = (gt[F.RAW_CLICK] == 1) & (gt[synth.IS_NOISE] == 0)
    auc = _auc(genuine, gt[synth.TRUE_CLICK_PROB])
    print(f"true-click AUC of the planted probability: {auc:.3f}")
    assert auc > 0.75
    # Interest exposures are clicked (genuinely) far more often than the rest.
    by_interest = genuine.groupby(gt[synth.IS_INTEREST]).mean()
    assert by_interest[1] > 3 * by_interest[0]


def test_users_topics_features_and_popularity(big_log):
    frame = big_log.interactions
    interest = frame[big_log.ground_truth[synth.IS_INTEREST] == 1]
    topics_per_user = interest.groupby(F.RAW_USER_ID)[F.RAW_CATEGORY].nunique()
    assert topics_per_user.between(1, 3).all()
    # Content features cluster by topic: same-topic videos are closer than other-topic ones.
    feats = big_log.video_features
    vid_topic = frame.drop_duplicates(F.RAW_VIDEO_ID).set_index(F.RAW_VIDEO_ID)[F.RAW_CATEGORY]
    index = {v: i for i, v in enumerate(big_log.video_ids)}
    topic = np.array([vid_topic.get(v, "") for v in big_log.video_ids])
    seen = topic != ""
    f, t = feats[seen], topic[seen]
    centroids = {k: f[t == k].mean(0) for k in np.unique(t)}
    nearest = np.array([min(centroids, key=lambda k: np.linalg.norm(x - centroids[k])) for x in f])
    assert (nearest == t).mean() > 0.9
    assert len(index) == feats.shape[0] and feats.dtype == np.float32
    # Power-law popularity: the top 10% of videos get a large share of exposures.
    counts = frame[F.RAW_VIDEO_ID].value_counts().to_numpy()
    top = counts[: max(1, len(big_log.video_ids) // 10)].sum() / counts.sum()
    assert top > 0.4
    # Per user, exposures are in time order.
    assert (frame.groupby(F.RAW_USER_ID)[F.RAW_TIMESTAMP].diff().dropna() >= 0).all()


def test_write_produces_the_raw_log_layout(tmp_path):
    summary = synth.synth(
        synth.SynthConfig(users=10, videos=40, topics=8, exposures_per_user=10),
        str(tmp_path),
        progress=None,
    )
    frame = pd.read_csv(tmp_path / F.RAW_INTERACTIONS_FILE, dtype=str)
    assert list(frame.columns) == [*F.RAW_REQUIRED_COLUMNS, F.RAW_CATEGORY]
    truth = pd.read_csv(tmp_path / synth.GROUND_TRUTH_FILE)
    assert len(truth) == len(frame) == summary["exposures"]
    assert (truth[F.RAW_VIDEO_ID].astype(str) == frame[F.RAW_VIDEO_ID]).all()  # row-aligned
    ids, matrix = load_video_features(str(tmp_path))
    assert len(ids) == 40 and matrix.shape == (40, 32) and matrix.dtype == np.float32


def test_unreachable_noise_rate_is_a_clear_error():
    with pytest.raises(ValueError, match="noise_rate"):
        synth.generate(synth.SynthConfig(users=20, noise_rate=0.9, interest_mix=1.0))
    with pytest.raises(ValueError, match="noise_rate"):
        synth.SynthConfig(noise_rate=1.0)


def test_cover_videos_exposes_every_video():
    config = synth.SynthConfig(users=20, videos=300, topics=5, exposures_per_user=20)
    assert synth.generate(config).interactions[F.RAW_VIDEO_ID].nunique() < 300  # Zipf misses some
    covered = synth.generate(dataclasses.replace(config, cover_videos=True))
    assert covered.interactions[F.RAW_VIDEO_ID].nunique() == 300
    with pytest.raises(ValueError, match="at least one exposure per video"):
        synth.generate(dataclasses.replace(config, users=2, cover_videos=True))
