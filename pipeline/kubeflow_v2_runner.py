"""Compiles the pipeline for Kubeflow Pipelines V2 / Vertex AI Pipelines (a JSON pipeline spec).

Compiling needs no cluster; submitting the file is done with the KFP or Vertex client. The container
image must have this package installed (e.g. built from a Dockerfile that `pip install`s it) and
data/pipeline roots must be on storage the cluster reads (gs://...).
"""

from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import (
    KubeflowV2DagRunner,
    KubeflowV2DagRunnerConfig,
)

from pipeline import pipeline as ccl4rec_pipeline
from pipeline.configs import PipelineConfig

DEFAULT_IMAGE = "gcr.io/YOUR_PROJECT/ccl4rec-tfx:latest"


def compile_pipeline(config: PipelineConfig, output_file: str, image: str = DEFAULT_IMAGE) -> str:
    """Writes the Kubeflow V2 pipeline spec for `config` to `output_file` and returns its path."""
    pipeline = ccl4rec_pipeline.create_pipeline(config)  # Kubeflow/Vertex bring their own MLMD
    runner = KubeflowV2DagRunner(
        config=KubeflowV2DagRunnerConfig(default_image=image),
        output_filename=output_file,
    )
    runner.run(pipeline, write_out=True)
    return output_file
