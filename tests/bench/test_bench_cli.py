"""Smoke tests of `ccl4rec bench train|infer|pipeline` at tiny sizes: the JSON has every field,
finite and positive, and the ratios / goal verdicts follow from the measured numbers."""

import json
import math

import pytest

from tf_ccl4rec import cli
from tf_ccl4rec.bench import speed


def _positive(value, what):
    assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (what, value)


@pytest.mark.parametrize("mode", ["train", "infer"])
def test_bench_speed_tiny(mode, tmp_path, capsys):
    out = tmp_path / f"{mode}.json"
    code = cli.main(
        ["bench", mode, "--settings", "tiny", "--models", "ccl4rec,atrank", "--steps", "3",
         "--warmup", "1", "--batch-size", "8", "--peak-size", "512", "--peak-samples", "2",
         "--out", str(out),
         "--markdown", str(tmp_path / "table.md")]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    _positive(result["matmul_peak"]["gflops"], "peak")
    samples = result["matmul_peak"]["samples"]  # --peak-samples 2: before and after the models
    assert len(samples) == 2
    assert result["matmul_peak"]["gflops"] == max(p["gflops"] for p in samples)
    cells = result["results"]["tiny"]
    assert set(cells) == {"ccl4rec", "atrank"}
    keys = ["ms_per_step", "impressions_per_s", "gflop_per_step"] if mode == "train" else [
        "infer_ms_p50", "infer_ms_p99", "impressions_per_s", "gflop_per_batch"]  # fmt: skip
    for model, r in cells.items():
        for key in keys + ["achieved_gflops", "fraction_of_peak", "peak_rss_mb"]:
            _positive(r[key], f"{model}.{key}")
        _positive(r["parameters"]["non_embedding"], "non_embedding")
        _positive(r["parameters"]["embedding"], "embedding")
        assert r["achieved_gflops"] == pytest.approx(
            r["fraction_of_peak"] * result["matmul_peak"]["gflops"]
        )
    # The ratio is recomputed from the figures, not stored independently of them.
    ratio = result["ratios"]["tiny"]["ccl4rec_vs_atrank"]
    if mode == "train":
        expected = cells["ccl4rec"]["impressions_per_s"] / cells["atrank"]["impressions_per_s"]
    else:
        expected = cells["atrank"]["infer_ms_p50"] / cells["ccl4rec"]["infer_ms_p50"]
    assert ratio == pytest.approx(expected)
    assert f"ccl4rec_vs_atrank {ratio:.2f}x" in text
    # No paper-setting figures here: the goals must say so rather than claim anything.
    assert result["goals"] and all(g["met"] is None for g in result["goals"])
    assert "NOT MEASURED" in text
    # The README table is generated from the same figures.
    table = (tmp_path / "table.md").read_text()
    assert f"{result['matmul_peak']['gflops']:.1f} GFLOP/s" in table
    assert table.count("| tiny |") == 2 and "not measured" in table


def test_goal_verdicts_follow_the_numbers():
    def cell(non_emb, frac, speed_, ms=200.0):
        return {"parameters": {"non_embedding": non_emb}, "fraction_of_peak": frac,
                "impressions_per_s": speed_, "infer_ms_p50": 1.0 / speed_,
                "ms_per_step": ms}  # fmt: skip

    results = {"paper": {"ccl4rec": cell(158_697, 0.35, 110.0), "atrank": cell(1, 0.1, 10.0)}}
    goals = speed.goals("train", results, speed.ratios("train", results))
    # The last goal (the Trainer's batch shape) was not run: not measured, not met.
    assert [g["met"] for g in goals] == [True, True, True, True, None]
    results["paper"]["ccl4rec"] = cell(800_000, 0.29, 99.0, ms=250.1)
    results["paper-users"] = {"ccl4rec": cell(800_000, 0.29, 99.0, ms=250.0)}
    goals = speed.goals("train", results, speed.ratios("train", results))
    assert [g["met"] for g in goals] == [False, False, False, False, True]
    assert goals[2]["measured"] == pytest.approx(9.9)
    assert goals[3]["measured"] == 250.1 and "paper settings" in goals[3]["goal"]
    goals = speed.goals("infer", results, speed.ratios("infer", results))
    assert goals[-1]["measured"] == pytest.approx(9.9) and goals[-1]["met"] is False


def test_bench_rejects_unknown_models(capsys):
    assert cli.main(["bench", "train", "--models", "ccl4rec,nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_bench_pipeline_tiny(tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    code = cli.main(
        ["bench", "pipeline", "--base-users", "6", "--scales", "1,2", "--max-history", "8",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    one, two = result["scales"]["1"], result["scales"]["2"]
    assert two["raw_rows"] > one["raw_rows"] > 0
    for scale in (one, two):
        for stage, s in scale["stages"].items():
            for key in ("rows", "seconds", "rows_per_s"):
                _positive(s[key], f"{stage}.{key}")
    for stage, g in result["growth"].items():
        entry = g["vs_smallest"]["2"]
        expected = two["stages"][stage]["seconds"] / one["stages"][stage]["seconds"]
        assert entry["time_ratio"] == pytest.approx(expected)
        assert g["no_worse_than_linear"] == (g["exponent"] <= 1.10)
    assert "no worse than linear" in capsys.readouterr().out
