"""Tracing converts none of our functions with AutoGraph (tf_ccl4rec/model.py says why) and traces
the train step once (tf_ccl4rec/tracing.py), for every model type's fit / evaluate / predict;
and the spy that checks AutoGraph sees a conversion."""

import numpy as np
import pytest
import tensorflow as tf
from autograph_spy import conversions, no_conversions_of_ours

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.model_registry import MODEL_TYPES, build_model
from tf_ccl4rec.tracing import VariablesBeforeTracing

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


# --- one trace per fit (tf_ccl4rec/tracing.py) ------------------------------------------------
# CCL4Rec with every optional part that has weights: content + id videos, both extra sequences
# with their own heads, the wide logit with history and category statistics, the retrieval head
# training the encoder.
EVERYTHING = dict(
    CONFIG,
    video_representation="both",
    content_feature_dim=4,
    normalize_content_features=True,
    num_interest_vectors=2,
    interest_vector_dim=4,
    combine_sequences="sum_logits",
    history_statistics=True,
    category_statistics=True,
    retrieval_trains_encoder=True,
)


def _model(model_type, values):
    config = CCL4RecConfig.from_dict(values)
    rng = np.random.default_rng(1)
    extra = {}
    if config.video_representation != "id":
        extra["content_features"] = rng.normal(
            size=(config.num_embeddings, config.content_feature_dim)
        ).astype(np.float32)
    if config.category_statistics:
        extra["video_categories"] = rng.integers(0, 3, config.num_embeddings)
    tf.keras.utils.set_random_seed(0)
    model = build_model(model_type, values, **extra)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    return model


def _data(values):
    config = CCL4RecConfig.from_dict(values)
    data = rows()
    rng = np.random.default_rng(2)
    if config.history_statistics:
        for name in (F.MODEL_CLICK_COUNT, F.MODEL_NONCLICK_COUNT, F.MODEL_RECENT_CLICK_COUNT):
            data[name] = rng.integers(0, 9, 2 * B).astype(np.float32)
    if config.num_interest_vectors:
        shape = (2 * B, config.num_interest_vectors, config.effective_interest_vector_dim)
        data[F.MODEL_INTEREST_VECTORS] = rng.normal(size=shape).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(data).batch(B)


def _fit_counting_traces(model, data):
    traces = []
    step = model.train_step

    @tf.autograph.experimental.do_not_convert
    def counted(inputs):
        traces.append(1)  # Python: runs once per trace, never per step
        return step(inputs)

    model.train_step = counted
    model.fit(data, epochs=1, verbose=0)
    return len(traces)


CASES = [(t, CONFIG) for t in MODEL_TYPES] + [(MODEL_TYPES[0], EVERYTHING)]


@pytest.mark.parametrize("model_type,values", CASES, ids=[*MODEL_TYPES, "ccl4rec-everything"])
def test_fit_evaluate_and_predict_trace_once_without_autograph(model_type, values):
    """AutoGraph converts none of our functions and none of Keras's; fit traces the train step
    once, where Keras alone (variables built inside the first trace) traces it twice; from the
    same initial weights both give the same weights."""
    data = _data(values)
    model = _model(model_type, values)
    with no_conversions_of_ours() as converted:
        assert _fit_counting_traces(model, data) == 1
        trained = [v.numpy() for v in model.variables]
        model.evaluate(data, verbose=0)
        scores = model.predict(data, verbose=0)
    assert scores.shape[0] == 2 * B and np.all(np.isfinite(scores))
    # Of Keras, only the functions its tf.functions wrap (a tf.function's own function is always
    # converted), none they call (`keep_autograph_out_of_keras`, tf_ccl4rec/tracing.py).
    assert converted == [
        f"tf_keras.src.engine.training.Model.make_{name}_function.<locals>.{name}_function"
        for name in ("train", "test", "predict")
    ]

    keras_alone = _model(model_type, values)
    keras_alone._build_if_needed()  # the same eager build (the Trainer's parameter counts do it)
    # Keras's own make_train_function, without VariablesBeforeTracing's builds.
    keras_alone.make_train_function = super(VariablesBeforeTracing, keras_alone).make_train_function
    traces = _fit_counting_traces(keras_alone, data)
    if keras_alone.trainable_variables:  # the counting models have no optimizer slots
        assert traces == 2
    # Same variables in the same (attribute) order; names differ: an eager build names them
    # under the model's scope, the traced one without.
    for a, b, v in zip(trained, keras_alone.variables, model.variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy(), err_msg=v.name)
