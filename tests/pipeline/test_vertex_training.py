"""`--vertex-training`: the Trainer as a Vertex AI Training job of several replicas (TFX's Vertex
AI Trainer extension), compiled offline; nothing is submitted."""

import argparse
import json

import pytest

from pipeline import configs
from pipeline.cli import add_arguments, config_from_args


def test_keys_are_tfx_vertex_trainer_keys():
    from tfx.extensions.google_cloud_ai_platform import constants
    from tfx.extensions.google_cloud_ai_platform.trainer import executor

    assert configs.VERTEX_ENABLE_KEY == constants.ENABLE_VERTEX_KEY
    assert configs.VERTEX_REGION_KEY == constants.VERTEX_REGION_KEY
    assert configs.VERTEX_TRAINING_ARGS_KEY == executor.TRAINING_ARGS_KEY


def test_worker_pools_chief_then_workers():
    base = {"trainer_settings": "{}"}
    custom = configs.vertex_custom_config(
        base,
        {
            "project": "p",
            "image": "gcr.io/p/ccl4rec:1",
            "workers": 4,
            "accelerator_type": "NVIDIA_TESLA_T4",
        },  # fmt: skip
    )
    assert custom["trainer_settings"] == "{}" and custom[configs.VERTEX_ENABLE_KEY] is True
    assert custom[configs.VERTEX_REGION_KEY] == "us-central1"
    args = custom[configs.VERTEX_TRAINING_ARGS_KEY]
    assert args["project"] == "p"
    pools = args["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 3]
    assert {p["container_spec"]["image_uri"] for p in pools} == {"gcr.io/p/ccl4rec:1"}
    assert pools[0]["machine_spec"] == {"machine_type": "n1-standard-8",
        "accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 1}  # fmt: skip
    one = configs.vertex_custom_config(base, {"project": "p", "image": "i", "workers": 1})
    assert len(one[configs.VERTEX_TRAINING_ARGS_KEY]["worker_pool_specs"]) == 1
    with pytest.raises(ValueError, match=r"unknown keys \['zone'\], missing \['image'\]"):
        configs.vertex_custom_config(base, {"project": "p", "zone": "x"})


def test_compiled_pipeline_trains_on_vertex(tmp_path):
    from pipeline.kubeflow_v2_runner import compile_pipeline

    data = tmp_path / "raw"
    data.mkdir()
    (data / "interactions.csv").write_text("user_id,video_id,timestamp,click\nu1,v1,1,1\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["compile-kubeflow", "--data", str(data), "--root", "gs://b/root", "--output", "x",
         "--vertex-training", "project=my-project", "--vertex-training", "image=gcr.io/p/c:1",
         "--vertex-training", "workers=2", "--vertex-training", "region=europe-west4"]
    )  # fmt: skip
    config = config_from_args(args)
    path = compile_pipeline(config, str(tmp_path / "pipeline.json"), image="gcr.io/p/c:1")
    spec = json.loads(open(path).read())
    spec = spec.get("pipelineSpec", spec)
    executors = json.dumps(spec["deploymentSpec"])
    assert "google_cloud_ai_platform.trainer.executor" in executors
    trainer = json.dumps(spec["root"]["dag"]["tasks"]["Trainer"])
    assert "worker_pool_specs" in trainer and "europe-west4" in trainer
    # The count stays an ordinary Trainer (one counting pass).
    assert "worker_pool_specs" not in json.dumps(spec["root"]["dag"]["tasks"]["count_trainer"])
