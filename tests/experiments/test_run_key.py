"""The experiment run cache is keyed by the model/training code too, not only by the settings."""

import os
import shutil
import types

import tf_ccl4rec
from tf_ccl4rec.code_version import code_version
from tf_ccl4rec.experiments import runs


def test_code_version_follows_the_model_code_only(tmp_path):
    package = tmp_path / "tf_ccl4rec"
    shutil.copytree(
        os.path.dirname(tf_ccl4rec.__file__),
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    original = code_version(str(package))
    assert original == code_version()  # same sources, same version, wherever they are
    (package / "report.py").write_text("# not model code\n", encoding="utf-8")
    code_version.cache_clear()
    assert code_version(str(package)) == original
    for changed in ("losses.py", "layers/encoder.py", "experiments/metrics.py"):
        path = package / changed
        path.write_text(path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
        code_version.cache_clear()
        assert code_version(str(package)) != original, changed
        original = code_version(str(package))


def test_run_key_changes_with_the_code(monkeypatch):
    prepared = types.SimpleNamespace(stats={"rows": 1}, data_dir="/data", max_history=50)
    run = runs.spec("full")
    monkeypatch.setattr(runs, "code_version", lambda: "aaaa")
    before = runs.run_key(run, prepared, "alpine", (10, 50))
    assert before == runs.run_key(run, prepared, "alpine", (10, 50))
    monkeypatch.setattr(runs, "code_version", lambda: "bbbb")
    assert runs.run_key(run, prepared, "alpine", (10, 50)) != before


def test_runs_of_the_same_model_share_a_key_however_their_overrides_are_written():
    prepared = types.SimpleNamespace(stats={"rows": 1}, data_dir="/data", max_history=50)

    def key(**overrides):
        return runs.run_key(runs.spec("x", **overrides), prepared, "alpine", (10, 50))

    full = key(**runs.CONTRASTIVE)
    # easy2hard is CCL4RecConfig's default strategy and 4 its default Np = Nn: the strategies'
    # easy2hard and the Np sweep's 4 are the ablation's full model, one run.
    assert key(**runs.CONTRASTIVE, strategy="easy2hard") == full
    assert key(**runs.CONTRASTIVE, num_positives=4, num_negatives=4) == full
    assert key(**runs.CONTRASTIVE, mlp_units=[200, 80]) == full  # the default layers
    # A value the default preset already sets (embedding_dim 32): the same model.
    assert key(**runs.CONTRASTIVE, embedding_dim=32) == full
    assert key(**runs.CONTRASTIVE, strategy="random") != full
    assert key(**runs.CONTRASTIVE, num_positives=3, num_negatives=3) != full
    assert key(**runs.CONTRASTIVE, seed=1) != full
    assert key() != full  # the default preset trains no contrastive term
