"""Warm start from the count: the first prediction is the user + video count's, worked in NumPy."""

import numpy as np

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.layers.wide import count_logits
from tf_ccl4rec.model import CCL4RecModel


def test_count_logits():
    # Video 1: 3 clicks / 4 shows; video 2: 0 / 2; global rate 3 / 6 = 0.5; m = 1:
    # r_1 = (3 + 0.5) / 5 = 0.7, r_2 = 0.5 / 3, unseen videos 0.5.
    logits, prior = count_logits([1, 1, 1, 1, 2, 2], [1, 1, 1, 0, 0, 0], num_embeddings=4)
    expected = np.log(np.array([0.5, 0.7, 0.5 / 3, 0.5]) / (1 - np.array([0.5, 0.7, 0.5 / 3, 0.5])))
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    assert prior == 0.0


def test_a_warm_started_model_predicts_the_count_before_any_training():
    config = CCL4RecConfig(vocab_size=3, embedding_dim=8, max_history=4, mlp_units=(8,),
                           num_substitutes=3, item_bias=True, history_statistics=True,
                           warm_start_from_counts=True)  # fmt: skip
    model = CCL4RecModel(config)
    rng = np.random.default_rng(0)
    features = {
        F.MODEL_CLICK_HISTORY: rng.integers(0, 4, (5, 4)),
        F.MODEL_NONCLICK_HISTORY: rng.integers(0, 4, (5, 4)),
        F.MODEL_CLICK_COUNT: np.array([0, 3, 9, 1, 40], np.float32),
        F.MODEL_NONCLICK_COUNT: np.array([0, 1, 2, 7, 5], np.float32),
        F.MODEL_TARGET: np.array([1, 2, 3, 1, 4]),
    }
    model(features)
    targets, labels = np.array([1, 1, 1, 1, 2, 2]), np.array([1, 1, 1, 0, 0, 0])
    assert model.warm_start(targets, labels)
    video, prior = count_logits(targets, labels, config.num_embeddings)
    clicks = np.maximum(features[F.MODEL_CLICK_COUNT], (features[F.MODEL_CLICK_HISTORY] > 0).sum(1))
    nonclicks = np.maximum(
        features[F.MODEL_NONCLICK_COUNT], (features[F.MODEL_NONCLICK_HISTORY] > 0).sum(1)
    )
    # logit = logit(r_v) + log((c + 1) / (n + 1)) - logit(global); the Eq 13 head starts at 0.
    logit = video[features[F.MODEL_TARGET]] + np.log1p(clicks) - np.log1p(nonclicks) - prior
    np.testing.assert_allclose(model(features).numpy(), 1 / (1 + np.exp(-logit)), rtol=1e-5)
    # Without the setting nothing is touched.
    plain = CCL4RecModel(CCL4RecConfig(vocab_size=3, embedding_dim=8, max_history=4,
                                       num_substitutes=3, item_bias=True))  # fmt: skip
    assert not plain.warm_start(targets, labels)
