"""PipelineConfig makes its paths absolute once, so MLMD never records a cwd-relative URI."""

import os

from pipeline.configs import PipelineConfig


def test_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = PipelineConfig(data_root="raw", pipeline_root="out/pipeline", schema_path="s.pbtxt")
    assert config.data_root == str(tmp_path / "raw")
    assert config.pipeline_root == str(tmp_path / "out" / "pipeline")
    assert config.serving_base == str(tmp_path / "out" / "pipeline" / "serving")
    assert config.schema_path == str(tmp_path / "s.pbtxt")
    assert config.metadata_path == str(tmp_path / "out" / "pipeline" / "metadata.sqlite")
    assert PipelineConfig(data_root="raw", pipeline_root="r", serving_base="srv").serving_base == (
        os.path.join(str(tmp_path), "srv")
    )


def test_urls_are_left_alone():
    config = PipelineConfig(data_root="gs://bucket/raw", pipeline_root="gs://bucket/root")
    assert config.data_root == "gs://bucket/raw"
    assert config.pipeline_root == "gs://bucket/root"
    assert config.serving_base == "gs://bucket/root/serving"
