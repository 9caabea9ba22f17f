"""Warm start from the count: the first prediction is the user + video count's, worked in NumPy."""

import numpy as np
import pytest

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.layers.wide import count_logits, fit_statistics_weights, history_statistics
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


def test_fit_statistics_weights_recovers_a_planted_logistic_model():
    # Labels drawn from sigmoid(offset + stats @ w + b) with known w, b; the fitted weights come
    # back within sampling noise, and the penalised gradient at the solution is ~0.
    rng = np.random.default_rng(0)
    stats = rng.normal(size=(20000, 4))
    offset = rng.normal(size=20000)
    w, b = np.array([0.5, -0.3, 0.8, 0.4]), -0.2
    labels = (rng.random(20000) < 1 / (1 + np.exp(-(offset + stats @ w + b)))).astype(float)
    kernel, bias = fit_statistics_weights(stats, offset, labels, ridge=0.0)
    np.testing.assert_allclose(kernel[:, 0], w, atol=0.06)
    np.testing.assert_allclose(bias, [b], atol=0.06)
    p = 1 / (1 + np.exp(-(offset + stats @ kernel[:, 0] + bias[0])))
    np.testing.assert_allclose(stats.T @ (p - labels) / len(labels), 0, atol=1e-5)


def test_warm_start_with_user_counts_fits_the_statistics_weights():
    config = CCL4RecConfig(vocab_size=3, embedding_dim=8, max_history=4, mlp_units=(8,),
                           num_substitutes=3, item_bias=True, history_statistics=True,
                           warm_start_from_counts=True)  # fmt: skip
    model = CCL4RecModel(config)
    model._build_if_needed()
    rng = np.random.default_rng(1)
    targets = rng.integers(1, 4, 400)
    counts = np.stack([rng.integers(0, 30, 400), rng.integers(0, 30, 400), rng.integers(0, 11, 400)],
                      axis=1).astype(np.float32)  # fmt: skip
    counts[:, 2] = np.minimum(counts[:, 2], counts[:, 0])
    labels = (rng.random(400) < 0.5).astype(float)
    assert model.warm_start(targets, labels, counts)
    video, _ = count_logits(targets, labels, config.num_embeddings)
    stats = history_statistics(counts[:, 0], counts[:, 1], counts[:, 2]).numpy()
    kernel, bias = fit_statistics_weights(stats, video[targets], labels)
    np.testing.assert_allclose(model.wide.statistics.kernel.numpy(), kernel, rtol=1e-5)
    np.testing.assert_allclose(model.wide.statistics.bias.numpy(), bias, rtol=1e-5)


@pytest.mark.parametrize("run_eagerly", [False, True])  # traced once / eager (see the method)
def test_warm_start_with_categories_fits_every_statistic_from_the_rows(run_eagerly, monkeypatch):
    import tensorflow as tf

    from tf_ccl4rec import model as model_module

    config = CCL4RecConfig(vocab_size=6, embedding_dim=8, max_history=4, mlp_units=(8,),
                           num_substitutes=3, item_bias=True, history_statistics=True,
                           category_statistics=True, warm_start_from_counts=True)  # fmt: skip
    category_of = np.array([0, 1, 1, 2, 2, 3, 3, 0], np.int32)
    model = CCL4RecModel(config, video_categories=category_of)
    model._build_if_needed()
    model.compile(optimizer="sgd", run_eagerly=run_eagerly)
    traced, function = [], tf.function
    monkeypatch.setattr(
        model_module.tf, "function", lambda f, **kw: traced.append(f) or function(f, **kw)
    )
    rng = np.random.default_rng(2)
    n = 300
    rows = {
        F.MODEL_CLICK_HISTORY: rng.integers(0, 7, (n, 4)),
        F.MODEL_NONCLICK_HISTORY: rng.integers(0, 7, (n, 4)),
        F.MODEL_CLICK_COUNT: rng.integers(4, 30, n).astype(np.float32),
        F.MODEL_NONCLICK_COUNT: rng.integers(4, 30, n).astype(np.float32),
        F.MODEL_RECENT_CLICK_COUNT: rng.integers(0, 5, n).astype(np.float32),
        F.MODEL_TARGET: rng.integers(1, 7, n),
    }
    labels = (rng.random(n) < 0.5).astype(float)
    batches = tf.data.Dataset.from_tensor_slices(rows).batch(64)
    assert model.warm_start(rows[F.MODEL_TARGET], labels, None, batches)
    monkeypatch.undo()
    assert len(traced) == (0 if run_eagerly else 1)
    # The same statistics computed row by row, then the same logistic regression.
    stats = model.wide.statistics_of(rows[F.MODEL_TARGET], rows).numpy()
    assert stats.shape == (n, 7)
    video, _ = count_logits(rows[F.MODEL_TARGET], labels, config.num_embeddings)
    kernel, bias = fit_statistics_weights(stats, video[rows[F.MODEL_TARGET]], labels)
    np.testing.assert_allclose(model.wide.statistics.kernel.numpy(), kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.wide.statistics.bias.numpy(), bias, rtol=1e-4, atol=1e-6)
    # Eq 13 starts at 0, so before training the model is the fitted wide logit.
    wide = video[rows[F.MODEL_TARGET]] + stats @ kernel[:, 0] + bias[0]
    np.testing.assert_allclose(model(rows).numpy(), 1 / (1 + np.exp(-wide)), rtol=1e-4)


def test_warm_start_with_categories_but_no_rows_is_refused():
    # The category statistics are counted over the histories, which only the rows carry: without
    # them the category weights would stay unfitted silently.
    config = CCL4RecConfig(vocab_size=6, embedding_dim=8, max_history=4, mlp_units=(8,),
                           num_substitutes=3, item_bias=True, history_statistics=True,
                           category_statistics=True, warm_start_from_counts=True)  # fmt: skip
    model = CCL4RecModel(config, video_categories=np.array([0, 1, 1, 2, 2, 3, 3, 0], np.int32))
    model._build_if_needed()
    counts = np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match="pass the training rows"):
        model.warm_start(np.arange(1, 6), np.array([1.0, 0, 1, 0, 1]), counts)
