"""The blessing gate's "already serving" check and the CLI's exit codes (no pipeline run)."""

import os

import pytest
from tfx.types import standard_artifacts

from pipeline.components import blessing_gate as gate


def _saved_model(directory, fingerprint: bytes):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
        f.write(b"graph")
    with open(os.path.join(directory, gate.FINGERPRINT), "wb") as f:
        f.write(fingerprint)


@pytest.fixture
def model(tmp_path):
    artifact = standard_artifacts.Model()
    artifact.uri = str(tmp_path / "Trainer" / "model" / "7")
    _saved_model(os.path.join(artifact.uri, "Format-Serving"), b"mine")
    return artifact


def test_the_newest_version_with_the_same_fingerprint_is_already_serving(model, tmp_path):
    base = str(tmp_path / "serving" / "ccl4rec")
    assert gate.serving_version_of(model, base) is None  # nothing pushed yet
    _saved_model(os.path.join(base, "1700000000"), b"mine")
    for name in ("not-a-version", "²", "0099999999999"):  # not versions to the servers either
        _saved_model(os.path.join(base, name), b"other")
    os.makedirs(os.path.join(base, "1800000000"))  # a version with no saved_model.pb: incomplete
    assert gate.serving_version_of(model, base) == os.path.join(base, "1700000000")
    # A newer, different model serves now: pushing this one again is a real change.
    _saved_model(os.path.join(base, "1700000100"), b"other")
    assert gate.serving_version_of(model, base) is None
    # Version numbers compare as numbers, not as strings.
    _saved_model(os.path.join(base, "999"), b"mine")
    assert gate.serving_version_of(model, base) is None


def test_without_a_fingerprint_the_model_is_pushed(model, tmp_path):
    base = str(tmp_path / "serving" / "ccl4rec")
    os.makedirs(os.path.join(base, "1"))  # e.g. a version copied without its fingerprint.pb
    with open(os.path.join(base, "1", "saved_model.pb"), "wb") as f:
        f.write(b"graph")
    assert gate.serving_version_of(model, base) is None


@pytest.mark.parametrize(
    "pushed, already_serving, code", [(True, None, 0), (False, "/s/1", 0), (False, None, 3)]
)
def test_pipeline_run_exit_code(monkeypatch, tmp_path, pushed, already_serving, code):
    from pipeline import cli, local_runner
    from tf_ccl4rec.cli import main

    summary = local_runner.RunSummary(
        blessed=pushed or bool(already_serving),
        pushed=pushed,
        pushed_path="/s/2" if pushed else None,
        evaluation_uri=None,
        metrics={},
        timings={},
        log_file="",
        already_serving=already_serving,
    )
    monkeypatch.setattr(local_runner, "run", lambda config: summary)
    assert main(["pipeline", "run", "--data", str(tmp_path), "--root", str(tmp_path)]) == code
    assert cli.EXIT_NOT_BLESSED == 3
    if already_serving:
        assert any("already serving as /s/1" in line for line in summary.lines())
