"""`ccl4rec data synth|import|examples` through the CLI router."""

import json
import os

from data_helpers import read_split

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
    n = len(read_split(out, "train")) + len(read_split(out, "eval"))
    assert n == summary["exposures"] == report["interactions"]["kept_rows"]


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
    assert (
        cli.main(["data", "import", "--format", "microvideo", "--src", str(tmp_path), "--out", out])
        == 1
    )
    assert "train_data.csv" in capsys.readouterr().err
    assert cli.main(["data", "examples", "--data-root", str(tmp_path / "none"), "--out", out]) == 1
    assert "interactions.csv" in capsys.readouterr().err
