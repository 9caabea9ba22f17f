"""Importers on tiny fixtures in the real datasets' layouts (no real dataset needed)."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from data_helpers import write_log

from tf_ccl4rec import features as F
from tf_ccl4rec.data import importers, load_video_features, quality, raw_log, staging


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
    assert summary == {
        "rows": 7,
        "feature_rows": 5,
        "test_item_offset": 3,
        "interactions": {"input_rows": 7, "kept_rows": 7, "bad_rows": {}, "reconciles": True},
    }
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
    (tmp_path / "src").mkdir()
    with pytest.raises(FileNotFoundError, match="train_data.csv"):
        importers.import_microvideo(str(tmp_path / "src"), str(tmp_path / "o"), progress=None)
    assert sorted(os.listdir(tmp_path)) == ["src"]  # no output, no partial directory


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
    (src / "final_visual_train" / "14.npy").write_bytes(b"\x93NUMPY truncated")  # unreadable
    out = str(tmp_path / "out")
    summary = importers.import_kuaishou(str(src), out, progress=None)
    assert summary["rows"] == 6 and summary["feature_rows"] == 3
    report = json.loads(open(os.path.join(out, importers.IMPORT_REPORT_FILE)).read())
    assert report["video_features"] == {
        "input_rows": 5,
        "kept_rows": 3,
        "bad_rows": {raw_log.WRONG_FEATURE_WIDTH: 1, importers.UNREADABLE_FEATURE_FILE: 1},
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
    assert (summary["rows"], summary["feature_rows"]) == (5, 4)
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
        assert (summary["rows"], summary["feature_rows"]) == (2, 0)
        assert summary["interactions"]["input_rows"] == 2
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


# --- RecBole atomic files ------------------------------------------------------------------------

INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ITEM_HEADER = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"


def _recbole_src(tmp_path, inter_rows, item_rows=None, header=INTER_HEADER, name="ml"):
    src = tmp_path / "recbole"
    src.mkdir(exist_ok=True)
    lines = [header.encode()] + [r if isinstance(r, bytes) else r.encode() for r in inter_rows]
    (src / f"{name}.inter").write_bytes(b"\n".join(lines) + b"\n")
    if item_rows is not None:
        items = [ITEM_HEADER.encode()] + [
            r if isinstance(r, bytes) else r.encode() for r in item_rows
        ]
        (src / f"{name}.item").write_bytes(b"\n".join(items) + b"\n")
    return str(src)


RECBOLE_INTER = [
    "1\t10\t5\t881171488.0",  # float timestamp -> integer; rating 5 -> click
    "1\t11\t4\t881171489",  # rating 4: rating>=4 -> click
    "2\t10\t3.5\t881171490",  # no click
    "2\t12\t2\t881171491",  # item without a class: empty category
    "2\t13\t1\t881171492",  # item not in the .item file: empty category
]
RECBOLE_ITEMS = [
    "10\tToy Story\t1995\tAnimation Children's Comedy",
    "11\tGoldenEye\t1995\tAction Adventure",
    b"12\tCaf\xe9 (latin-1 title)\t1995\t",  # a title that is not UTF-8 does not lose the item
]


def test_recbole_maps_columns_label_rule_category_and_float_timestamps(tmp_path):
    src = _recbole_src(tmp_path, RECBOLE_INTER, RECBOLE_ITEMS)
    out = str(tmp_path / "out")
    summary = importers.run_import("recbole", src, out, progress=None)
    assert (summary["rows"], summary["clicks"], summary["click_rate"]) == (5, 2, 0.4)
    assert summary["label_rule"] == "rating>=4"
    assert summary["items"] == {
        "category_column": "class",
        "input_rows": 3,
        "kept_rows": 3,
        "bad_rows": {},
        "reconciles": True,
    }
    log = _read_log(out)
    assert list(log.columns) == [*F.RAW_REQUIRED_COLUMNS, F.RAW_CATEGORY]
    assert log.values.tolist() == [
        ["1", "10", "881171488", "1", "Animation"],
        ["1", "11", "881171489", "1", "Action"],
        ["2", "10", "881171490", "0", "Animation"],
        ["2", "12", "881171491", "0", ""],
        ["2", "13", "881171492", "0", ""],
    ]
    report = json.loads(open(os.path.join(out, importers.IMPORT_REPORT_FILE)).read())
    assert report["format"] == "recbole" and report["source"] == "ml.inter"


@pytest.mark.parametrize(
    "rule,clicks",
    [
        ("rating>=4", [1, 1, 0, 0, 0]),
        ("rating > 4", [1, 0, 0, 0, 0]),
        ("rating<=2", [0, 0, 0, 1, 1]),
        ("rating<3.5", [0, 0, 0, 1, 1]),
        ("rating==3.5", [0, 0, 1, 0, 0]),
    ],
)
def test_recbole_label_rule_operators(tmp_path, rule, clicks):
    src = _recbole_src(tmp_path, RECBOLE_INTER)
    out = str(tmp_path / "out")
    summary = importers.import_recbole(src, out, label=rule, progress=None)
    assert list(_read_log(out)[F.RAW_CLICK].astype(int)) == clicks
    assert "items" not in summary and F.RAW_CATEGORY not in _read_log(out).columns


def test_recbole_direct_label_column_and_genre(tmp_path):
    header = "user_id:token\titem_id:token\ttimestamp:float\tlabel:float"
    rows = ["1\t10\t5\t1", "1\t11\t6\t0.0", "1\t12\t7\t0.5", "1\t13\t8\tyes"]
    src = _recbole_src(tmp_path, rows, header=header)
    (tmp_path / "recbole" / "ml.item").write_text("item_id:token\tgenre:token_seq\n10\tDrama War\n")
    summary = importers.import_recbole(src, str(tmp_path / "out"), label="label", progress=None)
    assert summary["interactions"]["bad_rows"] == {
        importers.LABEL_NOT_0_1: 1,
        importers.NON_NUMERIC_LABEL: 1,
    }
    assert summary["items"]["category_column"] == "genre"
    log = _read_log(str(tmp_path / "out"))
    assert log.values.tolist() == [["1", "10", "5", "1", "Drama"], ["1", "11", "6", "0", ""]]


def test_recbole_bad_rows_are_counted_with_their_reasons(tmp_path):
    rows = [
        *RECBOLE_INTER,
        "3\t10\t\t881171493",  # missing label
        "3\t11\tNaN\t881171494",  # non-numeric label
        "3\t12\tgood\t881171495",  # non-numeric label
        "3\t10\t5\tyesterday",  # non-numeric timestamp
        "3\t10\t5\t1e30",  # timestamp out of int64 range
        "3\t10\t5",  # wrong field count
        "\t10\t5\t881171496",  # empty user id
        b"3\t1\xff0\t5\t881171497",  # item id is not UTF-8
        "",  # blank line: not a row
    ]
    items = [*RECBOLE_ITEMS, "10\tdup\t1995\tHorror", "\tno id\t1995\tDrama", "11\tshort"]
    src = _recbole_src(tmp_path, rows, items)
    summary = importers.import_recbole(src, str(tmp_path / "out"), progress=None)
    assert summary["interactions"] == {
        "input_rows": 13,
        "kept_rows": 5,
        "bad_rows": {
            importers.MISSING_LABEL: 1,
            raw_log.MISSING_FIELD: 2,
            importers.NON_NUMERIC_LABEL: 2,
            raw_log.NON_NUMERIC_TIMESTAMP: 1,
            raw_log.NOT_UTF8: 1,
            raw_log.TIMESTAMP_OUT_OF_RANGE: 1,
        },
        "reconciles": True,
    }
    assert summary["items"]["bad_rows"] == {
        importers.DUPLICATE_ITEM_ID: 1,
        raw_log.MISSING_FIELD: 2,
    }
    assert _read_log(str(tmp_path / "out"))[F.RAW_CATEGORY][0] == "Animation"  # first row kept


def test_recbole_strict_names_file_and_line(tmp_path):
    src = _recbole_src(tmp_path, [*RECBOLE_INTER, "3\t11\tNaN\t881171494"])
    with pytest.raises(raw_log.BadRowError, match=r"non_numeric_label\) at .*ml.inter line 7"):
        importers.import_recbole(src, str(tmp_path / "out"), strict=True, progress=None)
    assert not os.path.exists(tmp_path / "out")


def test_recbole_layout_errors_are_clear(tmp_path):
    src = _recbole_src(tmp_path, RECBOLE_INTER)
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="label rule 'rating=>4'"):
        importers.import_recbole(src, out, label="rating=>4", progress=None)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['score'\]"):
        importers.import_recbole(src, out, label="score>=4", progress=None)
    (tmp_path / "recbole" / "other.inter").write_text(INTER_HEADER + "\n")
    with pytest.raises(ValueError, match=r"exactly one .inter file, found \['ml.inter', 'other"):
        importers.import_recbole(src, out, progress=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="exactly one .inter file, found none"):
        importers.import_recbole(str(tmp_path / "empty"), out, progress=None)
    assert not os.path.exists(out)


def test_recbole_log_builds_examples(tmp_path, build):
    src = _recbole_src(tmp_path, RECBOLE_INTER, RECBOLE_ITEMS)
    out = str(tmp_path / "out")
    importers.import_recbole(src, out, progress=None)
    train, eval_, report = build(out, eval_fraction=0.0)
    assert report["interactions"]["kept_rows"] == 5 and eval_ == []
    first = next(e for e in train if e[F.TIMESTAMP] == [881171488])
    assert first[F.CATEGORY] == [b"Animation"] and first[F.LABEL] == [1]


# --- output safety and unreadable rows (every importer) -----------------------------------------


def test_import_into_its_own_source_is_refused_and_the_source_kept(tmp_path):
    src = write_log(tmp_path / "d", [["u", f"v{i}", i, 1] for i in range(50)])
    before = open(os.path.join(src, F.RAW_INTERACTIONS_FILE)).read()
    for out in (src, os.path.join(src, "raw")):
        with pytest.raises(staging.OutputError, match="the input"):
            importers.run_import("csv", src, out, overwrite=True, progress=None)
    assert open(os.path.join(src, F.RAW_INTERACTIONS_FILE)).read() == before
    assert sorted(os.listdir(src)) == [F.RAW_INTERACTIONS_FILE]


def test_reimport_needs_overwrite_and_drops_the_old_feature_table(tmp_path):
    with_features = write_log(
        tmp_path / "a", [["u", "v1", 1, 1]], None, (["v1"], np.ones((1, 2), np.float32))
    )
    without = write_log(tmp_path / "b", [["u", "v2", 2, 0]])
    out = str(tmp_path / "out")
    importers.run_import("csv", with_features, out, progress=None)
    with pytest.raises(staging.OutputError, match="not empty; pass --overwrite"):
        importers.run_import("csv", without, out, progress=None)
    assert load_video_features(out) is not None  # the refused import changed nothing
    importers.run_import("csv", without, out, overwrite=True, progress=None)
    assert load_video_features(out) is None
    assert sorted(os.listdir(out)) == sorted(
        [F.RAW_INTERACTIONS_FILE, importers.IMPORT_REPORT_FILE]
    )


def test_unreadable_rows_are_counted_or_fatal_with_file_and_line(tmp_path):
    src = tmp_path / "log.csv"
    huge = b"u,v" + b"x" * 200_000 + b",4,1\n"  # over the csv module's field limit
    src.write_bytes(
        b"user_id,video_id,timestamp,click\nu,v1,1,1\nu,v\xff,2,0\nu,v3,3,1\n"
        + huge
        + b"u,v5,5,0\n"
    )
    out = str(tmp_path / "out")
    summary = importers.import_csv(str(src), out, progress=None)
    assert summary["interactions"] == {
        "input_rows": 5,
        "kept_rows": 3,
        "bad_rows": {raw_log.FIELD_TOO_LONG: 1, raw_log.NOT_UTF8: 1},
        "reconciles": True,
    }
    assert list(_read_log(out)[F.RAW_VIDEO_ID]) == ["v1", "v3", "v5"]
    with pytest.raises(raw_log.BadRowError, match=r"not_utf8\) at .*log.csv line 3"):
        importers.import_csv(str(src), str(tmp_path / "strict"), strict=True, progress=None)
    assert sorted(os.listdir(tmp_path)) == ["log.csv", "out"]  # nothing partial


def test_kuaishou_and_microvideo_count_unreadable_rows(tmp_path, microvideo_src):
    (microvideo_src / "test_data.csv").open("ab").write(b"2,1,9,\xff,300\n")
    summary = importers.import_microvideo(str(microvideo_src), str(tmp_path / "mv"), progress=None)
    assert summary["interactions"]["bad_rows"] == {raw_log.NOT_UTF8: 1}
    src = tmp_path / "k"
    src.mkdir()
    _kuaishou_log(src, KUAISHOU_ROWS)
    (src / "train_interaction.txt").open("ab").write(b"3\t1\xff\t1\t0\t0\t1\t0\t1\n")
    summary = importers.import_kuaishou(str(src), str(tmp_path / "ks"), progress=None)
    assert summary["interactions"] == {
        "input_rows": 6,
        "kept_rows": 5,
        "bad_rows": {raw_log.NOT_UTF8: 1},
        "reconciles": True,
    }
    with pytest.raises(raw_log.BadRowError, match=r"train_interaction.txt line 6"):
        importers.import_kuaishou(str(src), str(tmp_path / "k2"), strict=True, progress=None)


def test_an_import_that_keeps_nothing_stops_and_writes_nothing(tmp_path):
    src = _recbole_src(tmp_path, ["1\t10\tbad\t1", "1\t11\t\t2"])
    with pytest.raises(
        quality.EmptyDataError,
        match="import_recbole: nothing imported from .*: 2 input rows; none was kept; bad rows: "
        "missing_label=1, non_numeric_label=1",
    ):
        importers.run_import("recbole", src, str(tmp_path / "out"), progress=None)
    header_only = tmp_path / "h.csv"
    header_only.write_text("user_id,video_id,timestamp,click\n")
    with pytest.raises(quality.EmptyDataError, match="0 input rows; it has no data rows"):
        importers.import_csv(str(header_only), str(tmp_path / "out"), progress=None)
    assert not os.path.exists(tmp_path / "out")
