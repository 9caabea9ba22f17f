"""TrainerSettings: everything the Trainer's `run_fn` reads, typed and validated in one place.

`pipeline/configs.py` builds it from the CLI, serialises it into the TFX Trainer's
`custom_config` (`to_custom_config`) and `run_fn` parses it back (`from_custom_config`), so a
default lives here once and a setting that cannot be honoured fails before any work is done.
Free of TensorFlow imports: the CLI validates settings without starting TF.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tf_ccl4rec import model_registry
from tf_ccl4rec.config import AUTO_REPRESENTATION, PRESETS, CCL4RecConfig

DISTRIBUTIONS = ("auto", "mirrored", "multi_worker", "default")  # tf_ccl4rec/distribution.py
CUSTOM_CONFIG_KEY = "trainer_settings"  # the one key of the Trainer's custom_config
TUNE_TRIALS_KEY = "tune_trials"  # the Tuner's custom_config: the Trainer's and this


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """Trainer settings (model hyper-parameters live in CCL4RecConfig / BaselineConfig).

    Attributes:
      model_type: A key of `tf_ccl4rec.model_registry.MODEL_TYPES`.
      preset: CCL4RecConfig preset (`tf_ccl4rec.config.PRESETS`) under `model`.
      model: Model-config overrides on top of the preset.
      transform: The Transform settings used (`tf_ccl4rec.preprocessing.DEFAULTS` keys); the
        model's max_history and num_oov_buckets come from here and vocab_size from Transform.
      data_root: Raw-log directory (for the video-feature table of content representations).
      distribution: "auto" (MultiWorkerMirroredStrategy when TF_CONFIG names several workers,
        else MirroredStrategy when GPUs are visible), "multi_worker", "mirrored" or "default"
        (`tf_ccl4rec.distribution`).
      rows_per_user: Rows of one user kept together in a batch (L_cui needs both labels).
      max_epochs: Upper bound on passes over the training rows.
      train_steps: Optional override: this many optimizer steps in total (split over
        `max_epochs` Keras epochs), instead of whole epochs.
      validation_fraction: Share of each user's training exposures (their latest) held out for
        early stopping; never trained on; distinct from the Evaluator's eval split.
      early_stopping_patience: Epochs without a better validation AUC before training stops;
        the best epoch's weights are restored.
      refit: Then train again from the initialisation on every training row (validation
        included) for the best number of epochs and export that model; False exports the
        early-stopped model (half the training time, trained without the latest rows).
    """

    model_type: str = "ccl4rec"
    preset: str = "default"
    model: dict = dataclasses.field(default_factory=dict)
    transform: dict = dataclasses.field(default_factory=dict)
    data_root: str | None = None
    distribution: str = "auto"
    rows_per_user: int = 4
    max_epochs: int = 20
    train_steps: int | None = None
    validation_fraction: float = 0.1
    early_stopping_patience: int = 2
    refit: bool = True

    def __post_init__(self):
        problems = []
        if self.model_type not in model_registry.MODEL_TYPES:
            problems.append(
                f"model_type must be one of {model_registry.MODEL_TYPES}, got {self.model_type!r}"
            )
        if self.preset not in PRESETS:
            problems.append(f"preset must be one of {tuple(PRESETS)}, got {self.preset!r}")
        if self.distribution not in DISTRIBUTIONS:
            problems.append(
                f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}"
            )
        if self.rows_per_user < 1:
            problems.append(f"rows_per_user must be >= 1, got {self.rows_per_user}")
        if self.max_epochs < 1:
            problems.append(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.train_steps is not None and self.train_steps < 1:
            problems.append(f"train_steps must be >= 1 (or unset), got {self.train_steps}")
        if not 0.0 < self.validation_fraction < 1.0:
            problems.append(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if self.early_stopping_patience < 1:
            problems.append(
                f"early_stopping_patience must be >= 1, got {self.early_stopping_patience}"
            )
        for key in ("max_history", "vocab_size", "num_oov_buckets"):
            if key in self.model:
                problems.append(
                    f"model setting {key!r} is decided by Transform/the pipeline, not by --model "
                    "(use --max-history or --transform)"
                )
        # Unknown model keys are caught here, before the data stages run, not in the Trainer.
        unknown = sorted(set(self.model) - CCL4RecConfig.field_names())
        if unknown:
            problems.append(
                f"unknown model settings {unknown} (README 'Model settings' lists them)"
            )
        elif self.preset in PRESETS:
            problems.extend(self._model_value_problems())
        if problems:
            raise ValueError("TrainerSettings: " + "; ".join(problems))

    def _model_value_problems(self) -> list[str]:
        """The model settings' values checked now, by the config the Trainer will build, with
        placeholders for what Transform and the data decide (vocabulary size, OOV buckets,
        content width): a bad value fails here, not minutes later inside the Trainer."""
        values = {**PRESETS[self.preset], **self.model}
        values.update(
            vocab_size=1,
            num_oov_buckets=1,
            max_history=int(self.transform.get("max_history") or 1),
        )
        if values.get("video_representation", "id") != "id":
            if values["video_representation"] == AUTO_REPRESENTATION:
                values["video_representation"] = "content"
            values["content_feature_dim"] = values.get("content_feature_dim") or 1
        try:
            CCL4RecConfig.from_dict(values)
        except (TypeError, ValueError) as err:
            return [f"model settings: {err}"]
        return []

    def for_count(self, model_type: str) -> TrainerSettings:
        """These settings for the count `model_type` (one of `model_registry.COUNTING_TYPES`):
        the data settings (transform, data_root, distribution) kept, every model and training
        knob at its default. A count is one exact pass over every row and reads none of them, so
        a rerun that changes only the candidate's knobs reuses TFX's cached count (a Trainer is
        cached by its custom_config) instead of counting again."""
        if model_type not in model_registry.COUNTING_TYPES:
            raise ValueError(
                f"for_count: {model_type!r} is not a count {model_registry.COUNTING_TYPES}"
            )
        return TrainerSettings(
            model_type=model_type,
            transform=self.transform,
            data_root=self.data_root,
            distribution=self.distribution,
        )

    def to_custom_config(self) -> dict[str, Any]:
        """The Trainer's custom_config: one JSON string (TFX keeps it verbatim)."""
        return {CUSTOM_CONFIG_KEY: json.dumps(dataclasses.asdict(self), sort_keys=True)}

    @classmethod
    def from_custom_config(cls, custom_config) -> TrainerSettings:
        """Parses `to_custom_config` output (dict or its JSON string); unknown keys raise."""
        if isinstance(custom_config, str):
            custom_config = json.loads(custom_config)
        custom_config = dict(custom_config or {})
        if CUSTOM_CONFIG_KEY not in custom_config:
            raise ValueError(
                f"Trainer custom_config has no {CUSTOM_CONFIG_KEY!r} (got keys "
                f"{sorted(custom_config)}); build it with TrainerSettings.to_custom_config()"
            )
        values = json.loads(custom_config[CUSTOM_CONFIG_KEY])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TrainerSettings: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**values)
