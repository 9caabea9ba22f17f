"""`ccl4rec report` on a tiny real pipeline run: metrics table, validation result, embedded plots.

One blessed run (no baseline yet) and one rerun with an impossible AUC floor, which the Evaluator
compares against the blessed model and refuses; a report is built after each.
"""

import base64
import re

import pytest
import tensorflow_model_analysis as tfma

from pipeline import local_runner
from pipeline.configs import PipelineConfig
from tf_ccl4rec import cli
from tf_ccl4rec import features as F
from tf_ccl4rec.data import synth
from tf_ccl4rec.report import build_report

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _config(data_dir, root, **overrides):
    values = dict(
        data_root=data_dir,
        pipeline_root=root,
        max_history=20,
        train_steps=40,
        eval_steps=4,
        epochs=2,
        model={"embedding_dim": 16, "mlp_units": [16], "num_substitutes": 100},
        auc_floor=0.0,
    )
    values.update(overrides)
    return PipelineConfig(**values)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("raw"))
    synth.synth(
        synth.SynthConfig(users=40, videos=200, topics=8, exposures_per_user=60, seed=3),
        data_dir,
        progress=lambda *a, **k: None,
    )
    root = str(tmp_path_factory.mktemp("pipeline"))
    out = tmp_path_factory.mktemp("reports")
    quiet = dict(echo=lambda *a, **k: None)
    first = local_runner.run(_config(data_dir, root), **quiet)
    first_html = build_report(root, str(out / "first.html"))
    second = local_runner.run(_config(data_dir, root, auc_floor=0.999), **quiet)
    second_html = build_report(root, str(out / "second.html"))
    return root, (first, open(first_html).read()), (second, open(second_html).read())


def _images(page):
    images = [base64.b64decode(d) for d in re.findall(r"data:image/png;base64,([^\"']+)", page)]
    for image in images:
        assert image.startswith(PNG_MAGIC) and len(image) > 1000
    return images


def _overall(evaluation_uri, model_name=None):
    result = tfma.load_eval_result(evaluation_uri, model_name=model_name)
    return next(m[""][""] for k, m in result.slicing_metrics if k == ())


def test_first_report_metrics_validation_and_plots(reports):
    _, (summary, page), _ = reports
    assert summary.blessed is True
    assert summary.evaluation_uri in page  # the report is about the latest evaluation
    table = page.split("<h2>Metrics per slice</h2>")[1].split("</table>")[0]
    for metric in (
        "auc",
        "example_count",
        "calibration",
        "mean_label",
        "mean_prediction",
        "binary_crossentropy",
        "precision_at_50",
        "recall_at_50",
        "f1_at_50",
        "ranked_users_at_50",
        "precision_at_10",
    ):
        assert f"<tr><td>{metric}</td>" in table
    assert "<th>Overall</th>" in table
    for feature in (F.USER_ACTIVITY_BUCKET, F.VIDEO_POPULARITY_BUCKET):
        assert f"<th>{feature} = " in table
    # The Overall column holds what TFMA's loader returns.
    overall = _overall(summary.evaluation_uri)
    for metric in ("auc", "precision_at_50", "f1_at_50"):
        assert f"<tr><td>{metric}</td><td>{overall[metric]['doubleValue']:.4f}</td>" in table
    # Validation result and the thresholds it was checked against.
    assert 'Model blessing: <span class="ok">BLESSED</span>' in page
    assert 'TFMA validation_ok: <span class="ok">True</span>' in page
    assert "<td>AUC</td><td>Overall</td><td>&gt;= 0</td>" in page
    assert "This evaluation had no baseline model." in page
    assert "protocol <b>alpine</b>" in page
    images = _images(page)
    print(f"first report: {len(page)} characters, {len(images)} images")
    assert len(images) == 3  # calibration, per-slice bars, training curves
    assert not re.search(r"(src|href)=[\"']?https?:", page)  # nothing to fetch


def test_refused_rerun_shows_failure_and_baseline_comparison(reports):
    _, (first, _), (second, page) = reports
    assert second.blessed is False and second.evaluation_uri != first.evaluation_uri
    assert 'Model blessing: <span class="bad">NOT BLESSED</span>' in page
    assert 'TFMA validation_ok: <span class="bad">False</span>' in page
    assert "<td>AUC</td><td>Overall</td><td>&gt;= 0.999</td>" in page
    failures = page.split("Failed thresholds:")[1].split("</table>")[0]
    assert "<td>Overall</td><td>auc</td>" in failures
    comparison = page.split("Comparison with the baseline model")[1].split("</table>")[0]
    base_auc = _overall(second.evaluation_uri, "baseline")["auc"]["doubleValue"]
    cand = _overall(second.evaluation_uri, "candidate")
    diff = cand["auc_diff"]["doubleValue"]
    assert (
        f"<td>Overall</td><td>auc</td><td>{cand['auc']['doubleValue']:.4f}</td>"
        f"<td>{base_auc:.4f}</td><td>{diff:.4f}</td>"
    ) in comparison
    assert len(_images(page)) == 3


def test_cli_writes_the_page_and_rejects_a_bad_root(reports, tmp_path, capsys):
    root = reports[0]
    out = tmp_path / "cli.html"
    assert cli.main(["report", "--root", root, "--out", str(out)]) == 0
    assert "<h2>Metrics per slice</h2>" in out.read_text()
    assert cli.main(["report", "--root", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "no MLMD store" in capsys.readouterr().out
