"""The four serving signatures of a real exported CCL4Rec model agree with the in-process model."""

import numpy as np
import pytest
import tensorflow as tf
from autograph_spy import no_conversions_of_ours

from tf_ccl4rec import features as F
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME
from tf_ccl4rec.testing import build_serving_model, random_raw_rows, serialize_raw_row


@pytest.fixture(scope="module")
def exported(tmp_path_factory, serving_transform):
    workdir = str(tmp_path_factory.mktemp("export"))
    with no_conversions_of_ours():  # training, export and the signatures' traces
        export_dir, model, tft_output, _ = build_serving_model(
            workdir, train_steps=30, transform=serving_transform
        )
    loaded = tf.saved_model.load(export_dir)
    vocab = [v.decode() for v in tft_output.vocabulary_by_name(VIDEO_VOCAB_NAME)]
    return loaded, model, tft_output, vocab, export_dir


def _pad(lists):
    width = max([len(x) for x in lists] + [1])
    return tf.constant([list(x) + [""] * (width - len(x)) for x in lists])


def test_serving_default_equals_the_in_process_model(exported):
    loaded, model, tft_output, *_ = exported
    rows = random_raw_rows(num_rows=20, seed=7)
    for row in rows:
        row.pop("category", None)
    serialized = tf.constant([serialize_raw_row(r) for r in rows])
    scores = loaded.signatures["serving_default"](inputs=serialized)["scores"].numpy()
    parsed = tf.io.parse_example(serialized, tft_output.raw_feature_spec())
    transformed = tft_output.transform_raw_features(parsed)
    expected = model(transformed).numpy().reshape(-1, 1)
    assert scores.shape == (20, 1)
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_predict_matches_serving_default_and_zeroes_padding(exported):
    loaded, *_ = exported
    histories = [["v1", "v2", "v3"], [], ["v4"]]
    candidates = [["v5", "v6"], ["v7", ""], ["v8", "never-seen-id"]]
    out = loaded.signatures["predict"](
        click_history=_pad(histories),
        nonclick_history=_pad([[], ["v9"], []]),
        candidates=_pad(candidates),
    )["probabilities"].numpy()
    assert out.shape == (3, 2)
    assert out[1, 1] == 0.0  # padding candidate
    assert 0 < out[2, 1] < 1  # unknown id -> OOV bucket, still scored
    # The same (history, target) pair through serving_default gives the same probability.
    rows = []
    for clicks, nonclicks, cands in zip(histories, [[], ["v9"], []], candidates, strict=True):
        for cand in cands:
            if cand:
                rows.append(
                    {
                        F.USER_ID: [b"u"],
                        F.VIDEO_ID: [cand.encode()],
                        F.LABEL: [0],
                        F.TIMESTAMP: [0],
                        F.CLICK_HISTORY: [c.encode() for c in clicks],
                        F.NONCLICK_HISTORY: [c.encode() for c in nonclicks],
                    }
                )
    scores = loaded.signatures["serving_default"](
        inputs=tf.constant([serialize_raw_row(r) for r in rows])
    )
    np.testing.assert_allclose(
        scores["scores"].numpy().reshape(-1), out[out > 0].reshape(-1), atol=1e-5
    )


def test_recommend_returns_k_distinct_unseen_ids_sorted_by_score(exported):
    loaded, _, _, vocab, _ = exported
    clicked = [vocab[0], vocab[3], vocab[5]]
    out = loaded.signatures["recommend"](
        click_history=_pad([clicked, []]), nonclick_history=_pad([[], []]), k=tf.constant(5)
    )
    ids = out["video_ids"].numpy().astype(str)
    scores = out["scores"].numpy()
    assert ids.shape == (2, 5)
    for row_ids, row_scores in zip(ids, scores, strict=True):
        assert len(set(row_ids)) == 5 and all(row_ids)
        assert np.all(np.diff(row_scores) <= 0)
    assert not set(ids[0]) & set(clicked)
    # Scores are the predict probabilities of those ids, and nothing unseen scores higher.
    probs = loaded.signatures["predict"](
        click_history=_pad([clicked]),
        nonclick_history=_pad([[]]),
        candidates=tf.constant([vocab]),
    )["probabilities"].numpy()[0]
    by_id = dict(zip(vocab, probs, strict=True))
    np.testing.assert_allclose(scores[0], [by_id[i] for i in ids[0]], atol=1e-5)
    unseen = [p for v, p in by_id.items() if v not in clicked]
    assert scores[0][0] == pytest.approx(max(unseen), abs=1e-6)


