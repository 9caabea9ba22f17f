"""`ccl4rec experiment`: every subcommand at tiny scale, and the ground-truth metric helpers
against NumPy computations written here."""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from tf_ccl4rec.cli import main
from tf_ccl4rec.experiments import metrics
from tf_ccl4rec.experiments.data import history_noise

STUDIES = ("ablation", "strategies", "np-sweep", "baselines", "case-study")


def _pairwise_auc(positive_scores, negative_scores):
    """P(score of a positive > score of a negative), ties count half: the AUC by definition."""
    pos = np.asarray(positive_scores, np.float64)[:, None]
    neg = np.asarray(negative_scores, np.float64)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


# --- helpers ------------------------------------------------------------------------------------


def test_alpha_noise_auc_matches_pairwise_numpy():
    rng = np.random.default_rng(0)
    alphas = [rng.normal(size=n) for n in (12, 7, 20, 5)]
    noise = [(rng.random(a.size) < 0.3).astype(int) for a in alphas]
    noise[3][:] = 0  # a history without noise: pooled only, not in the per-user mean
    alphas[0][noise[0] == 1] -= 1.0  # noise gets lower importance in the first history
    got = metrics.alpha_noise_auc(alphas, noise)

    flat_a, flat_z = np.concatenate(alphas), np.concatenate(noise)
    # noise is the positive class, scored by -alpha: genuine items with higher alpha count.
    pooled = _pairwise_auc(-flat_a[flat_z == 1], -flat_a[flat_z == 0])
    per_user = np.mean(
        [
            _pairwise_auc(-a[z == 1], -a[z == 0])
            for a, z in zip(alphas, noise, strict=True)
            if 0 < z.sum() < z.size
        ]
    )
    assert got["pooled"] == pytest.approx(pooled)
    assert got["per_user"] == pytest.approx(per_user)
    assert got["items"] == flat_a.size and got["noise_items"] == flat_z.sum()
    assert got["histories"] == 4


def test_alpha_noise_auc_extremes_and_errors():
    perfect = metrics.alpha_noise_auc([np.array([3.0, 2.0, -1.0, -2.0])], [np.array([0, 0, 1, 1])])
    assert perfect["pooled"] == 1.0 and perfect["per_user"] == 1.0
    reversed_ = metrics.alpha_noise_auc([np.array([3.0, -2.0])], [np.array([1, 0])])
    assert reversed_["pooled"] == 0.0
    assert math.isnan(metrics.alpha_noise_auc([np.ones(3)], [np.zeros(3)])["pooled"])
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.alpha_noise_auc([np.ones(3)], [np.zeros(2)])
    with pytest.raises(ValueError, match="alpha arrays"):
        metrics.alpha_noise_auc([np.ones(3)], [])


def test_oracle_auc_matches_pairwise_numpy_and_drops_unknown_rows():
    rng = np.random.default_rng(1)
    prob = rng.random(200)
    labels = (rng.random(200) < prob).astype(int)
    prob_with_gaps = prob.copy()
    prob_with_gaps[::10] = np.nan
    known = ~np.isnan(prob_with_gaps)
    expected = _pairwise_auc(prob[known & (labels == 1)], prob[known & (labels == 0)])
    assert metrics.oracle_auc(labels, prob_with_gaps) == pytest.approx(expected)
    assert metrics.oracle_auc(labels, prob) == pytest.approx(
        _pairwise_auc(prob[labels == 1], prob[labels == 0])
    )


def test_history_noise_maps_clicks_strictly_before_and_newest_last():
    truth = pd.DataFrame(
        {
            "video_id": ["a", "b", "c", "d", "e", "f"],
            "timestamp": [5, 1, 3, 7, 9, 2],
            "click": [1, 1, 0, 1, 1, 1],
            "is_noise": [0, 1, 0, 1, 0, 0],
        }
    )
    # Clicks before t=9 in time order: b(1), f(2), a(5), d(7); the newest 3: f, a, d.
    assert history_noise(truth, 9, ["f", "a", "d"], 3).tolist() == [0, 0, 1]
    assert history_noise(truth, 9, ["b", "f", "a", "d"], 50).tolist() == [1, 0, 0, 1]
    assert history_noise(truth, 7, ["b", "f", "a"], 50).tolist() == [1, 0, 0]  # d is at t: out
    assert history_noise(truth, 9, ["f", "d", "a"], 3) is None  # ids differ: not mapped


# --- the subcommands ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tf_ccl4rec.data import synth

    root = tmp_path_factory.mktemp("experiments")
    data = str(root / "data")
    # 12 users x 25 exposures: 229 rows to train on, one eager step of 128 per epoch (24 x 30:
    # 549 rows, 4 steps). A run costs its steps (eager per-op overhead), not its rows. Measured
    # side by side (2 modules at once, one intra-op thread each): the module 207 -> 167 s.
    synth.synth(
        synth.SynthConfig(users=12, videos=120, topics=4, exposures_per_user=25), data, None
    )
    return data, str(root / "out")


