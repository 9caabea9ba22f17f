"""Per-user P@K / R@K / F1@K: the TFMA metric against a NumPy computation written here."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from tf_ccl4rec.metrics.ranking import UserPrecisionRecallAtK, user_precision_recall_at_k

# Hand-built users: (labels, scores). Includes users with fewer than K exposures, a user with no click
# and a user with only clicks (each protocol treats those differently).
USERS = {
    "u_many": ([1, 0, 1, 0, 0, 1, 0], [0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.05]),
    "u_few": ([0, 1], [0.3, 0.4]),
    "u_noclick": ([0, 0, 0], [0.5, 0.4, 0.3]),
    "u_allclick": ([1, 1], [0.2, 0.1]),
    "u_one": ([1], [0.5]),
}


def numpy_reference(users, k, protocol):
    """Written independently of the implementation: explicit loops over ranked rows."""
    ps, rs, ws = [], [], []
    for labels, scores in users.values():
        labels = np.array(labels)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        n, pos = len(labels), labels.sum()
        hits = sum(labels[i] for i in order[:k])
        if protocol == "thacil":
            if pos == 0 or pos == n:
                continue
            ps.append(hits / k)
            ws.append(n)
        else:
            ps.append(hits / min(k, n))
            ws.append(1)
        rs.append(hits / pos if pos else 0.0)
    p = np.dot(ps, ws) / np.sum(ws)
    r = np.dot(rs, ws) / np.sum(ws)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0), len(ws)


@pytest.mark.parametrize("protocol", ["alpine", "thacil"])
@pytest.mark.parametrize("k", [1, 2, 3, 50])
def test_single_user_function_matches_numpy(protocol, k):
    for name, (labels, scores) in USERS.items():
        got = user_precision_recall_at_k(labels, scores, k, protocol)
        ref = numpy_reference({name: (labels, scores)}, k, protocol) if got else None
        if got is None:
            assert protocol == "thacil"
            continue
        assert got[0] == pytest.approx(ref[0]) and got[1] == pytest.approx(ref[1])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="protocol"):
        user_precision_recall_at_k([1], [0.1], 5, "other")
    with pytest.raises(ValueError, match="shape"):
        user_precision_recall_at_k([1, 0], [0.1], 5)
    with pytest.raises(ValueError, match="top_k"):
        UserPrecisionRecallAtK(top_k=0)


def _write_examples(path):
    with tf.io.TFRecordWriter(path) as writer:
        for user, (labels, scores) in USERS.items():
            for label, score in zip(labels, scores, strict=True):
                ex = tf.train.Example()
                ex.features.feature["user_id"].bytes_list.value.append(user.encode())
                ex.features.feature["label"].int64_list.value.append(label)
                ex.features.feature["prediction"].float_list.value.append(score)
                writer.write(ex.SerializeToString())


@pytest.mark.parametrize("protocol", ["alpine", "thacil"])
def test_tfma_metric_matches_numpy(tmp_path, protocol):
    data = str(tmp_path / "examples.tfrecord")
    _write_examples(data)
    k = 2
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="UserPrecisionRecallAtK",
                        module="tf_ccl4rec.metrics.ranking",
                        config=f'"top_k": {k}, "protocol": "{protocol}"',
                    )
                ],
                query_key="user_id",
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
    )
    result = tfma.run_model_analysis(
        eval_config=eval_config, data_location=data, output_path=str(tmp_path / "out")
    )
    metrics = result.slicing_metrics[0][1][""][""]
    p, r, f, users = numpy_reference(USERS, k, protocol)
    assert metrics["precision_at_2"]["doubleValue"] == pytest.approx(p)
    assert metrics["recall_at_2"]["doubleValue"] == pytest.approx(r)
    assert metrics["f1_at_2"]["doubleValue"] == pytest.approx(f)
    assert metrics["ranked_users_at_2"]["doubleValue"] == users
    assert not math.isnan(p)


def test_slice_inside_queries_needs_a_query_key_that_stays_in_the_slice(tmp_path):
    """TFMA evaluates a query metric on a slice over the WHOLE query of every user present in it,
    so per-user rankings inside a video bucket use the query key "<user>|<bucket>" (what the
    pipeline does for video-popularity slices). Both behaviours are pinned here."""
    data = str(tmp_path / "examples.tfrecord")
    subsets = {}
    with tf.io.TFRecordWriter(data) as writer:
        for user, (labels, scores) in USERS.items():
            for i, (label, score) in enumerate(zip(labels, scores, strict=True)):
                bucket = b"even" if i % 2 == 0 else b"odd"
                ex = tf.train.Example()
                feats = ex.features.feature
                feats["user_id"].bytes_list.value.append(user.encode())
                feats["user_in_bucket"].bytes_list.value.append(user.encode() + b"|" + bucket)
                feats["bucket"].bytes_list.value.append(bucket)
                feats["label"].int64_list.value.append(label)
                feats["prediction"].float_list.value.append(score)
                writer.write(ex.SerializeToString())
                rows = subsets.setdefault(bucket.decode(), {}).setdefault(user, ([], []))
                rows[0].append(label)
                rows[1].append(score)
    k = 2
    specs = [
        tfma.MetricsSpec(
            metrics=[
                tfma.MetricConfig(
                    class_name="UserPrecisionRecallAtK",
                    module="tf_ccl4rec.metrics.ranking",
                    config=f'"top_k": {k}, "suffix": "{suffix}", "name": "r{suffix}"',
                )
            ],
            query_key=query_key,
        )
        for query_key, suffix in (("user_id", ""), ("user_in_bucket", "_in"))
    ]
    result = tfma.run_model_analysis(
        eval_config=tfma.EvalConfig(
            model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
            metrics_specs=specs,
            slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["bucket"])],
        ),
        data_location=data,
        output_path=str(tmp_path / "out"),
    )
    by_slice = {key: m[""][""] for key, m in result.slicing_metrics}
    for bucket, users in subsets.items():
        got = by_slice[(("bucket", bucket),)]
        inside = numpy_reference(users, k, "alpine")
        assert got["precision_at_2_in"]["doubleValue"] == pytest.approx(inside[0])
        assert got["recall_at_2_in"]["doubleValue"] == pytest.approx(inside[1])
        # The plain user query ranks the whole list of each user present in the bucket.
        whole = numpy_reference({u: USERS[u] for u in users}, k, "alpine")
        assert got["precision_at_2"]["doubleValue"] == pytest.approx(whole[0])
        assert whole[0] != pytest.approx(inside[0]) or bucket == "odd"


def test_protocol_description_comes_from_the_docstring():
    from tf_ccl4rec.metrics.ranking import PROTOCOLS, protocol_description

    texts = {p: protocol_description(p) for p in PROTOCOLS}
    assert "min(K, n_u)" in texts["alpine"] and "hits / K" in texts["thacil"]
    assert not texts["thacil"].startswith('"thacil"')
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_description("nope")
