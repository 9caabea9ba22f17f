"""The two-stage `recommend` (retrieve N by dot product, rank them with Eq 13) of a real export."""

import numpy as np
import pytest
import tensorflow as tf

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.export import block_max_top_k, export_serving_model
from tf_ccl4rec.testing import build_serving_model, vocabulary

SMALL_N = 5
# The retrieval vectors hold the wide logit's per-video part: test with all of it.
WIDE = {
    "retrieval_weight": 1.0,
    "item_bias": True,
    "history_statistics": True,
    "category_statistics": True,
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory, serving_transform):
    """One trained model with the retrieval term, exported three ways: one-stage, two-stage with
    N = the whole catalogue, two-stage with N = SMALL_N."""
    workdir = tmp_path_factory.mktemp("two_stage")
    one_stage, model, tft_output, _ = build_serving_model(
        str(workdir),
        model_overrides=WIDE,
        train_steps=30,
        num_categories=4,
        transform=serving_transform,
    )
    vocab = vocabulary(tft_output)
    full = export_serving_model(model, tft_output, str(workdir / "full"), len(vocab))
    small = export_serving_model(model, tft_output, str(workdir / "small"), SMALL_N)
    paths = {"one_stage": one_stage, "full": full, "small": small}
    return {name: tf.saved_model.load(p) for name, p in paths.items()}, paths, model, vocab


def _pad(lists):
    width = max([len(x) for x in lists] + [1])
    return tf.constant([list(x) + [""] * (width - len(x)) for x in lists])


def _histories(vocab, model):
    window = model.config.max_history
    return [
        vocab[: window + 3] + [vocab[0], "never-seen-id"],  # beyond the window, repeat, OOV
        [vocab[3], vocab[4], vocab[-1]],
        [],
        [vocab[7]],
    ]


def _recommend(loaded, histories, k):
    out = loaded.signatures["recommend"](
        click_history=_pad(histories),
        nonclick_history=_pad([[]] * len(histories)),
        k=tf.constant(k),
    )
    return out["video_ids"].numpy().astype(str), out["scores"].numpy()


def test_two_stage_with_the_whole_catalogue_equals_the_one_stage_recommend(exports):
    loaded, _, model, vocab = exports
    histories = _histories(vocab, model)
    for k in (1, 5, len(vocab) + 3):
        ids, scores = _recommend(loaded["full"], histories, k)
        want_ids, want_scores = _recommend(loaded["one_stage"], histories, k)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_scores)
        # The export also carries the one-stage ranking as a function.
        out = loaded["full"].recommend_exhaustive(_pad(histories), _pad([[]] * 4), k)
        np.testing.assert_array_equal(out["video_ids"].numpy().astype(str), want_ids)


def test_retrieve_is_the_top_n_unseen_by_dot_product(exports):
    loaded, _, model, vocab = exports
    histories = _histories(vocab, model)
    out = loaded["small"].retrieve(_pad(histories), _pad([[]] * 4), SMALL_N)
    ids = out["video_ids"].numpy().astype(str)
    # The model's query vectors of the histories as Transform gives them (newest window, OOV).
    index = {v: i + 1 for i, v in enumerate(vocab)}
    window = model.config.max_history
    clicked = [([index.get(v, len(vocab) + 1) for v in h] + [0] * window)[:window] for h in
               [h[-window:] for h in histories]]  # fmt: skip
    queries = model.retrieval_queries(
        {
            F.MODEL_CLICK_HISTORY: tf.constant(clicked, tf.int64),
            F.MODEL_NONCLICK_HISTORY: tf.zeros([4, window], tf.int64),
        }
    ).numpy()
    items = model.retrieval_candidates(np.arange(1, len(vocab) + 1)).numpy()
    for user, history in enumerate(histories):
        dots = items @ queries[user]
        ranked = [vocab[i] for i in np.argsort(-dots, kind="stable") if vocab[i] not in history]
        assert list(ids[user]) == ranked[:SMALL_N], user
        want = [dots[vocab.index(v)] for v in ranked[:SMALL_N]]
        np.testing.assert_allclose(out["scores"].numpy()[user], want, rtol=1e-5, atol=1e-5)


def test_two_stage_returns_the_ctr_top_of_the_retrieved_videos(exports):
    loaded, _, model, vocab = exports
    histories = _histories(vocab, model)
    retrieved = loaded["small"].retrieve(_pad(histories), _pad([[]] * 4), SMALL_N)
    retrieved = retrieved["video_ids"].numpy().astype(str)
    ids, scores = _recommend(loaded["small"], histories, 3)
    probs = (
        loaded["small"]
        .signatures["predict"](
            click_history=_pad(histories),
            nonclick_history=_pad([[]] * 4),
            candidates=tf.constant(retrieved),
        )["probabilities"]
        .numpy()
    )
    for user in range(len(histories)):
        assert set(ids[user]) <= set(retrieved[user])
        assert np.all(np.diff(scores[user]) <= 0)
        order = np.argsort(-probs[user], kind="stable")[:3]
        assert set(ids[user]) == set(retrieved[user][order])
        np.testing.assert_allclose(scores[user], probs[user][order], atol=1e-6)


def test_two_stage_retrieves_at_least_k(exports):
    loaded, _, model, vocab = exports
    histories = _histories(vocab, model)
    ids, _ = _recommend(loaded["small"], histories, SMALL_N + 3)
    assert ids.shape == (4, SMALL_N + 3)
    for user in (1, 2, 3):
        assert all(ids[user]) and len(set(ids[user])) == SMALL_N + 3
        assert not set(ids[user]) & set(histories[user])


def test_two_stage_exports_follow_the_serving_contract(exports):
    from serving.signatures import validate_export

    _, paths, *_ = exports
    assert validate_export(paths["full"]) == []
    assert validate_export(paths["small"]) == []


def test_two_stage_needs_a_trained_retrieval_vector(tmp_path, serving_transform):
    with pytest.raises(ValueError, match="retrieval_weight"):
        CCL4RecConfig(retrieval_candidates=10)
    _, model, tft_output, _ = build_serving_model(str(tmp_path), transform=serving_transform)
    with pytest.raises(ValueError, match="retrieval_weight"):
        export_serving_model(model, tft_output, str(tmp_path / "m"), retrieval_candidates=10)


def test_export_leaves_the_optimizer_out(exports):
    _, paths, model, _ = exports
    assert model.optimizer is not None  # still there for more training
    names = [n for n, _ in tf.train.list_variables(paths["small"] + "/variables/variables")]
    assert names and not [n for n in names if "optimizer" in n]


@pytest.mark.parametrize(
    "batch, videos, k, block",
    [(1, 20000, 300, 16), (3, 5000, 10, 128), (2, 300, 50, 128), (2, 30, 50, 8)],
)
def test_block_max_top_k_equals_top_k(batch, videos, k, block):
    scores = np.random.default_rng(videos).normal(size=(batch, videos)).astype(np.float32)
    scores[:, ::7] = 0.5  # ties
    values, indices = block_max_top_k(tf.constant(scores), k, block)
    want = tf.math.top_k(scores, min(k, videos))
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
