"""The whole TFX pipeline on tiny generated data: push layout, signatures, TFMA output, blessing, cache.

The full run, a cached rerun and a rerun with an impossible AUC floor are the session's shared
`tiny_pipeline` (tests/shared_artifacts.py; tests/report reads the same runs); the tests here
that run more (a crippled baseline) reuse its cache on its root.
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from shared_artifacts import TINY_MODEL, tiny_config
from shared_artifacts import versions as pushed_versions

from pipeline import local_runner
from pipeline.components.anomaly_gate import DataAnomaliesError
from tf_ccl4rec import features as F

# Under xdist this module and the other reader of the shared run are one unit (SHARED in
# tests/conftest.py), so one worker builds it once.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_run(tiny_pipeline):
    return tiny_pipeline.config, tiny_pipeline.first, tiny_pipeline.lines


def test_push_layout_and_serving_default_answers(first_run, tiny_pipeline):
    config, summary, lines = first_run
    assert summary.blessed is True and summary.pushed
    versions = tiny_pipeline.versions["first"]  # right after the first run
    assert len(versions) == 1
    version_dir = os.path.join(config.serving_base, "ccl4rec", str(versions[0]))
    assert summary.pushed_path.rstrip("/") == version_dir
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    loaded = tf.saved_model.load(version_dir)
    assert {"serving_default", "predict", "recommend", "user_embedding"} <= set(loaded.signatures)
    examples = []
    for clicks, label in (([b"v1", b"v2"], 1), ([], 0)):
        ex = tf.train.Example()
        feats = ex.features.feature
        feats[F.USER_ID].bytes_list.value.append(b"u0")
        feats[F.VIDEO_ID].bytes_list.value.append(b"v3")
        feats[F.LABEL].int64_list.value.append(label)
        feats[F.TIMESTAMP].int64_list.value.append(10)
        feats[F.CLICK_HISTORY].bytes_list.value.extend(clicks)
        feats[F.NONCLICK_HISTORY].bytes_list.value.extend([])
        examples.append(ex.SerializeToString())
    scores = loaded.signatures["serving_default"](inputs=tf.constant(examples))["scores"].numpy()
    assert scores.shape == (2, 1)
    assert np.all((scores > 0) & (scores < 1))
    # Progress output: one start and one end line per component, in order, with wall times.
    assert sum("Trainer" in line for line in lines) == 2
    components = [
        "CCL4RecExampleGen",
        "StatisticsGen",
        "ImportSchemaGen",
        "ExampleValidator",
        "AnomalyGate",
        "Transform",
        "Trainer",
        "count_trainer",
        "latest_blessed_model_resolver",
        "Evaluator",
        "evaluator_vs_last_blessed",
        "blessing_gate",
        "Pusher",
    ]
    assert len(lines) == 2 * len(components), lines
    numbers = []
    total = len(components)
    for name in components:  # in the runner's (topological) order, numbered 1..total
        (start,) = [
            re.fullmatch(rf"\[(\d+)/{total}\] {name} \.\.\.", x) for x in lines if name in x
        ][:1]
        assert start, lines
        numbers.append(start.group(1))
        end = rf"\[{start.group(1)}/{total}\] {name} done in \d+\.\d s"
        assert any(re.fullmatch(end, x) for x in lines), (end, lines)
    assert sorted(numbers, key=int) == [str(i) for i in range(1, total + 1)]
    assert set(summary.timings) == set(components)


def test_tfma_metrics_for_every_slice_and_a_validation_result(first_run):
    config, summary, _ = first_run
    # The Evaluator compares the candidate with the count model of the same run.
    result = tfma.load_eval_result(summary.evaluation_uri, model_name="candidate")
    by_slice = {key: m[""][""] for key, m in result.slicing_metrics}
    wanted = {"auc", "example_count", "calibration", "precision_at_50", "recall_at_50", "f1_at_50"}
    assert wanted <= set(by_slice[()])
    for feature in (F.USER_ACTIVITY_BUCKET, F.VIDEO_POPULARITY_BUCKET):
        slices = [k for k in by_slice if k and k[0][0] == feature]
        assert slices, f"no slices on {feature}"
        for key in slices:
            assert {"auc", "precision_at_50", "recall_at_50", "f1_at_50"} <= set(by_slice[key])
    for key in [k for k in by_slice if k and k[0][0] == F.VIDEO_POPULARITY_BUCKET]:
        within = {f"{m}_at_50_within_video_bucket" for m in ("precision", "recall", "f1")}
        assert within <= set(by_slice[key])
    validation = tfma.load_validation_result(summary.evaluation_uri)
    assert validation.validation_ok
    assert summary.metrics["auc"] == pytest.approx(by_slice[()]["auc"]["doubleValue"])


def test_rerun_uses_cache_pushes_nothing_new_and_auc_floor_blocks_the_push(tiny_pipeline):
    first, before = tiny_pipeline.first, tiny_pipeline.versions["first"]
    # Same inputs: data and training components come from the cache, and the model they give
    # back is the one already serving: nothing new is pushed, and that is a success.
    summary = tiny_pipeline.rerun
    for name in ("CCL4RecExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert summary.timings[name][1], f"{name} was not cached"
    assert tiny_pipeline.versions["rerun"] == before
    assert summary.blessed is True and not summary.pushed
    assert summary.already_serving.rstrip("/") == first.pushed_path.rstrip("/")
    assert any("already serving" in line for line in summary.lines())
    # Same model, impossible floor (auc_floor=0.999): evaluated again against the count, not
    # blessed, nothing new pushed. The floor is the full evaluation's alone (make_gate_config):
    # the comparison with the last blessed model has the same inputs and config, so it is cached.
    summary = tiny_pipeline.strict
    assert summary.timings["Trainer"][1]
    assert not summary.timings["Evaluator"][1] and summary.timings["evaluator_vs_last_blessed"][1]
    assert summary.blessed is False and not summary.pushed and not summary.already_serving
    assert tiny_pipeline.versions["strict"] == before


def test_a_baseline_that_does_not_beat_the_count_is_trained_evaluated_and_not_pushed(first_run):
    """A baseline (NCF) through the same pipeline, crippled so that it cannot beat the count:
    one step at a vanishing learning rate, so it scores like its random initialisation. (Two
    runs before, an NCF at the shared settings and a crippled CCL4Rec; the gate reads only the
    metrics, whatever the model, so one run checks both.)"""
    config, _, _ = first_run
    before = pushed_versions(config)
    crippled = tiny_config(
        config.data_root, config.pipeline_root, model_type="ncf", train_steps=1, max_epochs=1,
        model=dict(TINY_MODEL, learning_rate=1e-9), min_gain_over_count=0.001,
    )  # fmt: skip
    summary = local_runner.run(crippled, echo=lambda *a, **k: None)
    # Same data: the examples and Transform come from the cache; the baseline is trained.
    assert summary.timings["Transform"][1] and not summary.timings["Trainer"][1]
    # The count reads none of the knobs changed here: the first run's is reused (for_count).
    assert summary.timings["count_trainer"][1], "the count was trained again"
    assert 0.0 < summary.metrics["auc"] < 1.0
    assert "precision_at_50" in summary.metrics
    assert summary.blessed is False and not summary.pushed
    assert summary.count_metrics["auc"] > summary.metrics["auc"]
    assert summary.beats_count is False
    assert any("count" in line for line in summary.lines())
    assert pushed_versions(config) == before


def test_schema_anomaly_stops_before_training(tiny_data, tmp_path):
    from schema_helpers import schema_with_label_domain

    schema = schema_with_label_domain(tmp_path / "schema.pbtxt", 0, 0)  # label 1 is now an anomaly
    config = tiny_config(tiny_data, str(tmp_path / "root"), schema_path=str(schema))
    with pytest.raises(DataAnomaliesError, match="label"):
        local_runner.run(config, echo=lambda *a, **k: None)
    assert not os.path.exists(os.path.join(config.pipeline_root, "Trainer"))
    assert not os.path.exists(os.path.join(config.pipeline_root, "Transform"))
