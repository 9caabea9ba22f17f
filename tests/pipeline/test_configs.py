"""PipelineConfig makes its paths absolute once, so MLMD never records a cwd-relative URI."""

import dataclasses
import os

import pytest

from pipeline.configs import COUNT_MODEL_TYPE, PipelineConfig
from tf_ccl4rec import features as F
from tf_ccl4rec.config import PRESET_MAX_HISTORY
from tf_ccl4rec.training_settings import TrainerSettings


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


def test_max_history_follows_the_preset_unless_given():
    assert (
        PipelineConfig(data_root="r", pipeline_root="p").max_history
        == (PRESET_MAX_HISTORY["default"])
    )
    paper = PipelineConfig(data_root="r", pipeline_root="p", preset="paper")
    assert paper.max_history == PRESET_MAX_HISTORY["paper"] == F.DEFAULT_MAX_HISTORY
    given = PipelineConfig(data_root="r", pipeline_root="p", preset="paper", max_history=7)
    assert given.max_history == 7
    assert given.trainer_settings().transform["max_history"] == 7


def test_the_count_trainer_keeps_the_data_settings_and_drops_the_candidates_knobs():
    config = PipelineConfig(
        data_root="r", pipeline_root="p", max_epochs=3, train_steps=5, max_history=7,
        model={"embedding_dim": 8}, preset="paper", rows_per_user=2, refit=False,
    )  # fmt: skip
    settings = config.trainer_settings()
    assert (settings.max_epochs, settings.train_steps) == (3, 5)
    main = TrainerSettings.from_custom_config(config.trainer_custom_config())
    count = TrainerSettings.from_custom_config(config.count_trainer_custom_config())
    assert main == settings
    assert main.model_type == "ccl4rec"
    assert count == TrainerSettings(
        model_type=COUNT_MODEL_TYPE,
        transform=settings.transform,  # max_history 7 among them
        data_root=settings.data_root,
        distribution=settings.distribution,
    )
    # Another candidate on the same data: the same count config, so TFX reuses the cached count.
    other = dataclasses.replace(config, model_type="ncf", model={}, max_epochs=1, refit=True)
    assert other.count_trainer_custom_config() == config.count_trainer_custom_config()
    shorter = dataclasses.replace(config, max_history=5)
    assert shorter.count_trainer_custom_config() != config.count_trainer_custom_config()
    with pytest.raises(ValueError, match="not a count"):
        settings.for_count("ccl4rec")


def test_trainer_settings_are_validated_when_the_config_is_made():
    with pytest.raises(ValueError, match="max_epochs"):
        PipelineConfig(data_root="r", pipeline_root="p", max_epochs=0)
    with pytest.raises(ValueError, match="preset"):
        PipelineConfig(data_root="r", pipeline_root="p", preset="nope")
