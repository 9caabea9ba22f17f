"""The Kubeflow V2 / Vertex runner compiles the pipeline offline into a pipeline spec."""

import json

from pipeline.configs import COUNT_MODEL_TYPE, PipelineConfig
from pipeline.kubeflow_v2_runner import compile_pipeline


def test_compile_writes_a_pipeline_spec_with_every_component(tmp_path):
    data = tmp_path / "raw"
    data.mkdir()
    (data / "interactions.csv").write_text("user_id,video_id,timestamp,click\nu1,v1,1,1\n")
    config = PipelineConfig(
        data_root=str(data), pipeline_root="gs://bucket/ccl4rec-root", runner="dataflow"
    )
    path = compile_pipeline(config, str(tmp_path / "pipeline.json"), image="example/ccl4rec:1")
    spec = json.loads(open(path).read())
    pipeline_spec = spec.get("pipelineSpec", spec)
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    for name in (
        "CCL4RecExampleGen",
        "StatisticsGen",
        "ExampleValidator",
        "AnomalyGate",
        "Transform",
        "Trainer",
        "count_trainer",
        "Evaluator",
        "evaluator_vs_last_blessed",
        "blessing_gate",
        "Pusher",
    ):
        assert name in tasks, sorted(tasks)
    # The Resolver of the last blessed model compiles to "<id>-..." tasks.
    assert any(t.startswith("latest_blessed_model_resolver") for t in tasks), sorted(tasks)
    # The count to beat is the user + video click-rate count, trained like the candidate.
    assert COUNT_MODEL_TYPE in json.dumps(tasks["count_trainer"])
    assert COUNT_MODEL_TYPE not in json.dumps(tasks["Trainer"])
    executors = json.dumps(pipeline_spec["deploymentSpec"])
    assert "example/ccl4rec:1" in executors
    assert "DataflowRunner" in executors


def test_local_and_kubeflow_runners_build_the_same_pipeline(tmp_path, monkeypatch):
    """Both runners go through `pipeline.pipeline.create_pipeline`, only MLMD differs."""
    from pipeline import local_runner
    from pipeline import pipeline as ccl4rec_pipeline

    built = []
    real = ccl4rec_pipeline.create_pipeline

    def spy(config, metadata_connection_config=None):
        built.append(real(config, metadata_connection_config))
        return built[-1]

    monkeypatch.setattr(ccl4rec_pipeline, "create_pipeline", spy)
    data = tmp_path / "raw"
    data.mkdir()
    config = PipelineConfig(data_root=str(data), pipeline_root=str(tmp_path / "root"))
    path = compile_pipeline(config, str(tmp_path / "pipeline.json"), image="example/ccl4rec:1")
    local = local_runner.local_pipeline(config)
    assert len(built) == 2 and built[1] is local
    kubeflow = built[0]
    assert kubeflow.metadata_connection_config is None  # Kubeflow/Vertex bring their own
    assert local.metadata_connection_config.sqlite.filename_uri == config.metadata_path
    ids = [c.id for c in local.components]
    assert ids == [c.id for c in kubeflow.components]
    assert kubeflow.beam_pipeline_args == local.beam_pipeline_args
    spec = json.loads(open(path).read())
    tasks = spec.get("pipelineSpec", spec)["root"]["dag"]["tasks"]
    for component_id in ids:  # the Resolver compiles to "<id>-..." tasks
        assert any(t == component_id or t.startswith(component_id) for t in tasks), sorted(tasks)
