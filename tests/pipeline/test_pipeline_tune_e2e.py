"""`--tune` end to end on tiny generated data: the Tuner runs 2 trials, writes its best
hyperparameters, the main Trainer consumes them, and every component gets its progress lines.

The run goes on the root of the session's shared `tiny_pipeline` (tests/shared_artifacts.py),
after its three runs: the data components and Transform come from its cache (they used to run
again here on the same 40-user log); the Tuner, the Trainer and the Evaluators run.
Under xdist this module is in the shared run's scheduling unit (SHARED in tests/conftest.py).
"""

import json
import os
import re

import pytest
from shared_artifacts import tiny_config

from pipeline import local_runner
from tf_ccl4rec import mlmd
from tf_ccl4rec.tuning import SEARCH_SPACE

pytestmark = pytest.mark.slow


def test_tune_runs_the_tuner_and_the_trainer_takes_its_best_hyperparameters(tiny_pipeline):
    shared = tiny_pipeline.config
    # The shared run's settings (max_history 20, 60 steps, 2 epochs, AUC floor 0, no gain over
    # the count required) with this test's model and --tune. The root already has a blessed
    # model: max_auc_drop=1 lets the tuned one be pushed whatever its AUC against it (on the
    # fresh root this test used before, that comparison had no baseline to fail).
    config = tiny_config(
        shared.data_root, shared.pipeline_root, model={"mlp_units": [16], "num_substitutes": 100},
        tune=True, tune_trials=2, max_auc_drop=1.0,
    )  # fmt: skip
    lines = []
    summary = local_runner.run(config, echo=lambda *a, **k: lines.append(a[0]))
    # Same data and Transform settings as the shared run: those and the count (which reads no
    # model setting, `TrainerSettings.for_count`) come from its cache.
    for name in ("CCL4RecExampleGen", "StatisticsGen", "Transform", "count_trainer"):
        assert summary.timings[name][1], f"{name} was not cached"
    assert not summary.timings["Tuner"][1] and not summary.timings["Trainer"][1]
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
