"""Planted-noise micro-video log generator (vectorized numpy; 1M exposures in seconds).

Planted structure:

* ``topics`` latent topics; each video has one topic and a content vector
  ``centroid[topic] + feature_noise * N(0, I)`` (float32), and a power-law popularity
  (Zipf weight ``rank ** -popularity_alpha`` over a random ranking).
* each user has 1-3 interest topics with a per-topic affinity, and a click propensity.
* exposures: for each one, with probability ``interest_mix`` a video of one of the user's topics
  (by popularity within the topic), otherwise a video by global popularity; timestamps uniform
  over ``days`` per user.
* genuine clicks ~ Bernoulli(p) with the planted probability
  ``p = sigmoid(bias + affinity + pop_weight * log-popularity)`` on interest exposures and a small
  ``sigmoid(off_topic_logit + ...)`` elsewhere.
* false-positive clicks: on not-genuinely-clicked exposures off the user's interests, each clicked
  with one probability ``q`` chosen so that the expected share of noise among all clicks is
  ``noise_rate``.

Outputs the raw-log layout plus ``ground_truth.csv`` (never read by the pipeline): one row per
exposure, row-aligned with interactions.csv, with ``true_click_prob`` (the planted genuine
probability), ``is_interest`` and ``is_noise`` (1 for a false-positive click).
"""

import dataclasses
import os
import time

import numpy as np
import pandas as pd

from tf_ccl4rec import features as F

