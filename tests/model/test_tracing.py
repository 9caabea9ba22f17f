"""Tracing converts none of our functions with AutoGraph (tf_ccl4rec/model.py says why), for
every model type's fit / evaluate / predict; and the spy that checks it sees a conversion."""

import numpy as np
import pytest
import tensorflow as tf
from autograph_spy import conversions, no_conversions_of_ours

from tf_ccl4rec import features as F
from tf_ccl4rec.model_registry import MODEL_TYPES, build_model

VOCAB, N, B = 40, 6, 8
CONFIG = dict(
    vocab_size=VOCAB,
    embedding_dim=8,
    max_history=N,
    mlp_units=[8],
    num_substitutes=20,
    # CCL4Rec: every loss term of Eq 16 (the paper preset), both sequences, the retrieval head
    use_nonclick_sequence=True,
    item_bias=True,
    retrieval_weight=0.1,
)


def rows(seed=0):
    rng = np.random.default_rng(seed)
    return {
        F.MODEL_USER: rng.integers(1, 5, 2 * B).astype(np.int64),
        F.MODEL_CLICK_HISTORY: rng.integers(0, VOCAB + 1, (2 * B, N)).astype(np.int64),
        F.MODEL_NONCLICK_HISTORY: rng.integers(0, VOCAB + 1, (2 * B, N)).astype(np.int64),
        F.MODEL_TARGET: rng.integers(1, VOCAB + 1, 2 * B).astype(np.int64),
        F.MODEL_LABEL: rng.integers(0, 2, 2 * B).astype(np.float32),
    }


def test_the_spy_sees_a_converted_function_of_ours():
    def branchy(x):
        if x > 0:  # tensor-dependent control flow: what AutoGraph converts
            return x
        return -x

    branchy.__module__ = "tf_ccl4rec.example"
    with pytest.raises(AssertionError, match="tf_ccl4rec.example"):
        with no_conversions_of_ours():
            tf.function(branchy)(tf.constant(-2.0))

    def double(x):
        return 2 * x

    double.__module__ = "tf_ccl4rec.example"
    with conversions() as converted:
        tf.function(double, autograph=False)(tf.constant(1.0))
        tf.function(tf.autograph.experimental.do_not_convert(double))(tf.constant(1.0))
        tf.function(double)(tf.constant(1.0))
    assert converted == [
        "tf_ccl4rec.example.test_the_spy_sees_a_converted_function_of_ours.<locals>.double"
    ]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_fit_evaluate_and_predict_trace_without_autograph(model_type):
    tf.keras.utils.set_random_seed(0)
    model = build_model(model_type, CONFIG)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    data = tf.data.Dataset.from_tensor_slices(rows()).batch(B)
    with no_conversions_of_ours():
        model.fit(data, epochs=1, verbose=0)
        model.evaluate(data, verbose=0)
        scores = model.predict(data, verbose=0)
    assert scores.shape[0] == 2 * B and np.all(np.isfinite(scores))
