"""The TFX Tuner's ``tuner_fn``: KerasTuner's random search over the settings that matter.

Every trial is trained by the Trainer's own loop (`trainer.fit_model`: the same model building,
warm start, user-grouped batches and per-user validation split) with the trial's values as model
overrides, for a few epochs, and scored by its best validation AUC (``val_auc``) on the Trainer's
validation split; the Evaluator's eval split is never seen. The Tuner writes the best values to
its ``best_hyperparameters`` artifact; the Trainer reads them from ``fn_args.hyperparameters``
(`trainer.with_hyperparameters`) and they win over the preset and ``--model``.

A key the user set with ``--model`` is not searched: it is fixed at the user's value.
"""

from __future__ import annotations

import dataclasses
import json
import math

import keras_tuner
import tensorflow_transform as tft
from tfx.components.tuner.component import TunerFnResult

from tf_ccl4rec import model_registry
from tf_ccl4rec.trainer import (
    VALIDATION_METRIC,
    TrainingData,
    choose_strategy,
    fit_model,
    model_config,
    video_tables,
)
from tf_ccl4rec.training_settings import TUNE_TRIALS_KEY, TrainerSettings

# The search space: CCL4RecConfig key -> the values tried (3^5 = 243 combinations).
SEARCH_SPACE = {
    "learning_rate": (3e-4, 1e-3, 3e-3),  # Adam; the default preset's 1e-3, the paper's 3e-3
    "embedding_dim": (16, 32, 64),  # d
    "contrastive_weight": (0.0, 1e-3, 1e-2),  # weight of L_ccl, L_ccl⁺, L_ccl⁻ in Eq 16
    "margin_scale": (0.5, 1.0, 2.0),  # δs of Eq 9/11
    "l2": (1e-7, 1e-6, 1e-5),  # on the dense weights and the looked-up embeddings
}
# The baselines (BaselineConfig) have only these of the keys above.
BASELINE_KEYS = ("learning_rate", "embedding_dim", "l2")
# A trial: at most this many epochs and optimizer steps (fewer with --epochs / --train-steps),
# early stopping after TRIAL_PATIENCE epochs without a better validation AUC, no refit.
TRIAL_EPOCHS = 3
TRIAL_MAX_STEPS = 3000
TRIAL_PATIENCE = 1


def search_space(settings: TrainerSettings) -> keras_tuner.HyperParameters:
    """The hyperparameters searched for `settings.model_type`; `--model` keys are fixed."""
    if settings.model_type in model_registry.COUNTING_TYPES:
        raise ValueError(f"{settings.model_type} is a count: it has no hyperparameters to tune")
    keys = SEARCH_SPACE if settings.model_type == model_registry.CCL4REC else BASELINE_KEYS
    hp = keras_tuner.HyperParameters()
    for key in keys:
        if key in settings.model:
            hp.Fixed(key, settings.model[key])
        else:
            hp.Choice(key, list(SEARCH_SPACE[key]), ordered=True)
    return hp


def trial_settings(settings: TrainerSettings, num_train: int, batch: int) -> TrainerSettings:
    """`settings` cut down to one trial's budget (see TRIAL_*)."""
    epochs = min(settings.max_epochs, TRIAL_EPOCHS)
    steps = min(epochs * max(1, num_train // batch), TRIAL_MAX_STEPS)
    if settings.train_steps is not None:
        steps = min(steps, settings.train_steps)
    return dataclasses.replace(
        settings,
        max_epochs=epochs,
        train_steps=steps,
        early_stopping_patience=min(settings.early_stopping_patience, TRIAL_PATIENCE),
        refit=False,  # a trial is scored on the validation rows, which a refit trains on
    )


class CCL4RecTuner(keras_tuner.RandomSearch):
    """Random search whose trials run `trainer.fit_model` (KerasTuner's documented way to tune
    a custom training loop: override `run_trial` and return the metrics).

    Args:
      settings: The Trainer's settings (trial values are added to `settings.model`).
      tft_output: Transform's output.
      data: `TrainingData` of the training split (read once, shared by the trials).
      max_trials / directory: As for `keras_tuner.RandomSearch`.
    """

    def __init__(self, settings, tft_output, data, max_trials: int, directory: str):
        self.settings, self.tft_output, self.data = settings, tft_output, data
        self.strategy = choose_strategy(settings.distribution)
        super().__init__(
            hyperparameters=search_space(settings),
            tune_new_entries=False,
            objective=keras_tuner.Objective(VALIDATION_METRIC, "max"),
            max_trials=max_trials,
            seed=0,
            directory=directory,
            project_name="ccl4rec",
            overwrite=True,
        )

    def run_trial(self, trial, *args, **kwargs):
        try:
            settings = dataclasses.replace(
                self.settings, model={**self.settings.model, **trial.hyperparameters.values}
            )
            config = model_config(settings, self.tft_output)
            content, categories = video_tables(
                settings.model_type, config, self.tft_output, settings.data_root
            )
            batch = config.batch_size * self.strategy.num_replicas_in_sync
            settings = trial_settings(settings, self.data.num_train, batch)
            fit = fit_model(
                settings, config, content, self.data, self.strategy, categories=categories
            )
        except Exception as err:
            # Every value of the space is valid, so an error is a bug: stop the search loudly
            # (KerasTuner would otherwise log it and go on to the next trial).
            raise keras_tuner.errors.FatalError(f"trial {trial.trial_id}: {err!r}") from err
        if not math.isfinite(fit.best_val_auc):
            # A diverged setting is a result, not a bug: the search goes on without it.
            raise keras_tuner.errors.FailedTrialError(
                f"trial {trial.trial_id}: validation AUC {fit.best_val_auc}"
            )
        return {VALIDATION_METRIC: fit.best_val_auc}

    def on_search_end(self):
        super().on_search_end()
        if not self.oracle.get_best_trials(1):
            raise RuntimeError("the Tuner completed no trial: no best hyperparameters to pass on")


def tuner_fn(fn_args) -> TunerFnResult:
    """TFX Tuner entry point: the tuner on Transform's output; `search` needs no arguments."""
    custom_config = fn_args.custom_config
    if isinstance(custom_config, str):
        custom_config = json.loads(custom_config)
    settings = TrainerSettings.from_custom_config(custom_config)
    max_trials = int(custom_config[TUNE_TRIALS_KEY])
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    data = TrainingData.from_files(
        fn_args.train_files, fn_args.data_accessor, tft_output, settings.validation_fraction
    )
    tuner = CCL4RecTuner(settings, tft_output, data, max_trials, fn_args.working_dir)
    return TunerFnResult(tuner=tuner, fit_kwargs={})