GROUND_TRUTH_FILE = "ground_truth.csv"
TRUE_CLICK_PROB = "true_click_prob"
IS_INTEREST = "is_interest"
IS_NOISE = "is_noise"


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Size and planted parameters of a synthetic log (defaults: ~39k exposures, demo-sized).

    Attributes:
      users, videos, topics, feature_dim: sizes.
      exposures_per_user: mean exposures per user (each user gets 1 + Poisson(mean - 1)).
      noise_rate: share of clicks that are false positives (on off-interest exposures).
      interest_mix: probability an exposure is drawn from the user's topics, not by popularity.
      popularity_alpha: Zipf exponent of video popularity.
      feature_noise: std of the content-feature noise around the topic centroid.
      days: time span of the log.
      seed: everything is a deterministic function of the config.
      cover_videos: every video gets at least one exposure (random exposure slots take each
        video once), so the vocabulary is the whole catalogue (a scale run's catalogue size);
        needs at least `videos` exposures.
    """

    users: int = 300
    videos: int = 2000
    topics: int = 20
    feature_dim: int = 32
    exposures_per_user: float = 130.0
    noise_rate: float = 0.2
    interest_mix: float = 0.5
    popularity_alpha: float = 1.0
    feature_noise: float = 0.5
    days: int = 30
    seed: int = 0
    cover_videos: bool = False

    def __post_init__(self):
        if min(self.users, self.videos, self.topics, self.feature_dim) < 1:
            raise ValueError("users, videos, topics and feature_dim must be >= 1")
        if self.videos < self.topics:
            raise ValueError(f"need at least one video per topic ({self.videos} < {self.topics})")
        if not 0.0 <= self.noise_rate < 1.0:
            raise ValueError(f"noise_rate must be in [0, 1), got {self.noise_rate}")
        if not 0.0 <= self.interest_mix <= 1.0:
            raise ValueError(f"interest_mix must be in [0, 1], got {self.interest_mix}")
        if self.exposures_per_user < 1:
            raise ValueError("exposures_per_user must be >= 1")


@dataclasses.dataclass
class SynthLog:
    """A generated log held in memory (columns as numpy arrays)."""

    interactions: pd.DataFrame  # RAW_* columns, plus category
    ground_truth: pd.DataFrame  # row-aligned: true_click_prob, is_interest, is_noise
    video_ids: list[str]
    video_features: np.ndarray  # float32 [videos, feature_dim]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def generate(config: SynthConfig = SynthConfig(), progress=None) -> SynthLog:
    """Generates a planted-noise log.

    Args:
      config: sizes and planted parameters.
      progress: optional callable(str) for progress lines.

    Returns:
      The log, exposures sorted by (user, timestamp).

    Raises:
      ValueError: the noise rate cannot be reached (too few off-interest exposures).
    """
    say = progress or (lambda _msg: None)
    c = config
    rng = np.random.default_rng(c.seed)

    # Videos: topic, popularity, content features.
    video_topic = rng.integers(0, c.topics, size=c.videos)
    video_topic[rng.permutation(c.videos)[: c.topics]] = np.arange(c.topics)  # no empty topic
    pop = (1.0 + rng.permutation(c.videos)) ** -c.popularity_alpha
    pop /= pop.sum()
    centroids = rng.normal(size=(c.topics, c.feature_dim))
    feats = centroids[video_topic] + c.feature_noise * rng.normal(size=(c.videos, c.feature_dim))
    log_pop_z = np.log(pop)
    log_pop_z = (log_pop_z - log_pop_z.mean()) / (log_pop_z.std() + 1e-12)

    # Users: 1-3 topics each (distinct), affinities, propensity.
    n_int = rng.integers(1, min(3, c.topics) + 1, size=c.users)
    topic_order = np.argsort(rng.random((c.users, c.topics)), axis=1)
    interest = np.zeros((c.users, c.topics), dtype=bool)
    rows = np.repeat(np.arange(c.users), n_int)
    cols = topic_order[rows, np.concatenate([np.arange(k) for k in n_int])]
    interest[rows, cols] = True
    affinity = np.where(interest, rng.normal(1.0, 0.5, size=(c.users, c.topics)), 0.0)
    user_bias = rng.normal(-1.5, 0.3, size=c.users)

    # Exposures.
    n_per_user = 1 + rng.poisson(c.exposures_per_user - 1, size=c.users)
    user = np.repeat(np.arange(c.users), n_per_user)
    n = user.size
    say(f"synth: {c.users} users, {c.videos} videos, {n} exposures")
    from_interest = rng.random(n) < c.interest_mix
    # Interest path: one of the user's topics, then a video of that topic by popularity. One
    # searchsorted over per-topic CDFs laid end to end (topic t occupies (t, t + 1]).
    by_topic = np.argsort(video_topic, kind="stable")
    sorted_topic = video_topic[by_topic]
    topic_size = np.bincount(sorted_topic, minlength=c.topics)
    last = np.cumsum(topic_size) - 1
    cs = np.cumsum(pop[by_topic])
    before = np.concatenate([[0.0], cs[last[:-1]]])  # mass of all earlier topics
    within = (cs - before[sorted_topic]) / (cs[last] - before)[sorted_topic]
    within[last] = 1.0  # exact group ends so no float drift crosses a topic boundary
    cdf = sorted_topic + within
    pick = (rng.random(n) * n_int[user]).astype(np.int64)
    chosen_topic = topic_order[user, pick]
    idx = np.searchsorted(cdf, chosen_topic + rng.random(n), side="right")
    interest_video = by_topic[idx]
    global_cdf = np.cumsum(pop)
    popular_video = np.minimum(
        np.searchsorted(global_cdf, rng.random(n) * global_cdf[-1]), c.videos - 1
    )
    video = np.where(from_interest, interest_video, popular_video)
    if c.cover_videos:
        if n < c.videos:
            raise ValueError(
                f"cover_videos needs at least one exposure per video ({n} < {c.videos}); "
                "raise users or exposures_per_user"
            )
        video[rng.choice(n, c.videos, replace=False)] = np.arange(c.videos)

    start = 1_600_000_000
    timestamp = start + (rng.random(n) * c.days * 86400).astype(np.int64)
    order = np.lexsort((timestamp, user))
    video, timestamp = video[order], timestamp[order]

    # Clicks.
    is_interest = interest[user, video_topic[video]]
    logit = user_bias[user] + 0.35 * log_pop_z[video]
    logit = np.where(is_interest, logit + affinity[user, video_topic[video]], logit - 2.5)
    p_true = _sigmoid(logit)
    genuine = rng.random(n) < p_true
    eligible = ~is_interest & ~genuine
    expected_genuine = p_true.sum()
    wanted_noise = c.noise_rate / (1.0 - c.noise_rate) * expected_genuine
    n_eligible = int(eligible.sum())
    q = wanted_noise / max(n_eligible, 1)
    if q > 1.0:
        raise ValueError(
            f"noise_rate {c.noise_rate} needs {wanted_noise:.0f} false-positive clicks but only "
            f"{n_eligible} off-interest exposures exist; lower --noise-rate or --interest-mix"
        )
    noise = eligible & (rng.random(n) < q)
    click = (genuine | noise).astype(np.int8)

    uid = np.char.add("u", np.arange(c.users).astype(str))
    vid = np.char.add("v", np.arange(c.videos).astype(str))
    tid = np.char.add("t", np.arange(c.topics).astype(str))
    interactions = pd.DataFrame(
        {
            F.RAW_USER_ID: uid[user],
            F.RAW_VIDEO_ID: vid[video],
            F.RAW_TIMESTAMP: timestamp,
            F.RAW_CLICK: click,
            F.RAW_CATEGORY: tid[video_topic[video]],
        }
    )
    truth = pd.DataFrame(
        {
            F.RAW_USER_ID: interactions[F.RAW_USER_ID],
            F.RAW_VIDEO_ID: interactions[F.RAW_VIDEO_ID],
            F.RAW_TIMESTAMP: timestamp,
            F.RAW_CLICK: click,
            TRUE_CLICK_PROB: p_true.round(6),
            IS_INTEREST: is_interest.astype(np.int8),
            IS_NOISE: noise.astype(np.int8),
        }
    )
    return SynthLog(interactions, truth, list(vid), feats.astype(np.float32))


def write(log: SynthLog, out_dir: str, progress=None) -> None:
    """Writes a generated log in the raw-log layout plus ``ground_truth.csv``.

    Args:
      log: from `generate`.
      out_dir: created if missing; existing files of the layout are overwritten.
      progress: optional callable(str) for progress lines.
    """
    say = progress or (lambda _msg: None)
    os.makedirs(out_dir, exist_ok=True)
    say(f"synth: writing {len(log.interactions)} rows to {out_dir}")
    log.interactions.to_csv(os.path.join(out_dir, F.RAW_INTERACTIONS_FILE), index=False)
    log.ground_truth.to_csv(os.path.join(out_dir, GROUND_TRUTH_FILE), index=False)
    np.save(os.path.join(out_dir, F.RAW_VIDEO_FEATURES_FILE), log.video_features)
    with open(os.path.join(out_dir, F.RAW_VIDEO_FEATURE_IDS_FILE), "w") as f:
        f.write("\n".join(log.video_ids) + "\n")


def synth(config: SynthConfig, out_dir: str, progress=print) -> dict:
    """Generates and writes a log; returns a summary with measured rows/s.

    Args:
      config: generator config.
      out_dir: raw-log directory to write.
      progress: callable(str) for progress lines (None for silence).

    Returns:
      Summary dict: exposures, clicks, noise_rate (measured share of noise among clicks),
      seconds and rows_per_s (generate + write).
    """
    t0 = time.perf_counter()
    log = generate(config, progress)
    write(log, out_dir, progress)
    secs = time.perf_counter() - t0
    gt = log.ground_truth
    clicks = int(gt[F.RAW_CLICK].sum())
    return {
        "exposures": len(gt),
        "clicks": clicks,
        "noise_rate": float(gt[IS_NOISE].sum() / max(clicks, 1)),
        "seconds": round(secs, 3),
        "rows_per_s": round(len(gt) / secs),
    }
