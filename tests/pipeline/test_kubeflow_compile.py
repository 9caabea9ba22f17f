"""The Kubeflow V2 / Vertex runner compiles the pipeline offline into a pipeline spec."""

import json

from pipeline.configs import PipelineConfig
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
        "Evaluator",
        "Pusher",
    ):
        assert name in tasks, sorted(tasks)
    executors = json.dumps(pipeline_spec["deploymentSpec"])
    assert "example/ccl4rec:1" in executors
    assert "DataflowRunner" in executors
