"""`--tune`: the TFX Tuner's tuner_fn searches on tiny transformed examples, the Trainer takes
the best values, and the pipeline wires the Tuner into the main Trainer only."""

import argparse
import json
import os

import keras_tuner
import pytest
from tfx.components.trainer import fn_args_utils
from tfx.components.util import tfxio_utils
from tfx.types import standard_artifacts

from pipeline import cli
from pipeline.configs import PipelineConfig
from pipeline.pipeline import create_components
from tf_ccl4rec.testing import analyze, random_raw_rows, write_transformed_examples
from tf_ccl4rec.trainer import train_and_export
from tf_ccl4rec.training_settings import TUNE_TRIALS_KEY, TrainerSettings
from tf_ccl4rec.tuning import SEARCH_SPACE, search_space, tuner_fn

# Tiny CCL4Rec; l2 is set, so the Tuner must keep it fixed instead of searching it.
TINY = {"mlp_units": [8], "num_substitutes": 10, "num_positives": 2, "num_negatives": 2,
        "batch_size": 8, "l2": 1e-4}  # fmt: skip


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Transform's output and transformed train examples of 200 random rows (12 users)."""
    workdir = str(tmp_path_factory.mktemp("tuning"))
    _, rows = analyze(random_raw_rows(seed=1), os.path.join(workdir, "tft"), {"max_history": 8})
    os.makedirs(os.path.join(workdir, "examples", "Split-train"))
    write_transformed_examples(
        rows, os.path.join(workdir, "examples", "Split-train", "data.tfrecord")
    )
    return workdir


def _fn_args(workdir, custom_config, **extra):
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(workdir, "examples")
    examples.split_names = '["train"]'
    factory = tfxio_utils.get_tf_dataset_factory_from_artifact([examples], [])
    tft_dir = os.path.join(workdir, "tft")
    return fn_args_utils.FnArgs(
        train_files=[os.path.join(workdir, "examples", "Split-train", "*")],
        transform_graph_path=tft_dir,
        transform_output=tft_dir,
        custom_config=custom_config,
        data_accessor=fn_args_utils.DataAccessor(
            tf_dataset_factory=factory, record_batch_factory=None, data_view_decode_fn=None
        ),
        **extra,
    )


def _settings(**overrides):
    values = dict(model=TINY, transform={"max_history": 8}, distribution="default",
                  max_epochs=2, train_steps=6)  # fmt: skip
    return TrainerSettings(**{**values, **overrides})


def _printed_configs(text):
    """The model configs `fit_model` printed, one per training."""
    return [
        json.loads(line.split(" preset) ", 1)[1])
        for line in text.splitlines()
        if line.startswith("trainer: ccl4rec (")
    ]


def test_tuner_fn_searches_two_trials_and_its_best_values_are_in_the_space(
    transformed, tmp_path, capsys
):
    custom = {**_settings().to_custom_config(), TUNE_TRIALS_KEY: 2}
    result = tuner_fn(_fn_args(transformed, custom, working_dir=str(tmp_path)))
    result.tuner.search(**result.fit_kwargs)  # what TFX's Tuner executor runs
    trials = result.tuner.oracle.get_best_trials(10)
    assert len(trials) == 2
    assert all(t.status == keras_tuner.engine.trial.TrialStatus.COMPLETED for t in trials)
    assert all(0.0 <= t.score <= 1.0 for t in trials)
    best = result.tuner.get_best_hyperparameters()[0].values
    assert best["l2"] == TINY["l2"]  # set with --model: fixed, not searched
    assert set(best) == set(SEARCH_SPACE)
    for key, value in best.items():
        assert key == "l2" or value in SEARCH_SPACE[key], (key, value)
    # Each trial's model was built with that trial's values, and trained for the trial budget
    # (min(2 epochs, 6 steps)), not the Trainer's whole schedule.
    configs = _printed_configs(capsys.readouterr().out)
    assert len(configs) == 2
    for config, trial in zip(configs, sorted(trials, key=lambda t: t.trial_id), strict=True):
        for key, value in trial.hyperparameters.values.items():
            assert config[key] == value, (key, config[key], value)


