"""schemas/schema.pbtxt: matches the feature contract; TFDV / ExampleValidator flag anomalies."""

import glob
import os

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from tf_ccl4rec import features as F
from tf_ccl4rec.data import examples

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "schemas", "schema.pbtxt")


def _schema():
    with open(SCHEMA_PATH) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _example(label=1, clicks=(b"a",), user=b"u", counts=None):
    feats = {
        F.USER_ID: user,
        F.VIDEO_ID: b"v",
        F.LABEL: label,
        F.TIMESTAMP: 10,
        F.CLICK_HISTORY: list(clicks),
        F.NONCLICK_HISTORY: [],
        F.CATEGORY: b"c",
        F.USER_ACTIVITY_BUCKET: b"000-009",
        F.VIDEO_POPULARITY_BUCKET: b"000-004",
        F.USER_IN_VIDEO_BUCKET: user + b"|000-004",
    }
    if counts is not None:
        feats[F.CLICK_COUNT], feats[F.NONCLICK_COUNT] = counts
    return examples.encode_example(feats)


def _write(path, exs):
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as w:
        for ex in exs:
            w.write(ex.SerializeToString())
    return path


def test_schema_matches_the_feature_contract():
    schema = _schema()
    by_name = {f.name: f for f in schema.feature}
    expected = {
        *F.SCALAR_BYTES_FEATURES,
        *F.SCALAR_INT_FEATURES,
        *F.HISTORY_FEATURES,
        *F.HISTORY_COUNT_FEATURES,
        *F.SLICE_FEATURES,
        F.USER_IN_VIDEO_BUCKET,
        F.CATEGORY,
    }
    assert set(by_name) == expected
    # The uncut counts: optional non-negative int64 scalars (a served example may omit them).
    for name in F.HISTORY_COUNT_FEATURES:
        assert by_name[name].type == schema_pb2.INT
        assert by_name[name].int_domain.min == 0
        assert (by_name[name].value_count.min, by_name[name].value_count.max) == (1, 1)
        assert by_name[name].presence.min_fraction == 0.0
        assert by_name[name].presence.min_count == 0
    assert (by_name[F.LABEL].int_domain.min, by_name[F.LABEL].int_domain.max) == (0, 1)
    for name in F.HISTORY_FEATURES:
        assert by_name[name].value_count.max == F.DEFAULT_MAX_HISTORY
        assert by_name[name].value_count.min == 0
    for name in (
        *F.SCALAR_BYTES_FEATURES,
        *F.SCALAR_INT_FEATURES,
        *F.SLICE_FEATURES,
        F.USER_IN_VIDEO_BUCKET,
    ):
        assert by_name[name].presence.min_fraction == 1.0
        assert [d.size for d in by_name[name].shape.dim] == [1]


def _anomalies(tmp_path, exs):
    import tensorflow_data_validation as tfdv

    path = _write(str(tmp_path / f"ex_{len(os.listdir(tmp_path))}.tfrecord"), exs)
    stats = tfdv.generate_statistics_from_tfrecord(path)
    return dict(tfdv.validate_statistics(stats, _schema()).anomaly_info)


def test_tfdv_flags_label_history_and_presence_anomalies(tmp_path):
    clean = [_example(label=i % 2, clicks=[b"x"] * i) for i in range(6)]
    assert _anomalies(tmp_path, clean) == {}
    bad = clean + [_example(label=2)]
    assert set(_anomalies(tmp_path, bad)) == {F.LABEL}
    too_long = clean + [_example(clicks=[b"x"] * (F.DEFAULT_MAX_HISTORY + 1))]
    assert set(_anomalies(tmp_path, too_long)) == {F.CLICK_HISTORY}
    # Counts are optional: examples with and without them validate; a negative count is flagged.
    with_counts = clean + [_example(clicks=[b"x"] * 2, counts=(500, 7))]
    assert _anomalies(tmp_path, with_counts) == {}
    assert set(_anomalies(tmp_path, clean + [_example(counts=(-1, 0))])) == {F.CLICK_COUNT}
    no_user = examples.encode_example(
        {F.VIDEO_ID: b"v", F.LABEL: 1, F.TIMESTAMP: 1, F.CLICK_HISTORY: [], F.NONCLICK_HISTORY: []}
        | {F.USER_ID: b"u"}
    )
    del no_user.features.feature[F.USER_ID]
    assert F.USER_ID in _anomalies(tmp_path, clean + [no_user])


@pytest.mark.slow
def test_example_validator_in_a_local_dag(tmp_path):
    """CCL4RecExampleGen -> StatisticsGen -> ExampleValidator(ImportSchemaGen) has no anomalies;
    the same validation flags a label of 2 in examples imported with ImportExampleGen."""
    from tfx.components import ExampleValidator, ImportExampleGen, StatisticsGen
    from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
    from tfx.orchestration import metadata
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline.components import CCL4RecExampleGen
    from tf_ccl4rec.beam_overhead import trim_beam_overhead
    from tf_ccl4rec.beam_runner import pipeline_args
    from tf_ccl4rec.data import synth

    trim_beam_overhead()  # as `ccl4rec pipeline run` does (tf_ccl4rec/beam_overhead.py)

    raw = str(tmp_path / "raw")
    synth.write(
        synth.generate(synth.SynthConfig(users=10, videos=40, topics=8, exposures_per_user=12)),
        raw,
    )
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    _write(str(bad_dir / "data.tfrecord"), [_example(label=i % 3) for i in range(30)])

    gen = CCL4RecExampleGen(data_root=raw, max_history=F.DEFAULT_MAX_HISTORY)
    schema = ImportSchemaGen(schema_file=os.path.abspath(SCHEMA_PATH))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    validator = ExampleValidator(
        statistics=stats.outputs["statistics"], schema=schema.outputs["schema"]
    )
    bad_gen = ImportExampleGen(input_base=str(bad_dir))
    bad_stats = StatisticsGen(examples=bad_gen.outputs["examples"]).with_id("BadStatisticsGen")
    bad_validator = ExampleValidator(
        statistics=bad_stats.outputs["statistics"], schema=schema.outputs["schema"]
    ).with_id("BadExampleValidator")
    root = str(tmp_path / "root")
    LocalDagRunner().run(
        tfx_pipeline.Pipeline(
            pipeline_name="data_schema_test",
            pipeline_root=root,
            components=[gen, schema, stats, validator, bad_gen, bad_stats, bad_validator],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(
                str(tmp_path / "mlmd.sqlite")
            ),
            beam_pipeline_args=pipeline_args("direct"),  # as `ccl4rec pipeline run` passes them
        )
    )

    def anomalies(component_id):
        files = glob.glob(os.path.join(root, component_id, "anomalies", "*", "Split-*", "*.pb"))
        assert files, f"{component_id} wrote no anomalies file"
        out = {}
        for path in files:
            proto = anomalies_pb2.Anomalies()
            with open(path, "rb") as f:
                proto.ParseFromString(f.read())
            out[path.split(os.sep)[-2]] = dict(proto.anomaly_info)
        return out

    clean = anomalies("ExampleValidator")
    assert set(clean) == {"Split-train", "Split-eval"}
    assert all(v == {} for v in clean.values()), clean
    flagged = anomalies("BadExampleValidator")
    assert any(F.LABEL in v for v in flagged.values()), flagged
    # Both validated splits above came from split_names; the report sits in the artifact dir.
    report = glob.glob(
        os.path.join(root, "CCL4RecExampleGen", "examples", "*", "data_quality.json")
    )
    assert len(report) == 1
