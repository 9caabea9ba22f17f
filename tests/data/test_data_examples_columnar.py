"""The columnar example builder (tfx_bsl RecordBatch encoding) against the per-row builder it
replaced (`per_row_builder`, main at 6faeb13): on every fixture of the data tests, the same
examples by meaning (decoded feature by feature, in any order), the same data-quality report and
the same Beam counters."""

import collections
import glob
import json
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.metrics.metric import MetricsFilter
from data_helpers import write_log
from per_row_builder import PerRowBuildExamples, PerRowWriteExamples
from test_data_examples import (
    BAD_HEADER,
    BAD_ROWS,
    FEATURE_IDS,
    FEATURES,
    HEADER,
    RAW_BAD_LINES,
    ROWS,
)

from tf_ccl4rec import features as F
from tf_ccl4rec.data import examples, quality, synth


def _canonical(serialized: bytes):
    """A tf.Example as a hashable (name, kind, values) set: byte order and map order aside."""
    feats = tf.train.Example.FromString(serialized).features.feature
    out = []
    for name, feat in feats.items():
        kind = feat.WhichOneof("kind")
        out.append((name, kind, tuple(getattr(feat, kind).value) if kind else ()))
    return tuple(sorted(out))


def _split(out_dir, split):
    files = sorted(glob.glob(os.path.join(out_dir, f"Split-{split}", "*.gz")))
    assert files, f"no files in Split-{split}"
    data = tf.data.TFRecordDataset(files, compression_type="GZIP")  # checks every record's CRCs
    return collections.Counter(_canonical(r.numpy()) for r in data)


def _run(build, write, root, out, options):
    pipeline = beam.Pipeline()
    _ = pipeline | build(str(root), options) | write(str(out))
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace(quality.METRICS_NAMESPACE))
    counters = {c.key.metric.name: c.committed for c in query["counters"]}
    with open(os.path.join(out, quality.REPORT_FILE)) as f:
        report = json.load(f)
    return {"train": _split(out, "train"), "eval": _split(out, "eval"), "report": report,
            "counters": {k: v for k, v in counters.items() if v}}  # fmt: skip


def _compare(tmp_path, root, **options):
    opts = examples.ExampleOptions(**options)
    old = _run(PerRowBuildExamples, PerRowWriteExamples, root, tmp_path / "per_row", opts)
    new = _run(examples.BuildExamples, examples.WriteExamples, root, tmp_path / "columnar", opts)
    assert sum(old["train"].values()) > 0  # a comparison of nothing proves nothing
    for key in ("report", "counters", "train", "eval"):
        assert new[key] == old[key], key
    return new


def _mixed_log(directory):
    """Users whose rows have and lack a category, duplicates, ties, unknown and NaN videos."""
    rows = [
        ["u1", "a", 1, 1, "c1"], ["u1", "b", 2, 0, ""], ["u1", "c", 2, 1, "c2"],
        ["u1", "a", 3, 0, ""], ["u1", "a", 3, 0, ""], ["u1", "z", 4, 1, "c1"],
        ["u1", "d", 5, 1, "c1"], ["u2", "a", 1, 0, ""], ["u2", "d", 2, 1, ""],
        ["u2", "nan", 3, 1, "c3"], ["u3", "b", 7, 1, "c1"], ["u3", "z", 8, 1, "c1"],
    ]  # fmt: skip
    ids = ["a", "b", "c", "d", "nan"]
    matrix = np.ones((5, 2), np.float32)
    matrix[4, 0] = np.nan
    return write_log(directory, rows, HEADER, (ids, matrix))


def test_hand_checked_log(tmp_path):
    root = write_log(tmp_path / "log", ROWS, HEADER)
    new = _compare(tmp_path, root, max_history=2, eval_fraction=0.2)
    assert new["report"]["examples"] == {"eval": 1, "train": 6}


def test_every_bad_kind_and_the_feature_table(tmp_path):
    root = write_log(tmp_path / "bad", BAD_ROWS, BAD_HEADER, (FEATURE_IDS, FEATURES))
    with open(os.path.join(root, F.RAW_INTERACTIONS_FILE), "ab") as f:
        f.write(b"\n".join(RAW_BAD_LINES) + b"\n")
    new = _compare(tmp_path, root)
    assert all(new["report"]["interactions"]["bad_rows"].values())  # every kind occurs


def test_mixed_categories_duplicates_and_unknown_videos_static_history(tmp_path):
    root = _mixed_log(tmp_path / "mixed")
    new = _compare(tmp_path, root, max_history=2, eval_fraction=0.34, static_history=True)
    bad = new["report"]["interactions"]["bad_rows"]
    assert bad["duplicate_row"] == 1 and bad["unknown_video_id"] == 3  # z, z, nan
    with_category = [ex for ex in new["train"] if any(f[0] == F.CATEGORY for f in ex)]
    assert 0 < len(with_category) < sum(new["train"].values())


def test_synthetic_log(tmp_path):
    log = synth.generate(synth.SynthConfig(users=12, videos=60, topics=4, exposures_per_user=25))
    synth.write(log, str(tmp_path / "syn"))
    new = _compare(tmp_path, tmp_path / "syn", max_history=5, eval_fraction=0.25)
    # Popular videos exist, so the side-input bucket path (not only the default) is compared.
    buckets = {dict((n, v) for n, _, v in ex)[F.VIDEO_POPULARITY_BUCKET] for ex in new["train"]}
    assert len(buckets) > 1
