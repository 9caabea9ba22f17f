"""CCL4RecExampleGen: parameters, and its executor writing a real Examples artifact."""

import json
import os

import pytest
from data_helpers import read_split, write_log

from pipeline.components.example_gen import EXAMPLES_KEY, CCL4RecExampleGen, Executor
from tf_ccl4rec import features as F
from tf_ccl4rec.data import quality

ROWS = [["u1", "a", 1, 1], ["u1", "b", 2, 0], ["u1", "c", 3, 1], ["u1", "d", 4, 1]]


def test_component_parameters_and_validation():
    gen = CCL4RecExampleGen(data_root="/data/raw", static_history=True, strict=True)
    props = gen.exec_properties
    assert props["data_root"] == "/data/raw"
    assert props["max_history"] == F.DEFAULT_MAX_HISTORY
    assert (props["static_history"], props["strict"], props["eval_fraction"]) == (1, 1, 0.2)
    assert EXAMPLES_KEY in gen.outputs
    assert props.get("input_fingerprint") is None  # unreadable path: cache keys on the path only
    with pytest.raises(ValueError, match="eval_fraction"):
        CCL4RecExampleGen(data_root="/data/raw", eval_fraction=1.5)


def _run_executor(root, out, **kwargs):
    from tfx.types import standard_artifacts

    artifact = standard_artifacts.Examples()
    artifact.uri = out
    Executor().Do({}, {EXAMPLES_KEY: [artifact]}, CCL4RecExampleGen(root, **kwargs).exec_properties)
    return artifact


def test_executor_writes_the_tfx_examples_layout(tmp_path):
    from tfx.components.util import examples_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils

    root = write_log(tmp_path / "raw", ROWS + [ROWS[0], "u2,x,notatime,1"])
    out = str(tmp_path / "out")
    artifact = _run_executor(root, out, max_history=1, eval_fraction=0.25)
    assert artifact_utils.decode_split_names(artifact.split_names) == ["train", "eval"]
    assert examples_utils.get_payload_format(artifact) == example_gen_pb2.FORMAT_TF_EXAMPLE
    train, eval_ = read_split(out, "train"), read_split(out, "eval")
    assert [e[F.VIDEO_ID] for e in eval_] == [[b"d"]]
    assert eval_[0][F.CLICK_HISTORY] == [b"c"]  # max_history=1 keeps the newest click
    # ... while the counts are uncut: a and c clicked, b not, before d.
    assert (eval_[0][F.CLICK_COUNT], eval_[0][F.NONCLICK_COUNT]) == ([2], [1])
    assert len(train) == 3
    report = json.load(open(os.path.join(out, quality.REPORT_FILE)))
    assert report["interactions"]["bad_rows"]["duplicate_row"] == 1
    assert report["interactions"]["bad_rows"]["non_numeric_timestamp"] == 1
    quality.check_reconciles(report)


def test_executor_strict_fails(tmp_path):
    root = write_log(tmp_path / "raw", ROWS + ["u2,x,3,7"])
    with pytest.raises(Exception, match="click_not_0_1"):
        _run_executor(root, str(tmp_path / "out"), strict=True)


def test_fingerprint_parameter_tracks_the_raw_log(tmp_path):
    root = write_log(tmp_path / "raw", ROWS)
    first = CCL4RecExampleGen(str(root)).exec_properties["input_fingerprint"]
    assert first and first == CCL4RecExampleGen(str(root)).exec_properties["input_fingerprint"]
    write_log(tmp_path / "raw", ROWS + [["u2", "e", 5, 0]])
    assert CCL4RecExampleGen(str(root)).exec_properties["input_fingerprint"] != first


def test_executor_stops_on_data_with_nothing_kept(tmp_path):
    root = write_log(tmp_path / "raw", ["u1,a,1", "u1,b,late,0"])
    with pytest.raises(quality.EmptyDataError, match="2 input rows; none was kept; bad rows: "):
        _run_executor(root, str(tmp_path / "out"))
