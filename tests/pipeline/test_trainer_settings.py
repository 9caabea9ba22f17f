"""TrainerSettings: every Trainer setting set from the CLI arrives unchanged in `run_fn`."""

import argparse
import json

import numpy as np
import pytest
from tfx.components.trainer.fn_args_utils import FnArgs

from pipeline import cli
from pipeline.pipeline import create_components
from tf_ccl4rec.trainer import epoch_plan, settings_from_fn_args, validation_cutoffs
from tf_ccl4rec.training_settings import TrainerSettings


def _parse(argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_every_trainer_setting_from_the_cli_reaches_run_fn(tmp_path):
    args = _parse(
        ["run", "--data", str(tmp_path), "--root", str(tmp_path / "root"),
         "--model-type", "lstm", "--preset", "paper", "--model", "embedding_dim=24",
         "--model", "strategy=random", "--max-history", "30", "--transform",
         "num_oov_buckets=3", "--distribution", "default", "--rows-per-user", "2",
         "--epochs", "7", "--train-steps", "123", "--validation-fraction", "0.25",
         "--patience", "4", "--no-refit"]
    )  # fmt: skip
    config = cli.config_from_args(args)
    trainer = next(c for c in create_components(config) if c.id == "Trainer")
    custom = trainer.exec_properties["custom_config"]
    # TFX hands run_fn the custom_config as a JSON string in FnArgs; run_fn reads it with
    # settings_from_fn_args, as here.
    if not isinstance(custom, str):
        custom = json.dumps(custom)
    got = settings_from_fn_args(FnArgs(custom_config=custom))
    assert got == TrainerSettings(
        model_type="lstm",
        preset="paper",
        model={"embedding_dim": 24, "strategy": "random"},
        transform={"max_history": 30, "num_oov_buckets": 3},
        data_root=str(tmp_path),
        distribution="default",
        rows_per_user=2,
        max_epochs=7,
        train_steps=123,
        validation_fraction=0.25,
        early_stopping_patience=4,
        refit=False,
    )


def test_defaults_come_from_one_place(tmp_path):
    config = cli.config_from_args(
        _parse(["run", "--data", str(tmp_path), "--root", str(tmp_path / "r")])
    )
    got = config.trainer_settings()
    default = TrainerSettings()
    for name in ("model_type", "preset", "max_epochs", "train_steps", "rows_per_user",
                 "validation_fraction", "early_stopping_patience", "refit",
                 "distribution"):  # fmt: skip
        assert getattr(got, name) == getattr(default, name), name
    assert config.max_history == 50  # the default preset's history length


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model": {"max_history": 10}}, "decided by Transform"),
        ({"model_type": "gru"}, "model_type must be one of"),
        ({"preset": "fast"}, "preset must be one of"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"train_steps": 0}, "train_steps"),
        ({"model": {"embeding_dim": 8}}, r"unknown model settings \['embeding_dim'\]"),
        # Values, not only names, are checked by the config the Trainer builds.
        ({"model": {"embedding_dim": 0}}, "model settings: .*embedding_dim must be >= 1"),
        ({"model": {"strategy": "hardest"}}, "model settings: .*strategy must be one of"),
        ({"model": {"mlp_units": "wide"}}, r"mlp_units must be a list of layer sizes.*'wide'"),
        ({"model": {"mlp_units": [16, 2.5]}}, "mlp_units must be a list of layer sizes"),
    ],
)
def test_a_setting_that_cannot_be_honoured_is_an_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainerSettings(**overrides)


def test_unknown_or_missing_custom_config_is_an_error():
    with pytest.raises(ValueError, match="unknown keys"):
        TrainerSettings.from_custom_config({"trainer_settings": json.dumps({"epochs": 3})})
    with pytest.raises(ValueError, match="has no 'trainer_settings'"):
        TrainerSettings.from_custom_config({"epochs": 3})


def test_validation_cutoffs_hold_out_each_users_latest_rows():
    # User 1: 10 rows at t = 0..9 -> floor(10 * 0.2) = 2 validation rows (t 8, 9): cutoff 8.
    # User 2: 4 rows -> floor(0.8) = 0: no validation. User 3: 5 rows, t = 0,1,2,3,3 ->
    # floor(1.0) = 1: cutoff 3, and the tie at t = 3 goes with it (2 rows).
    users = np.array([1] * 10 + [2] * 4 + [3] * 5)
    stamps = np.array(list(range(10)) + [5, 6, 7, 8] + [3, 0, 1, 3, 2])
    unique, cutoffs, held_out = validation_cutoffs(users, stamps, 0.2)
    assert unique.tolist() == [1, 2, 3]
    assert cutoffs.tolist() == [8, np.iinfo(np.int64).max, 3]
    assert held_out.sum() == 4
    # In the input order: user 1's t 8, 9 and user 3's two rows at t = 3.
    assert np.flatnonzero(held_out).tolist() == [8, 9, 14, 17]


def test_epoch_plan():
    # 1,000 rows, batch 32 -> 31 steps per pass.
    assert epoch_plan(1000, 32, TrainerSettings(max_epochs=5)) == (5, 31)
    # 100 steps requested: ceil(100 / 31) = 4 epochs of 25 steps.
    assert epoch_plan(1000, 32, TrainerSettings(max_epochs=5, train_steps=100)) == (4, 25)
    # Counting models make exactly one pass.
    assert epoch_plan(1000, 32, TrainerSettings(model_type="user_item_rate")) == (1, 31)


def test_one_int_is_a_one_layer_mlp():
    # `--model mlp_units=16` parses (JSON) to 16: one hidden layer, for CCL4Rec and a baseline.
    from tf_ccl4rec.baselines.base import BaselineConfig
    from tf_ccl4rec.config import CCL4RecConfig

    assert TrainerSettings(model={"mlp_units": 16}).model == {"mlp_units": 16}
    assert CCL4RecConfig(mlp_units=16).mlp_units == (16,)
    assert BaselineConfig(vocab_size=5, mlp_units=16).mlp_units == (16,)


@pytest.mark.parametrize(
    "setting, message", [("foo=1", "['foo']"), ("mlp_units=[0]", "mlp_units must be positive")]
)
def test_pipeline_run_with_a_bad_model_setting_stops_before_anything_runs(
    setting, message, tmp_path, capsys
):
    # Checked when the flags are read, not by the Trainer after the data stages have run.
    root = tmp_path / "root"
    args = _parse(["run", "--data", str(tmp_path), "--root", str(root), "--model", setting])
    assert cli.run(args) == cli.EXIT_INVALID_SETTING == 2
    err = capsys.readouterr().err
    assert "pipeline: invalid setting:" in err and message in err
    assert "Traceback" not in err
    assert not root.exists()
