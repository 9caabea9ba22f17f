"""`ccl4rec data synth|import|examples` through the CLI router."""

import json
import os

from data_helpers import read_split, write_log

from tf_ccl4rec import cli
from tf_ccl4rec import features as F
from tf_ccl4rec.data import quality


def test_synth_then_examples(tmp_path, capsys):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "ex")
    args = ["data", "synth", "--out", raw, "--users", "8", "--videos", "50", "--topics", "8"]
    assert cli.main([*args, "--exposures-per-user", "12", "--seed", "5"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert os.path.exists(os.path.join(raw, F.RAW_INTERACTIONS_FILE))
    assert (
        cli.main(["data", "examples", "--data-root", raw, "--out", out, "--max-history", "4"]) == 0
    )
    text = capsys.readouterr().out
    assert "input rows/s" in text and "examples:" in text
    report = json.load(open(os.path.join(out, quality.REPORT_FILE)))
    quality.check_reconciles(report)
    assert report["options"]["max_history"] == 4
    written = read_split(out, "train") + read_split(out, "eval")
    assert len(written) == summary["exposures"] == report["interactions"]["kept_rows"]
    # Every exposure is an example, so a user's examples give the uncut counts before each one.
    for ex in written:
        before = [
            e[F.LABEL][0]
            for e in written
            if e[F.USER_ID] == ex[F.USER_ID] and e[F.TIMESTAMP][0] < ex[F.TIMESTAMP][0]
        ]
        assert ex[F.CLICK_COUNT] == [sum(before)]
        assert ex[F.NONCLICK_COUNT] == [len(before) - sum(before)]
        assert len(ex[F.CLICK_HISTORY]) == min(4, sum(before))
    assert max(ex[F.CLICK_COUNT][0] for ex in written) > 4  # some counts exceed max_history


def test_import_csv_and_errors(tmp_path, capsys):
    src = tmp_path / "log.csv"
    src.write_text("uid,video_id,timestamp,click\nu,v,1,1\n")
    out = str(tmp_path / "out")
    assert (
        cli.main(
            [
                "data",
                "import",
                "--format",
                "csv",
                "--src",
                str(src),
                "--out",
                out,
                "--column",
                "user_id=uid",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip())["rows"] == 1
    empty_src = str(tmp_path / "empty_src")
    os.mkdir(empty_src)
    assert (
        cli.main(
            ["data", "import", "--format", "microvideo", "--src", empty_src, "--out", out + "2"]
        )
        == 1
    )
    assert "train_data.csv" in capsys.readouterr().err
    assert cli.main(["data", "examples", "--data-root", str(tmp_path / "none"), "--out", out]) == 1
    assert "interactions.csv" in capsys.readouterr().err


def test_examples_output_is_refused_when_not_empty_and_replaced_whole_with_overwrite(
    tmp_path, capsys
):
    raw, out = str(tmp_path / "raw"), str(tmp_path / "ex")
    write_log(raw, [["u", f"v{i}", i, i % 2] for i in range(10)])
    assert cli.main(["data", "examples", "--data-root", raw, "--out", out]) == 0
    stale = os.path.join(out, "Split-train", "data_tfrecord-00003-of-00009.gz")
    open(stale, "wb").close()  # a shard of an earlier run with another shard count
    capsys.readouterr()
    assert cli.main(["data", "examples", "--data-root", raw, "--out", out]) == 1
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert os.path.exists(stale)
    assert cli.main(["data", "examples", "--data-root", raw, "--out", out, "--overwrite"]) == 0
    assert not os.path.exists(stale)
    assert len(read_split(out, "train")) == 8 and len(read_split(out, "eval")) == 2
    assert sorted(os.listdir(tmp_path)) == ["ex", "raw"]


def test_examples_into_its_own_raw_log_is_refused(tmp_path, capsys):
    raw = write_log(str(tmp_path / "raw"), [["u", "v", 1, 1]])
    for out in (raw, os.path.join(raw, "examples"), str(tmp_path)):
        assert cli.main(["data", "examples", "--data-root", raw, "--out", out, "--overwrite"]) == 1
        assert "the input" in capsys.readouterr().err
    assert sorted(os.listdir(raw)) == [F.RAW_INTERACTIONS_FILE]


def test_examples_strict_and_empty_data_are_clear_errors(tmp_path, capsys):
    raw = write_log(str(tmp_path / "raw"), [["u", "v", 1, 1], ["u", "w", 2**63, 0]])
    out = str(tmp_path / "ex")
    assert cli.main(["data", "examples", "--data-root", raw, "--out", out, "--strict"]) == 1
    err = capsys.readouterr().err
    assert "timestamp_out_of_range) at " in err and "interactions.csv line 3" in err
    empty = write_log(str(tmp_path / "empty"), [])
    assert cli.main(["data", "examples", "--data-root", empty, "--out", out]) == 1
    assert "0 input rows; it has no data rows" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["empty", "raw"]


def test_import_recbole_through_the_cli(tmp_path, capsys):
    src = tmp_path / "rb"
    src.mkdir()
    (src / "x.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t10\t5\t881171488.0\n1\t11\t2\t881171489.0\n1\t12\t\t881171490.0\n"
    )
    out = str(tmp_path / "out")
    args = ["data", "import", "--format", "recbole", "--src", str(src), "--out", out]
    assert cli.main([*args, "--label", "rating>2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["rows"], summary["clicks"], summary["label_rule"]) == (2, 1, "rating>2")
    assert summary["interactions"]["bad_rows"] == {"missing_label": 1}
    assert cli.main([*args, "--overwrite", "--strict"]) == 1
    assert "missing_label) at " in capsys.readouterr().err
    assert os.path.exists(os.path.join(out, F.RAW_INTERACTIONS_FILE))  # the failed run kept it
    assert cli.main([*args, "--column", "video_id=item_id"]) == 2
    assert "--column applies to --format csv only" in capsys.readouterr().err


def test_import_into_its_own_source_fails_and_keeps_the_source(tmp_path, capsys):
    src = write_log(str(tmp_path / "d"), [["u", f"v{i}", i, 1] for i in range(20)])
    before = open(os.path.join(src, F.RAW_INTERACTIONS_FILE)).read()
    args = ["data", "import", "--format", "csv", "--src", src, "--out", src, "--overwrite"]
    assert cli.main(args) == 1
    assert "is the input" in capsys.readouterr().err
    assert open(os.path.join(src, F.RAW_INTERACTIONS_FILE)).read() == before
