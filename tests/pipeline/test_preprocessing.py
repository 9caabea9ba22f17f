"""Transform's preprocessing_fn on a tiny in-memory dataset (TFT's Beam implementation)."""

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


def _run(custom_config):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
        (transformed, _), transform_fn = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, custom_config), output_record_batches=False
        )
        out_dir = tempfile.mkdtemp()
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    tft_output = tft.TFTransformOutput(out_dir)
    vocab = [v.decode() for v in tft_output.vocabulary_by_name(VIDEO_VOCAB_NAME)]
    return transformed, vocab


def test_indices_follow_the_vocabulary_with_padding_and_oov():
    cfg = {"max_history": 3, "frequency_threshold": 2, "num_oov_buckets": 1, "num_user_buckets": 97}
    rows, vocab = _run(cfg)
    # Frequencies over targets + histories: a=5, b=3, c=3, rare=1 -> "rare" is below the threshold.
    assert sorted(vocab) == ["a", "b", "c"]
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


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown Transform settings"):
        transform_settings({"max_histroy": 3})
