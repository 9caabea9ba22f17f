"""Transform's preprocessing_fn on a tiny in-memory dataset (TFT's Beam implementation)."""

import logging
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from tf_ccl4rec import features as F
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME, preprocessing_fn, transform_settings

RAW_SPEC = {
    F.USER_ID: tf.io.FixedLenFeature([], tf.string),
    F.VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
    F.LABEL: tf.io.FixedLenFeature([], tf.int64),
    F.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    F.CLICK_HISTORY: tf.io.VarLenFeature(tf.string),
    F.NONCLICK_HISTORY: tf.io.VarLenFeature(tf.string),
}
ROWS = [
    {"user_id": b"u1", "video_id": b"a", "label": 1, "timestamp": 3,
     "click_history": [b"b", b"c", b"a"], "nonclick_history": []},
    {"user_id": b"u2", "video_id": b"a", "label": 0, "timestamp": 4,
     "click_history": [], "nonclick_history": [b"rare"]},
    {"user_id": b"u1", "video_id": b"b", "label": 1, "timestamp": 5,
     "click_history": [b"a", b"b", b"c", b"a"], "nonclick_history": [b"c"]},
]  # fmt: skip


# The optional uncut counts, parsed as VarLen like schemas/schema.pbtxt's optional scalars.
COUNT_SPEC = {
    **RAW_SPEC,
    F.CLICK_COUNT: tf.io.VarLenFeature(tf.int64),
    F.NONCLICK_COUNT: tf.io.VarLenFeature(tf.int64),
    F.RECENT_CLICK_COUNT: tf.io.VarLenFeature(tf.int64),
}


def _run(custom_config, rows=ROWS, spec=RAW_SPEC):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, custom_config), output_record_batches=False
        )
        out_dir = tempfile.mkdtemp()
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    tft_output = tft.TFTransformOutput(out_dir)
    vocab = [v.decode() for v in tft_output.vocabulary_by_name(VIDEO_VOCAB_NAME)]
    return transformed, vocab, tft_output.transformed_feature_spec()


def test_indices_follow_the_vocabulary_with_padding_and_oov():
    cfg = {"max_history": 3, "frequency_threshold": 2, "num_oov_buckets": 1, "num_user_buckets": 97}
    rows, vocab, _ = _run(cfg)
    # Frequencies over targets + histories: a=5, b=3, c=3, rare=1 -> "rare" is below the threshold.
    assert sorted(vocab) == ["a", "b", "c"]
    # Most frequent first, ties by token descending (TFT's order): indices depend on it. The
    # vocabulary counts per-batch unique tokens with weight 1 (one Beam element per distinct
    # token and batch, not per token) and must order exactly like a plain count.
    assert vocab == ["a", "c", "b"]
    index = {v: i + 1 for i, v in enumerate(vocab)}  # +1: PAD_ID = 0
    oov = len(vocab) + 1
    assert [r[F.MODEL_TARGET] for r in rows] == [index["a"], index["a"], index["b"]]
    np.testing.assert_array_equal(rows[0][F.MODEL_CLICK_HISTORY], [index[v] for v in "bca"])
    np.testing.assert_array_equal(rows[1][F.MODEL_CLICK_HISTORY], [F.PAD_ID] * 3)
    np.testing.assert_array_equal(rows[1][F.MODEL_NONCLICK_HISTORY], [oov, F.PAD_ID, F.PAD_ID])
    # The newest max_history items are kept.
    np.testing.assert_array_equal(rows[2][F.MODEL_CLICK_HISTORY], [index[v] for v in "bca"])
    assert rows[0][F.MODEL_USER] == rows[2][F.MODEL_USER]
    assert 0 <= rows[1][F.MODEL_USER] < 97
    assert [r[F.MODEL_LABEL] for r in rows] == [1.0, 0.0, 1.0]


CFG = {"max_history": 3, "frequency_threshold": 1, "num_oov_buckets": 1, "num_user_buckets": 97}


def test_counts_are_the_uncut_counts_never_below_the_history_lengths():
    rows = [
        # More clicks than max_history; 5 of the latest 10 were clicks (window min(10, 9) = 9).
        {**ROWS[0], F.CLICK_COUNT: [7], F.NONCLICK_COUNT: [2], F.RECENT_CLICK_COUNT: [5]},
        # Counts omitted: the lengths, and the recent count at the lifetime rate (0 clicks).
        {**ROWS[1], F.CLICK_COUNT: [], F.NONCLICK_COUNT: [], F.RECENT_CLICK_COUNT: []},
        # Below the lengths: the lengths (4, 1); a recent count above the window of 5 -> 5.
        {**ROWS[2], F.CLICK_COUNT: [1], F.NONCLICK_COUNT: [0], F.RECENT_CLICK_COUNT: [9]},
    ]
    out, _, spec = _run(CFG, rows, COUNT_SPEC)
    assert [r[F.MODEL_CLICK_COUNT] for r in out] == [7.0, 0.0, 4.0]
    assert [r[F.MODEL_NONCLICK_COUNT] for r in out] == [2.0, 1.0, 1.0]
    assert [r[F.MODEL_RECENT_CLICK_COUNT] for r in out] == [5.0, 0.0, 5.0]
    assert spec[F.MODEL_CLICK_COUNT] == tf.io.FixedLenFeature([], tf.float32)
    assert spec[F.MODEL_NONCLICK_COUNT] == tf.io.FixedLenFeature([], tf.float32)


def test_without_count_features_the_history_lengths_stand_in_and_timestamp_passes_through():
    out, _, spec = _run(CFG)  # RAW_SPEC has no count features at all (e.g. an old serving request)
    # Row 2's click history has 4 items (cut to max_history=3 in the index, not in the count).
    assert [r[F.MODEL_CLICK_COUNT] for r in out] == [3.0, 0.0, 4.0]
    assert [r[F.MODEL_NONCLICK_COUNT] for r in out] == [0.0, 1.0, 1.0]
    assert [r[F.MODEL_TIMESTAMP] for r in out] == [3, 4, 5]
    assert spec[F.MODEL_TIMESTAMP] == tf.io.FixedLenFeature([], tf.int64)
    assert spec[F.MODEL_CLICK_COUNT] == tf.io.FixedLenFeature([], tf.float32)
    assert (
        set(spec)
        == set(out[0])
        == {
            F.MODEL_TARGET,
            F.MODEL_CLICK_HISTORY,
            F.MODEL_NONCLICK_HISTORY,
            F.MODEL_CLICK_COUNT,
            F.MODEL_NONCLICK_COUNT,
            F.MODEL_RECENT_CLICK_COUNT,
            F.MODEL_TIMESTAMP,
            F.MODEL_USER,
            F.MODEL_LABEL,
        }
    )
    # No recent count: the window's share at the lifetime rate, min(10, c + n) * c / (c + n):
    # row 0: 3 of 3 -> 3; row 1: 0 clicks -> 0; row 2: 4 clicks, 1 non-click -> 5 * 4 / 5 = 4.
    np.testing.assert_allclose([r[F.MODEL_RECENT_CLICK_COUNT] for r in out], [3.0, 0.0, 4.0])


def test_threshold_one_keeps_every_video_and_tft_does_not_warn():
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        _, vocab, _ = _run(CFG)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert sorted(vocab) == ["a", "b", "c", "rare"]  # "rare" once: kept at threshold 1
    assert not [r for r in records if "frequency_threshold" in r.getMessage()]


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown Transform settings"):
        transform_settings({"max_histroy": 3})
