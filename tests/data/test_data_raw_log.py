"""Row parsing, bad-row kinds, the feature-table loader and the quality report."""

import numpy as np
import pytest
from data_helpers import write_log

from tf_ccl4rec.data import load_video_features, quality, raw_log
from tf_ccl4rec.data.raw_log import Interaction

HEADER = ["user_id", "video_id", "timestamp", "click", "category", "split"]


@pytest.mark.parametrize(
    "line,expected",
    [
        ("u,v,10,1,c,train", Interaction("u", "v", 10, 1, "c", "train")),
        (" u , v ,1.6e9,0.0,,eval", Interaction("u", "v", 1_600_000_000, 0, "", "eval")),
        ('"u,1",v,3,1,c,train', Interaction("u,1", "v", 3, 1, "c", "train")),
        ("u,v,10,1,c", raw_log.MISSING_FIELD),
        ("u,v,10,1,c,train,x", raw_log.MISSING_FIELD),
        (",v,10,1,c,train", raw_log.MISSING_FIELD),
        ("", raw_log.MISSING_FIELD),
        ("u,v,ten,1,c,train", raw_log.NON_NUMERIC_TIMESTAMP),
        ("u,v,inf,1,c,train", raw_log.NON_NUMERIC_TIMESTAMP),
        ("u,v,10,2,c,train", raw_log.BAD_CLICK),
        ("u,v,10,0.5,c,train", raw_log.BAD_CLICK),
        ("u,v,10,1,c,test", raw_log.BAD_SPLIT),
        ("u,v,10,1,c,", raw_log.BAD_SPLIT),
        ("u,v,1e30,1,c,train", raw_log.TIMESTAMP_OUT_OF_RANGE),
        (f"u,v,{2**63},1,c,train", raw_log.TIMESTAMP_OUT_OF_RANGE),
        (f"u,v,{-(2**63)},1,c,train", Interaction("u", "v", -(2**63), 1, "c", "train")),
        (f"u,{'v' * 1024},1,1,c,train", Interaction("u", "v" * 1024, 1, 1, "c", "train")),
        (f"u,{'v' * 1025},1,1,c,train", raw_log.FIELD_TOO_LONG),
        (f"u,{'v' * 5_000_000},1,1,c,train", raw_log.FIELD_TOO_LONG),
        (f"u,v,1,1,{'c' * 2000}", raw_log.FIELD_TOO_LONG),  # before the field count
        ("u,v\r,1,1,c,train", raw_log.MALFORMED_CSV),
        (b"u,v\xff,1,1,c,train", raw_log.NOT_UTF8),
        ("u,vé,1,1,c,train".encode(), Interaction("u", "vé", 1, 1, "c", "train")),
    ],
)
def test_parse_line(line, expected):
    parse = raw_log.parse_raw_line if isinstance(line, bytes) else raw_log.parse_line
    row, kind = parse(line, HEADER)
    if isinstance(expected, str):
        assert (row, kind) == (None, expected)
    else:
        assert (row, kind) == (expected, None)


def test_feature_row_kind():
    assert raw_log.feature_row_kind(np.zeros((1, 4)), 4) is None
    assert raw_log.feature_row_kind(np.zeros(4), 4) is None
    assert raw_log.feature_row_kind(np.zeros((1, 3)), 4) == raw_log.WRONG_FEATURE_WIDTH
    assert raw_log.feature_row_kind(np.zeros((2, 4)), 4) == raw_log.WRONG_FEATURE_WIDTH
    assert raw_log.feature_row_kind(np.array([0, np.nan, 0, 0]), 4) == raw_log.NON_FINITE_FEATURE
    assert raw_log.feature_row_kind(np.array([0, -np.inf, 0, 0]), 4) == raw_log.NON_FINITE_FEATURE


def test_load_video_features_keeps_valid_rows(tmp_path):
    matrix = np.array([[1, 2], [np.nan, 0], [3, 4], [5, 6]], np.float64)
    root = write_log(tmp_path, [["u", "a", 1, 1]], None, (["a", "b", "c", "a"], matrix))
    ids, got = load_video_features(root)
    assert ids == ["a", "c"]  # b has NaN, the second a is a duplicate
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[1, 2], [3, 4]])
    assert load_video_features(str(tmp_path / "nowhere")) is None


def test_load_video_features_rejects_misaligned_table(tmp_path):
    root = write_log(tmp_path, [["u", "a", 1, 1]], None, (["a"], np.zeros((2, 3))))
    with pytest.raises(ValueError, match="2 feature rows but 1 ids"):
        load_video_features(root)


def test_half_a_feature_table_is_an_error(tmp_path):
    root = write_log(tmp_path, [["u", "a", 1, 1]])
    np.save(tmp_path / "video_features.npy", np.zeros((1, 2)))
    with pytest.raises(FileNotFoundError, match="both be present"):
        raw_log.raw_log_paths(root)


def test_report_reconciliation_and_summary():
    counts = {
        "interactions.input_rows": 10,
        "interactions.kept_rows": 7,
        "interactions.duplicate_row": 2,
        "interactions.missing_field": 1,
        "video_features.input_rows": 3,
        "video_features.kept_rows": 2,
        "examples.train": 5,
        "examples.eval": 2,
    }
    report = quality.build_report(counts)
    assert report["interactions"]["reconciles"]
    assert report["interactions"]["bad_rows"][raw_log.BAD_CLICK] == 0
    assert not report["video_features"]["reconciles"]  # one feature row unaccounted for
    with pytest.raises(AssertionError, match="video_features"):
        quality.check_reconciles(report)
    assert "DOES NOT RECONCILE" in quality.summary(report)
    assert report["examples"] == {"eval": 2, "train": 5}


def test_fingerprint_changes_with_the_data(tmp_path):
    import os

    from data_helpers import write_log

    root = write_log(
        tmp_path / "log", [["u1", "a", 1, 1]], ["user_id", "video_id", "timestamp", "click"]
    )
    first = raw_log.fingerprint(str(root))
    assert raw_log.fingerprint(str(root)) == first
    path = os.path.join(str(root), "interactions.csv")
    with open(path, "a") as f:
        f.write("u1,b,2,0\n")
    assert raw_log.fingerprint(str(root)) != first
