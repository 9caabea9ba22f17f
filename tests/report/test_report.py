"""`ccl4rec report` on a tiny real pipeline run: metrics table, validation result, embedded plots.

One blessed run (no baseline yet) and one rerun with an impossible AUC floor, which the Evaluator
compares against the blessed model and refuses; a report is built after each. The runs are the
session's shared `tiny_pipeline` (tests/shared_artifacts.py), which tests/pipeline's e2e tests
read too (a cached rerun comes between the two: it evaluates nothing new).
"""

import base64
import os
import re

import pytest
import tensorflow_model_analysis as tfma

from tf_ccl4rec import cli
from tf_ccl4rec import features as F
from tf_ccl4rec.report import locate

# Under xdist this module and the other reader of the shared run are one unit (SHARED in
# tests/conftest.py), so one worker builds it once.
pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reports(tiny_pipeline):
    run = tiny_pipeline
    return (
        run.config.pipeline_root,
        (run.first, run.first_report),
        (run.strict, run.second_report),
    )


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
    # The Overall column holds what TFMA's loader returns for the candidate.
    overall = _overall(summary.evaluation_uri, "candidate")
    for metric in ("auc", "precision_at_50", "f1_at_50"):
        assert f"<tr><td>{metric}</td><td>{overall[metric]['doubleValue']:.4f}</td>" in table
    # Validation result and the thresholds it was checked against.
    assert 'Model blessing: <span class="ok">BLESSED</span>' in page
    assert 'TFMA validation_ok: <span class="ok">True</span>' in page
    assert "<td>AUC</td><td>Overall</td><td>&gt;= 0</td>" in page
    # The Evaluator's baseline is the user + video count trained in the same run.
    comparison = page.split("Comparison with the user + video count")[1].split("</table>")[0]
    count_auc = _overall(summary.evaluation_uri, "baseline")["auc"]["doubleValue"]
    assert f"<td>Overall</td><td>auc</td><td>{overall['auc']['doubleValue']:.4f}</td>" in comparison
    assert f"<td>{count_auc:.4f}</td>" in comparison
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
    comparison = page.split("Comparison with the user + video count")[1].split("</table>")[0]
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
    err = capsys.readouterr().err
    assert f"no MLMD store at {tmp_path / 'nowhere' / 'metadata.sqlite'}" in err


def test_report_from_another_directory_with_a_relative_root(reports, tmp_path, monkeypatch):
    """The run used the relative root out/pipeline; MLMD holds absolute URIs, so any cwd works."""
    root, (summary, _), _ = reports
    assert os.path.isabs(summary.evaluation_uri) and summary.evaluation_uri.startswith(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    relative = os.path.relpath(root)
    assert not os.path.isabs(relative)
    assert cli.main(["report", "--root", relative, "--out", "r.html"]) == 0
    assert "<h2>Metrics per slice</h2>" in (elsewhere / "r.html").read_text()


def _store_with_evaluation(root, uri=None):
    """An MLMD store at `root`, holding one ModelEvaluation artifact at `uri` (None: no artifact)."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration.metadata import sqlite_metadata_connection_config

    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "metadata.sqlite")
    store = metadata_store.MetadataStore(sqlite_metadata_connection_config(path))
    if uri is not None:
        type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="ModelEvaluation"))
        store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri=uri)])
    return path


def test_missing_evaluation_is_one_line_naming_the_path(tmp_path, capsys):
    empty = str(tmp_path / "empty")
    store_path = _store_with_evaluation(empty)
    assert cli.main(["report", "--root", empty, "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err == f"report: no Evaluator output recorded in the MLMD store {store_path}\n"

    gone = str(tmp_path / "gone" / "Evaluator" / "evaluation" / "7")
    root = str(tmp_path / "gone")
    _store_with_evaluation(root, gone)
    assert cli.main(["report", "--root", root, "--out", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err == f"report: evaluation not found: no directory {gone}\n"


def test_relative_uris_of_older_runs_resolve_against_the_root(tmp_path, monkeypatch):
    """Stores written with a relative root hold URIs relative to the directory the run used."""
    root = tmp_path / "project" / "demo_out" / "pipeline"
    evaluation = root / "Evaluator" / "evaluation" / "9"
    evaluation.mkdir(parents=True)
    _store_with_evaluation(str(root), "demo_out/pipeline/Evaluator/evaluation/9")
    monkeypatch.chdir(tmp_path)
    assert locate("project/demo_out/pipeline")["evaluation"] == str(evaluation)