# --max-history 10 (the CLI's default is the demo's 50): the users here have at most 25
# exposures, and every eager step's tensors scale with the window; the checks are on what the
# subcommands write, not on the scores. Measured side by side (same load): the five
# subcommand tests 256 s -> 217 s wall, 220 -> 189 CPU seconds.
def _args(study, data, out, *extra):
    return [
        "experiment",
        study,
        "--data",
        data,
        "--out",
        out,
        "--quick",
        "--max-epochs",
        "2",
        "--max-history",
        "10",
        *extra,
    ]


def _finite_numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _finite_numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _finite_numbers(v)
    elif isinstance(value, float):
        yield value


def _check_png(path):
    assert os.path.getsize(path) > 2000, path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", path


@pytest.mark.parametrize("study", STUDIES)
def test_subcommand_writes_table_results_and_figures(tiny, study):
    data, out = tiny
    assert main(_args(study, data, out)) == 0
    study_dir = os.path.join(out, study)
    with open(os.path.join(study_dir, "table.md")) as f:
        table = f.read()
    assert table.startswith("### ") and "| " in table and "alpine" in table
    pngs = [n for n in os.listdir(study_dir) if n.endswith(".png")]
    assert pngs, f"{study} wrote no figure"
    for name in pngs:
        _check_png(os.path.join(study_dir, name))
        assert f"({name})" in table  # every figure is referenced by the table
    with open(os.path.join(study_dir, "results.json")) as f:
        results = json.load(f)
    for label, stats in results["stats"].items():
        auc = stats["auc"]["mean"] if isinstance(stats["auc"], dict) else stats["auc"]
        assert 0.0 <= auc <= 1.0, (study, label, auc)
    for run_list in results.get("runs", {}).values():
        for r in run_list:
            counting = r["model_type"] in ("popularity", "user_item_rate")
            assert r["epochs"] == (1 if counting else 2)  # --max-epochs 2, patience 2: no stop
            if counting:  # one exact pass over every training row: nothing to validate
                assert r["best_epoch"] == 0 and r["best_val_auc"] is None  # NaN stored as null
                assert r["refit_epochs"] == 0
            else:
                assert 1 <= r["best_epoch"] <= r["epochs"]
                assert 0.0 <= r["best_val_auc"] <= 1.0
                assert r["refit_epochs"] == r["best_epoch"]
            for key in ("auc", "precision_at_10", "recall_at_10", "f1_at_50"):
                assert 0.0 <= r[key] <= 1.0, (study, key, r[key])
            if r["model_type"] == "ccl4rec":
                assert 0.0 <= r["alpha_noise_auc"] <= 1.0
            assert r["train_seconds_per_epoch"] > 0 and r["inference_ms_per_batch"] > 0
            assert all(math.isfinite(x) for x in _finite_numbers(r["curves"]))
            assert len(r["curves"]["step"]) == r["epochs"]  # one curve point per epoch


def test_case_study_hardness_correlations_are_computed(tiny):
    data, out = tiny
    path = os.path.join(out, "case-study", "results.json")
    if not os.path.exists(path):
        assert main(_args("case-study", data, out)) == 0
    with open(path) as f:
        stats = json.load(f)["stats"]
    assert len(stats) == 2
    for s in stats.values():
        assert -1.0 <= s["spearman_pos"] <= 1.0 and -1.0 <= s["spearman_neg"] <= 1.0
        assert 0.0 <= s["mean_distance_pos"] <= 2.0 and s["rows"] > 0


def test_all_assembles_the_page_from_cached_runs(tiny, tmp_path):
    data, out = tiny
    page = str(tmp_path / "docs" / "results.md")
    assert main(_args("all", data, out, "--page", page)) == 0
    with open(page) as f:
        text = f.read()
    assert "ccl4rec experiment all" in text and "--max-epochs 2" in text
    assert "## Which of the paper's claims held here" in text
    assert (
        text.count("**held**") + text.count("**not shown**") + text.count("**contradicted**") >= 8
    )
    figures = os.listdir(tmp_path / "docs" / "results")
    assert {"ablation.png", "case_study_tsne.png", "strategies_loss.png"} <= set(figures)
    for name in figures:
        assert f"(results/{name})" in text


def test_bad_inputs_are_clear_errors(tiny, tmp_path):
    data, out = tiny
    with pytest.raises(SystemExit, match="is not a directory"):
        main(["experiment", "ablation", "--data", str(tmp_path / "nope"), "--out", out])
    with pytest.raises(SystemExit, match="--max-epochs must be >= 1"):
        main(["experiment", "ablation", "--data", data, "--out", out, "--max-epochs", "0"])
    with pytest.raises(SystemExit, match="--page is only for `all`"):
        main(["experiment", "ablation", "--data", data, "--out", out, "--page", "x.md"])
    with pytest.raises(FileNotFoundError, match="has no interactions.csv"):
        main(["experiment", "ablation", "--data", str(tmp_path), "--out", out])
