"""Importers on tiny fixtures in the real datasets' layouts (no real dataset needed)."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from data_helpers import write_log

from tf_ccl4rec import features as F
from tf_ccl4rec.data import importers, load_video_features, raw_log


def _read_log(out):
    return pd.read_csv(os.path.join(out, F.RAW_INTERACTIONS_FILE), dtype=str, keep_default_na=False)


@pytest.fixture
def microvideo_src(tmp_path):
    src = tmp_path / "microvideo"
    src.mkdir()
    header = "user_id,item_id,cate_id,is_click,timestamp"
    train = [header, "1,0,7,1,100", "1,1,7,0,110", "2,2,8,1,105", "2,0,7,0,120"]
    test = [header, "1,0,9,1,200", "2,1,9,0,210", "2,1,9"]  # last row malformed on purpose
    (src / "train_data.csv").write_text("\n".join(train) + "\n")
    (src / "test_data.csv").write_text("\n".join(test) + "\n")
    np.save(src / "train_cover_image_feature.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.save(src / "test_cover_image_feature.npy", -np.arange(8, dtype=np.float32).reshape(2, 4))
    return src


def test_microvideo_keeps_split_and_offsets_test_items(microvideo_src, tmp_path):
    out = str(tmp_path / "out")
    summary = importers.import_microvideo(str(microvideo_src), out, progress=None)
    assert summary == {"rows": 7, "feature_rows": 5, "test_item_offset": 3}
    log = _read_log(out)
    assert list(log.columns) == [*F.RAW_REQUIRED_COLUMNS, F.RAW_CATEGORY, F.RAW_SPLIT]
    assert list(log[F.RAW_SPLIT]) == ["train"] * 4 + ["eval"] * 3
    assert list(log[F.RAW_VIDEO_ID]) == ["0", "1", "2", "0", "3", "4", ""]  # test ids + 3
    assert list(log[F.RAW_CATEGORY][:2]) == ["7", "7"]
    ids, matrix = load_video_features(out)
    assert ids == ["0", "1", "2", "3", "4"]
    np.testing.assert_array_equal(matrix[3:], -np.arange(8, dtype=np.float32).reshape(2, 4))
    np.testing.assert_array_equal(matrix[:3], np.arange(12).reshape(3, 4))


def test_microvideo_examples_follow_the_provided_split(microvideo_src, tmp_path, build):
    out = str(tmp_path / "out")
    importers.import_microvideo(str(microvideo_src), out, progress=None)
    train, eval_, report = build(out)
    assert (len(train), len(eval_)) == (4, 2)
    assert report["interactions"]["bad_rows"][raw_log.MISSING_FIELD] == 1
    assert report["interactions"]["reconciles"]
    assert {e[F.VIDEO_ID][0] for e in eval_} == {b"3", b"4"}
    # Eval target 3 (user 1 at t=200) sees user 1's train clicks before it.
    ev = next(e for e in eval_ if e[F.VIDEO_ID] == [b"3"])
    assert ev[F.CLICK_HISTORY] == [b"0"] and ev[F.NONCLICK_HISTORY] == [b"1"]


def test_microvideo_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_data.csv"):
        importers.import_microvideo(str(tmp_path), str(tmp_path / "o"), progress=None)


def _kuaishou_log(src, rows):
    lines = ["\t".join(str(x) for x in r) for r in rows]
    (src / "train_interaction.txt").write_text("\n".join(lines) + "\n")


# user_id, photo_id, click, like, follow, time, playing_time, duration_time
KUAISHOU_ROWS = [
    (1, 10, 1, 0, 0, 1000, 5, 10),
    (1, 11, 0, 0, 0, 2000, 0, 12),
    (1, 12, 1, 1, 0, 3000, 9, 9),
    (2, 10, 0, 0, 0, 1500, 0, 10),
    (2, 13, 1, 0, 0, 2500, 3, 8),
]


def test_kuaishou_per_photo_folder(tmp_path, build):
    src = tmp_path / "kuaishou"
    (src / "final_visual_train").mkdir(parents=True)
    _kuaishou_log(src, KUAISHOU_ROWS)
    (src / "train_interaction.txt").open("a").write("3\t10\t1\n")  # malformed: 3 fields
    rng = np.random.default_rng(0)
    for pid in (10, 11):
        np.save(src / "final_visual_train" / f"{pid}.npy", rng.normal(size=(1, 2048)))
    np.save(src / "final_visual_train" / "12.npy", np.full((1, 2048), np.nan))  # NaN
    np.save(src / "final_visual_train" / "13.npy", rng.normal(size=(1, 1024)))  # wrong width
    out = str(tmp_path / "out")
    summary = importers.import_kuaishou(str(src), out, progress=None)
    assert summary["rows"] == 6 and summary["feature_rows"] == 3
    report = json.loads(open(os.path.join(out, importers.IMPORT_REPORT_FILE)).read())
    assert report["video_features"] == {
        "input_rows": 4,
        "kept_rows": 3,
        "bad_rows": {raw_log.WRONG_FEATURE_WIDTH: 1},
        "reconciles": True,
    }
    log = _read_log(out)
    assert list(log.columns) == list(F.RAW_REQUIRED_COLUMNS)
    assert list(log[F.RAW_TIMESTAMP][:3]) == ["1000", "2000", "3000"]
    assert list(log[F.RAW_VIDEO_ID][:3]) == ["10", "11", "12"]
    train, eval_, quality_report = build(out, eval_fraction=0.0)
    inter = quality_report["interactions"]
    # 12 has NaN features and 13 was dropped at import: both count as unknown videos here.
    assert inter["bad_rows"][raw_log.UNKNOWN_VIDEO] == 2
    assert inter["bad_rows"][raw_log.MISSING_FIELD] == 1
    assert inter["kept_rows"] == 3 and inter["reconciles"]
    assert quality_report["video_features"]["bad_rows"][raw_log.NON_FINITE_FEATURE] == 1
    assert len(train) == 3 and eval_ == []


def test_kuaishou_strict_wrong_width_is_fatal(tmp_path):
    src = tmp_path / "k"
    (src / "final_visual_train").mkdir(parents=True)
    _kuaishou_log(src, KUAISHOU_ROWS)
    np.save(src / "final_visual_train" / "10.npy", np.zeros((1, 7)))
    with pytest.raises(raw_log.BadRowError, match="wrong_feature_width"):
        importers.import_kuaishou(str(src), str(tmp_path / "o"), strict=True, progress=None)


def test_kuaishou_matrix_with_id_list(tmp_path):
    src = tmp_path / "k"
    src.mkdir()
    _kuaishou_log(src, KUAISHOU_ROWS)
    np.save(src / "visual64_select.npy", np.ones((4, 64), np.float64))
    (src / "ids.txt").write_text("10\n11\n12\n13\n")
    out = str(tmp_path / "out")
    summary = importers.import_kuaishou(
        str(src),
        out,
        features=str(src / "visual64_select.npy"),
        feature_ids=str(src / "ids.txt"),
        progress=None,
    )
    assert summary == {"rows": 5, "feature_rows": 4}
    ids, matrix = load_video_features(out)
    assert ids == ["10", "11", "12", "13"] and matrix.shape == (4, 64)
    assert matrix.dtype == np.float32


def test_csv_with_column_mapping_and_parquet(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    frame = pd.DataFrame(
        {"uid": ["a", "b"], "item": [1, 2], "ts": [5, 6], "clicked": [1, 0], "extra": ["x", "y"]}
    )
    frame.to_csv(src / "log.csv", index=False)
    frame.to_parquet(src / "log.parquet")
    mapping = {"user_id": "uid", "video_id": "item", "timestamp": "ts", "click": "clicked"}
    for name in ("log.csv", "log.parquet"):
        out = str(tmp_path / f"out_{name}")
        summary = importers.import_csv(str(src / name), out, columns=mapping, progress=None)
        assert summary == {"rows": 2, "feature_rows": 0}
        log = _read_log(out)
        assert list(log.columns) == list(F.RAW_REQUIRED_COLUMNS)
        assert log.values.tolist() == [["a", "1", "5", "1"], ["b", "2", "6", "0"]]
    with pytest.raises(ValueError, match="lacks column"):
        importers.import_csv(str(src / "log.csv"), str(tmp_path / "bad"), progress=None)


def test_csv_directory_copies_the_feature_table(tmp_path):
    src = write_log(
        tmp_path / "src", [["u", "v1", 1, 1]], None, (["v1", "v2"], np.eye(2, dtype=np.float32))
    )
    out = str(tmp_path / "out")
    assert importers.run_import("csv", src, out, progress=None)["feature_rows"] == 2
    ids, matrix = load_video_features(out)
    assert ids == ["v1", "v2"]
    np.testing.assert_array_equal(matrix, np.eye(2))
    with pytest.raises(ValueError, match="unknown format"):
        importers.run_import("avro", src, out)