def test_baselines_search_their_own_keys_and_counts_nothing():
    assert set(search_space(_settings(model={}, model_type="ncf")).values) == {
        "learning_rate", "embedding_dim", "l2"
    }  # fmt: skip
    with pytest.raises(ValueError, match="count"):
        search_space(_settings(model_type="user_item_rate"))


def test_the_trainer_trains_with_the_tuners_best_hyperparameters(transformed, tmp_path, capsys):
    hp = keras_tuner.HyperParameters()
    tuned = {"learning_rate": 3e-3, "embedding_dim": 16, "contrastive_weight": 1e-2,
             "margin_scale": 2.0}  # fmt: skip
    for key, value in tuned.items():
        hp.Fixed(key, value)
    # --model sets embedding_dim 8 and l2 1e-4: the tuned embedding_dim wins, l2 stays.
    settings = _settings(model={**TINY, "embedding_dim": 8}, refit=False)
    fn_args = _fn_args(
        transformed,
        settings.to_custom_config(),
        hyperparameters=hp.get_config(),  # as TFX's Trainer executor reads the Tuner's file
        serving_model_dir=str(tmp_path / "serving"),
        model_run_dir=str(tmp_path / "logs"),
    )
    model = train_and_export(fn_args)
    for key, value in tuned.items():
        assert getattr(model.config, key) == value, key
    assert model.config.l2 == TINY["l2"]
    out = capsys.readouterr().out
    assert "the Tuner's best hyperparameters" in out
    (printed,) = _printed_configs(out)
    assert printed["embedding_dim"] == 16 and printed["learning_rate"] == 3e-3


def _components(tmp_path, *flags):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["run", "--data", str(tmp_path), "--root", str(tmp_path / "r"), *flags]
    )
    return {c.id: c for c in create_components(cli.config_from_args(args))}


def test_tune_flags_put_a_tuner_in_front_of_the_main_trainer_only(tmp_path):
    components = _components(tmp_path, "--tune", "--tune-trials", "2", "--model", "l2=0.001")
    tuner, trainer = components["Tuner"], components["Trainer"]
    channel = trainer.inputs["hyperparameters"]
    assert (channel.producer_component_id, channel.output_key) == (
        "Tuner", "best_hyperparameters"
    )  # fmt: skip
    assert "hyperparameters" not in components["count_trainer"].inputs
    assert tuner.inputs["examples"].producer_component_id == "Transform"
    assert tuner.inputs["transform_graph"].producer_component_id == "Transform"
    custom = tuner.exec_properties["custom_config"]
    custom = json.loads(custom) if isinstance(custom, str) else custom
    assert custom[TUNE_TRIALS_KEY] == 2
    # The Tuner gets the Trainer's settings, --model included.
    trainer_custom = trainer.exec_properties["custom_config"]
    trainer_custom = (
        json.loads(trainer_custom) if isinstance(trainer_custom, str) else trainer_custom
    )
    assert TrainerSettings.from_custom_config(custom) == TrainerSettings.from_custom_config(
        trainer_custom
    )
    assert TrainerSettings.from_custom_config(custom).model == {"l2": 0.001}
    assert tuner.exec_properties["tuner_fn"] == "tf_ccl4rec.tuning.tuner_fn"
    # Without --tune: no Tuner, and the Trainer has no hyperparameters input.
    plain = _components(tmp_path)
    assert "Tuner" not in plain and "hyperparameters" not in plain["Trainer"].inputs


def test_tune_settings_are_validated(tmp_path):
    with pytest.raises(ValueError, match="--tune-trials needs --tune"):
        _components(tmp_path, "--tune-trials", "2")
    with pytest.raises(ValueError, match="tune_trials"):
        PipelineConfig(data_root="r", pipeline_root="p", tune=True, tune_trials=0)
    with pytest.raises(ValueError, match="count"):
        PipelineConfig(data_root="r", pipeline_root="p", tune=True, model_type="popularity")
