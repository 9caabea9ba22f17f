"""`--tune` end to end on tiny generated data: the Tuner runs 2 trials, writes its best
hyperparameters, the main Trainer consumes them, and every component gets its progress lines."""

import json
import os
import re

import pytest

from pipeline import local_runner
from pipeline.configs import PipelineConfig
from tf_ccl4rec import mlmd
from tf_ccl4rec.tuning import SEARCH_SPACE

pytestmark = pytest.mark.slow


def test_tune_runs_the_tuner_and_the_trainer_takes_its_best_hyperparameters(tiny_data, tmp_path):
    data = tiny_data  # the 40-user log of the e2e tests (tests/shared_artifacts.py)
    config = PipelineConfig(
        data_root=data, pipeline_root=str(tmp_path / "root"), max_history=20, train_steps=60,
        max_epochs=2, model={"mlp_units": [16], "num_substitutes": 100}, auc_floor=0.0,
        min_gain_over_count=-1.0, tune=True, tune_trials=2,
    )  # fmt: skip
    lines = []
    summary = local_runner.run(config, echo=lambda *a, **k: lines.append(a[0]))
    assert summary.pushed
    # One start and one end line per component, the Tuner included, numbered out of 14.
    assert "Tuner" in summary.timings and "Trainer" in summary.timings
    assert len(lines) == 2 * 14 and all(re.match(r"\[\d+/14\] ", line) for line in lines)
    store = mlmd.open_store(config.pipeline_root)
    best = mlmd.latest_output(store, "HyperParameters", "Tuner")
    path = mlmd.artifact_path(best.uri, config.pipeline_root)
    with open(os.path.join(path, "best_hyperparameters.txt")) as handle:
        values = json.load(handle)["values"]
    assert set(values) == set(SEARCH_SPACE)
    assert all(value in SEARCH_SPACE[key] for key, value in values.items())
    (results_artifact,) = store.get_artifacts_by_type("TunerResults")
    results_dir = mlmd.artifact_path(results_artifact.uri, config.pipeline_root)
    with open(os.path.join(results_dir, "tuner_results.json")) as handle:
        assert len(json.load(handle)) == 2  # both trials completed
    # The main Trainer's execution read that artifact; the count Trainer's did not.
    readers = {
        context.name.rsplit(".", 1)[-1]
        for event in store.get_events_by_artifact_ids([best.id])
        if event.type == event.INPUT
        for context in store.get_contexts_by_execution(event.execution_id)
        if context.name.startswith(f"{config.pipeline_name}.")
    }
    assert readers == {"Trainer"}