def test_recommend_in_small_chunks_excludes_every_clicked_id_like_a_full_ranking(
    exported, tmp_path, monkeypatch
):
    """Exclusion across chunk borders, past the model's window, with repeats, OOV ids and padding.

    Exported with a 4-video chunk so the ~30-video catalogue takes several steps; the answer must
    be the top k of `predict`'s probabilities over the whole catalogue minus every clicked id.
    """
    from tf_ccl4rec import export

    _, model, tft_output, vocab, _ = exported
    monkeypatch.setattr(export, "RECOMMEND_CHUNK", 4)
    loaded = tf.saved_model.load(
        export.export_serving_model(model, tft_output, str(tmp_path / "m"))
    )
    window = model.config.max_history
    histories = [
        vocab[: window + 3] + [vocab[0], "never-seen-id"],  # beyond the window, a repeat, OOV
        [vocab[3], vocab[4], vocab[-1]],  # ids on both sides of chunk borders, the last one
        [],
    ]
    k = len(vocab) - len(set(histories[0]) & set(vocab))  # every unseen video of user 0
    out = loaded.signatures["recommend"](
        click_history=_pad(histories), nonclick_history=_pad([[], [], []]), k=tf.constant(k)
    )
    probs = loaded.signatures["predict"](
        click_history=_pad(histories),
        nonclick_history=_pad([[], [], []]),
        candidates=tf.constant([vocab] * 3),
    )["probabilities"].numpy()
    for user, history in enumerate(histories):
        unseen = sorted(
            ((p, v) for v, p in zip(vocab, probs[user], strict=True) if v not in history),
            key=lambda pv: -pv[0],
        )[:k]
        ids = out["video_ids"].numpy().astype(str)[user]
        assert set(ids) == {v for _, v in unseen}, user
        np.testing.assert_allclose(out["scores"].numpy()[user], [p for p, _ in unseen], atol=1e-5)


def test_recommend_k_larger_than_catalogue_pads_with_empty_ids(exported):
    loaded, _, _, vocab, _ = exported
    out = loaded.signatures["recommend"](
        click_history=_pad([vocab[:2]]), nonclick_history=_pad([[]]), k=tf.constant(10_000)
    )
    ids = out["video_ids"].numpy().astype(str)[0]
    assert ids.shape == (len(vocab),)
    assert sum(1 for i in ids if i) == len(vocab) - 2
    assert all(not i for i in ids[-2:])


def test_recommend_rejects_k_below_one(exported):
    loaded, *_ = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be >= 1"):
        loaded.signatures["recommend"](
            click_history=_pad([["v1"]]), nonclick_history=_pad([[]]), k=tf.constant(0)
        )


def test_user_embedding_equals_the_model(exported):
    loaded, model, tft_output, *_ = exported
    histories = [["v1", "v2"], [], ["v3", "v3", "v9"]]
    out = loaded.signatures["user_embedding"](
        click_history=_pad(histories), nonclick_history=_pad([[], [], []])
    )["embedding"].numpy()
    index = {
        v.decode(): i + 1 for i, v in enumerate(tft_output.vocabulary_by_name(VIDEO_VOCAB_NAME))
    }
    max_history = model.config.max_history
    ids = [
        [index.get(v, len(index) + 1) for v in h][-max_history:] + [0] * (max_history - len(h))
        for h in histories
    ]
    expected = model.user_embedding({F.MODEL_CLICK_HISTORY: tf.constant(ids, tf.int64)}).numpy()
    assert out.shape == (3, model.config.effective_units)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_export_follows_the_serving_contract(exported):
    from serving.signatures import validate_export

    assert validate_export(exported[-1]) == []


def test_export_leaves_the_keras_layer_traces_out(exported):
    # What Keras's save(save_traces=False) leaves out: every layer's traced call functions,
    # which nothing that loads the export calls (export._no_keras_traces).
    loaded = exported[0]
    assert not hasattr(loaded.model, "call_and_return_all_conditional_losses")
    assert not hasattr(loaded.model.video, "call_and_return_all_conditional_losses")


def test_serving_default_reads_the_uncut_counts_of_a_wide_model(tmp_path, serving_transform):
    """A model with history_statistics scores the click_count / nonclick_count a request sends
    (through the exported Transform), and falls back to the history lengths without them."""
    export_dir, model, tft_output, _ = build_serving_model(
        str(tmp_path),
        model_overrides={"history_statistics": True},
        train_steps=30,
        transform=serving_transform,
    )
    loaded = tf.saved_model.load(export_dir)
    rows = random_raw_rows(num_rows=10, seed=3)
    with_counts = [
        {**r, F.CLICK_COUNT: [50 + i], F.NONCLICK_COUNT: [3 * i]} for i, r in enumerate(rows)
    ]
    serialized = tf.constant([serialize_raw_row(r) for r in with_counts])
    scores = loaded.signatures["serving_default"](inputs=serialized)["scores"].numpy().reshape(-1)
    parsed = tf.io.parse_example(serialized, tft_output.raw_feature_spec())
    transformed = tft_output.transform_raw_features(parsed)
    np.testing.assert_array_equal(transformed[F.MODEL_CLICK_COUNT], [50 + i for i in range(10)])
    nonclick_lengths = [len(r[F.NONCLICK_HISTORY]) for r in rows]
    np.testing.assert_array_equal(
        transformed[F.MODEL_NONCLICK_COUNT],
        [max(3 * i, n) for i, n in enumerate(nonclick_lengths)],
    )
    np.testing.assert_allclose(scores, model(transformed).numpy().reshape(-1), atol=1e-5)
    without = loaded.signatures["serving_default"](
        inputs=tf.constant([serialize_raw_row(r) for r in rows])
    )["scores"].numpy()
    assert np.max(np.abs(without.reshape(-1) - scores)) > 1e-4  # the counts reach the logit
