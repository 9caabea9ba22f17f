"""Baselines: training on planted structure, agreement of call/score_candidates, masks, build_model."""

import numpy as np
import pytest
import tensorflow as tf
from autograph_spy import no_conversions_of_ours

from tf_ccl4rec import features as F
from tf_ccl4rec.baselines import BaselineConfig
from tf_ccl4rec.baselines.models import lstm_layer
from tf_ccl4rec.model import CCL4RecModel
from tf_ccl4rec.model_registry import MODEL_TYPES, build_model

VOCAB, N, TOPICS = 120, 10, 4
LEARNING = ("bpr", "lstm", "cnn", "ncf", "atrank")
CONFIG = dict(
    vocab_size=VOCAB,
    num_oov_buckets=1,
    embedding_dim=16,
    max_history=N,
    mlp_units=[16],
    learning_rate=0.01,
    # CCL4Rec-only keys, which the baselines must ignore:
    num_substitutes=50,
    strategy="random",
)


def planted_data(num_users, rows_per_user, seed):
    """Each user likes one topic (video index % TOPICS); a target from it is clicked (5% flips).

    Histories are PAD_ID-padded on the right; some are empty or length 1.
    """
    rng = np.random.default_rng(seed)
    topic_of = np.arange(VOCAB + 1) % TOPICS
    by_topic = [np.flatnonzero((topic_of == t) & (np.arange(VOCAB + 1) > 0)) for t in range(TOPICS)]
    cols = {F.MODEL_CLICK_HISTORY: [], F.MODEL_TARGET: [], F.MODEL_LABEL: [], F.MODEL_USER: []}
    for u in range(num_users):
        liked_topic = rng.integers(TOPICS)
        length = rng.choice([0, 1, 3, N // 2, N, N])
        hist = np.zeros(N, np.int64)
        hist[:length] = rng.choice(by_topic[liked_topic], length)
        for _ in range(rows_per_user):
            liked = rng.uniform() < 0.5
            topic = liked_topic if liked else (liked_topic + rng.integers(1, TOPICS)) % TOPICS
            flip = rng.uniform() < 0.05
            cols[F.MODEL_CLICK_HISTORY].append(hist)
            cols[F.MODEL_TARGET].append(rng.choice(by_topic[topic]))
            cols[F.MODEL_LABEL].append(float(liked != flip))
            cols[F.MODEL_USER].append(u)
    out = {k: np.asarray(v) for k, v in cols.items()}
    out[F.MODEL_LABEL] = out[F.MODEL_LABEL].astype(np.float32)
    return out


def auc(labels, scores):
    metric = tf.keras.metrics.AUC(num_thresholds=1000)
    metric.update_state(labels, scores)
    return float(metric.result())


@pytest.fixture(scope="module")
def data():
    return planted_data(160, 8, seed=0), planted_data(60, 8, seed=1)


def train(model_type, train_rows, steps=200, epochs=10):
    tf.keras.utils.set_random_seed(0)
    model = build_model(model_type, CONFIG)
    model.compile(optimizer=tf.keras.optimizers.Adam(CONFIG["learning_rate"]))
    dataset = (
        tf.data.Dataset.from_tensor_slices(train_rows).shuffle(2000, seed=0).repeat().batch(32)
    )
    with no_conversions_of_ours():
        history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps // epochs, verbose=0)
    return model, history.history


@pytest.mark.parametrize("model_type", LEARNING)
def test_learning_baseline_trains_and_ranks_held_out_rows(model_type, data):
    train_rows, held_out = data
    model, history = train(model_type, train_rows)
    name = f"{model.loss_name}_loss"
    first, last = history[name][0], history[name][-1]
    print(f"{model_type}: {name} {first:.4f} -> {last:.4f}; parameters {model.parameter_counts()}")
    assert np.isfinite(history[name]).all()
    assert last < first
    features = {k: v for k, v in held_out.items() if k != F.MODEL_LABEL}
    scores = model(features).numpy()
    assert scores.shape == (len(held_out[F.MODEL_LABEL]),)
    assert np.all((scores >= 0) & (scores <= 1))
    held_out_auc = auc(held_out[F.MODEL_LABEL], scores)
    print(f"{model_type}: held-out AUC {held_out_auc:.3f}")
    assert held_out_auc > 0.6

    # score_candidates agrees with call when a candidate is the target.
    rows = {k: v[:12] for k, v in features.items()}
    others = np.random.default_rng(2).integers(1, VOCAB + 1, (12, 4))
    candidates = np.concatenate([rows[F.MODEL_TARGET][:, None], others], axis=1)
    by_candidates = model.score_candidates(rows, candidates).numpy()
    assert by_candidates.shape == (12, 5)
    np.testing.assert_allclose(by_candidates[:, 0], model(rows).numpy(), rtol=1e-5, atol=1e-6)
    # ... and for each other candidate put in the target's place.
    swapped = dict(rows, **{F.MODEL_TARGET: others[:, 2]})
    np.testing.assert_allclose(by_candidates[:, 3], model(swapped).numpy(), rtol=1e-5, atol=1e-6)
    embedding = model.user_embedding(rows).numpy()
    assert embedding.shape[0] == 12 and np.isfinite(embedding).all()


def test_the_cpu_lstm_layer_is_keras_lstm_with_the_same_weights():
    """`lstm_layer` without a GPU (the generic RNN over LSTMCell, traced once) computes what
    Keras's LSTM computes: same weight names and shapes, same last states with right padding and
    an empty history, eagerly and in a tf.function, and the same gradients."""
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: lstm_layer builds Keras's LSTM itself")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 5, 3)).astype(np.float32))
    mask = tf.sequence_mask([5, 2, 1, 0], 5)  # right padding; the last history is empty
    generic, keras = lstm_layer(6, name="lstm"), tf.keras.layers.LSTM(6, name="lstm")
    assert not isinstance(generic, tf.keras.layers.LSTM)
    generic(x, mask=mask), keras(x, mask=mask)
    assert [w.name for w in generic.weights] == [w.name for w in keras.weights]
    keras.set_weights(generic.get_weights())
    for call in (lambda layer: layer(x, mask=mask), tf.function(lambda layer: layer(x, mask=mask))):
        with tf.GradientTape(persistent=True) as tape:
            got, want = call(generic), call(keras)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.numpy()[3], 0.0)  # empty history: the zero state
        for g, w in zip(
            tape.gradient(got, generic.weights), tape.gradient(want, keras.weights), strict=True
        ):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model_type", LEARNING + ("popularity",))
def test_padding_and_empty_histories(model_type, data):
    train_rows, _ = data
    tf.keras.utils.set_random_seed(0)
    model = build_model(model_type, CONFIG)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(tf.data.Dataset.from_tensor_slices(train_rows).batch(32).take(3), epochs=1, verbose=0)
    batch = {k: v[:8].copy() for k, v in train_rows.items()}
    batch[F.MODEL_CLICK_HISTORY][:3] = F.PAD_ID  # three empty histories
    scores = model(batch).numpy()
    assert np.isfinite(scores).all()
    # Longer right padding changes nothing.
    padded = dict(batch)
    padded[F.MODEL_CLICK_HISTORY] = np.pad(batch[F.MODEL_CLICK_HISTORY], [(0, 0), (0, 3)])
    np.testing.assert_allclose(model(padded).numpy(), scores, rtol=1e-5, atol=1e-6)
    assert np.isfinite(model.user_embedding(batch).numpy()).all()
    # The loss and its gradients stay finite with empty histories (and an all-empty batch).
    for rows in (batch, dict(batch, **{F.MODEL_CLICK_HISTORY: np.zeros((8, N), np.int64)})):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(rows, training=True)
        assert np.isfinite(loss.numpy())
        grads = tape.gradient(loss, model.trainable_variables)
        for var, grad in zip(model.trainable_variables, grads, strict=True):
            if grad is not None:
                values = tf.convert_to_tensor(grad).numpy()
                assert np.isfinite(values).all(), f"{model_type}: NaN gradient for {var.name}"


def test_popularity_is_the_smoothed_training_ctr():
    rng = np.random.default_rng(0)
    item_ctr = rng.uniform(0.05, 0.95, VOCAB + 1)

    def rows(n, seed):
        r = np.random.default_rng(seed)
        targets = r.integers(1, VOCAB + 1, n)
        return {
            F.MODEL_CLICK_HISTORY: np.zeros((n, N), np.int64),
            F.MODEL_TARGET: targets,
            F.MODEL_LABEL: (r.uniform(size=n) < item_ctr[targets]).astype(np.float32),
        }

    train_rows, held_out = rows(4000, 1), rows(1000, 2)
    model = build_model("popularity", CONFIG)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    history = model.fit(
        tf.data.Dataset.from_tensor_slices(train_rows).batch(100), epochs=1, verbose=0
    ).history
    clicks = np.bincount(train_rows[F.MODEL_TARGET], train_rows[F.MODEL_LABEL], VOCAB + 2)
    shows = np.bincount(train_rows[F.MODEL_TARGET], minlength=VOCAB + 2)
    prior = clicks.sum() / shows.sum()
    expected = (clicks + prior) / (shows + 1.0)
    targets = held_out[F.MODEL_TARGET]
    np.testing.assert_allclose(model(held_out).numpy(), expected[targets], rtol=1e-5)
    unseen = np.array([[VOCAB + 1, 1]])  # the OOV row was never shown: global CTR
    np.testing.assert_allclose(
        model.score_candidates(held_out, np.repeat(unseen, 1000, 0)).numpy()[0],
        [prior, expected[1]],
        rtol=1e-5,
    )
    held_out_auc = auc(held_out[F.MODEL_LABEL], model(held_out).numpy())
    print(
        f"popularity: held-out AUC {held_out_auc:.3f}, ce {history['ce_loss'][-1]:.4f}; "
        f"parameters {model.parameter_counts()}"
    )
    assert held_out_auc > 0.6
    assert model.trainable_variables == []


def test_user_item_rate_adds_the_two_smoothed_rates_as_logits():
    # Two videos, two users; counted over one pass of 8 training rows.
    # video 1: 3 clicks / 4 shows, video 2: 1 / 4 -> global ctr 4 / 8 = 0.5; m = 1:
    #   r_1 = (3 + 0.5) / 5 = 0.7, r_2 = (1 + 0.5) / 5 = 0.3.
    # A user with 6 clicks and 2 non-clicks before the exposure (counts uncut, histories of 3
    # and 1 items): r_u = (6 + 0.5) / (8 + 1) = 0.7222.
    # score(video 1) = sigmoid(logit 0.7 + logit 0.7222 - logit 0.5).
    def logit(p):
        return np.log(p / (1 - p))

    hist = np.zeros((8, N), np.int64)
    train_rows = {
        F.MODEL_CLICK_HISTORY: hist,
        F.MODEL_NONCLICK_HISTORY: hist,
        F.MODEL_TARGET: np.array([1, 1, 1, 1, 2, 2, 2, 2]),
        F.MODEL_LABEL: np.array([1, 1, 1, 0, 1, 0, 0, 0], np.float32),
    }
    model = build_model("user_item_rate", CONFIG)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(tf.data.Dataset.from_tensor_slices(train_rows).batch(4), epochs=1, verbose=0)
    clicks = np.zeros((1, N), np.int64)
    clicks[0, :3] = [5, 6, 7]
    nonclicks = np.zeros((1, N), np.int64)
    nonclicks[0, :1] = 8
    user = {
        F.MODEL_CLICK_HISTORY: clicks,
        F.MODEL_NONCLICK_HISTORY: nonclicks,
        F.MODEL_CLICK_COUNT: np.array([6.0], np.float32),
        F.MODEL_NONCLICK_COUNT: np.array([2.0], np.float32),
    }
    r_u = 6.5 / 9
    expected = 1 / (1 + np.exp(-(logit(np.array([0.7, 0.3])) + logit(r_u) - logit(0.5))))
    got = model.score_candidates(user, np.array([[1, 2]])).numpy()[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(model(dict(user, **{F.MODEL_TARGET: np.array([2])})).numpy(),
                               expected[1:], rtol=1e-5)  # fmt: skip
    # Without counts the history lengths stand in: r_u = (3 + 0.5) / (4 + 1) = 0.7.
    no_counts = {k: v for k, v in user.items() if "count" not in k}
    expected = 1 / (1 + np.exp(-(logit(0.7) + logit(0.7) - logit(0.5))))
    np.testing.assert_allclose(
        model.score_candidates(no_counts, np.array([[1]])).numpy()[0, 0], expected, rtol=1e-5
    )


def test_build_model_types_and_config_errors():
    assert MODEL_TYPES == (
        "ccl4rec", "bpr", "lstm", "cnn", "ncf", "atrank", "popularity", "user_item_rate"
    )  # fmt: skip
    ccl = build_model("ccl4rec", dict(vocab_size=VOCAB, embedding_dim=8, max_history=N))
    assert isinstance(ccl, CCL4RecModel) and ccl.config.embedding_dim == 8
    for model_type in MODEL_TYPES[1:]:
        model = build_model(model_type, CONFIG)
        assert model.config.embedding_dim == 16 and model.config.vocab_size == VOCAB
    with pytest.raises(ValueError, match="model_type must be one of"):
        build_model("gru", CONFIG)
    with pytest.raises(ValueError, match="unknown keys"):
        build_model("lstm", dict(CONFIG, embeding_dim=3))
    with pytest.raises(ValueError, match="vocab_size"):
        BaselineConfig.from_dict(dict(CONFIG, vocab_size=0))


@pytest.fixture(scope="module")
def transform_output(serving_transform):
    tft_output, transformed = serving_transform  # random_raw_rows(seed=0), max_history 8
    columns = {k: np.stack([np.asarray(r[k]) for r in transformed]) for k in transformed[0]}
    return tft_output, columns


# Exporting costs ~15 s a model here: the recurrent, the attention and the count-based models
# cover the graph features the others use too (all share BaselineModel's scoring path).
@pytest.mark.parametrize("model_type", ("lstm", "atrank", "popularity", "user_item_rate"))
def test_exports_with_the_serving_signatures(model_type, transform_output, tmp_path):
    """The Trainer's export path (tf_ccl4rec.export) works for the baselines."""
    from tf_ccl4rec.export import export_serving_model
    from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME
    from tf_ccl4rec.testing import random_raw_rows, serialize_raw_row

    tft_output, columns = transform_output
    config = dict(
        CONFIG, vocab_size=tft_output.vocabulary_size_by_name(VIDEO_VOCAB_NAME), max_history=8
    )
    tf.keras.utils.set_random_seed(0)
    model = build_model(model_type, config)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(tf.data.Dataset.from_tensor_slices(columns).batch(16), epochs=1, verbose=0)
    loaded = tf.saved_model.load(export_serving_model(model, tft_output, str(tmp_path / "m")))
    rows = random_raw_rows(num_rows=6, seed=7)
    serialized = tf.constant([serialize_raw_row(r) for r in rows])
    scores = loaded.signatures["serving_default"](inputs=serialized)["scores"].numpy()
    transformed = tft_output.transform_raw_features(
        tf.io.parse_example(serialized, tft_output.raw_feature_spec())
    )
    np.testing.assert_allclose(scores[:, 0], model(transformed).numpy(), atol=1e-5)
    top = loaded.signatures["recommend"](
        click_history=tf.constant([["v1", "v2"], ["", ""]]),
        nonclick_history=tf.constant([[""], [""]]),
        k=tf.constant(3),
    )
    assert top["video_ids"].shape == (2, 3) and np.isfinite(top["scores"].numpy()).all()
