"""Pipeline settings: one dataclass with sensible defaults, overridable from the CLI.

Kept free of TFX imports so the CLI can print and validate settings cheaply.
"""

import dataclasses
import os

from tf_ccl4rec import beam_runner
from tf_ccl4rec import features as F
from tf_ccl4rec.code_version import code_version
from tf_ccl4rec.config import PRESET_MAX_HISTORY
from tf_ccl4rec.mlmd import METADATA_FILE
from tf_ccl4rec.model_registry import COUNTING_TYPES
from tf_ccl4rec.training_settings import TUNE_TRIALS_KEY, TrainerSettings

COUNT_MODEL_TYPE = "user_item_rate"  # the model a candidate must beat to be pushed
# custom_config keys of TFX's Vertex AI Trainer (tfx.extensions.google_cloud_ai_platform; kept as
# strings so this module stays free of TFX imports; tests/pipeline/test_vertex_training.py checks).
VERTEX_ENABLE_KEY = "ai_platform_enable_vertex"
VERTEX_REGION_KEY = "ai_platform_vertex_region"
VERTEX_TRAINING_ARGS_KEY = "ai_platform_training_args"
VERTEX_TRAINING_KEYS = ("project", "region", "image", "machine_type", "workers",
                        "accelerator_type", "accelerator_count")  # fmt: skip


def vertex_worker_pool_specs(settings: dict) -> list:
    """Vertex AI CustomJob worker pools for `--vertex-training` settings: pool 0 = the chief
    (1 replica), pool 1 = the other `workers - 1` replicas; Vertex sets each replica's TF_CONFIG,
    so the Trainer runs under MultiWorkerMirroredStrategy (`tf_ccl4rec.distribution`)."""
    machine = {"machine_type": settings.get("machine_type", "n1-standard-8")}
    if settings.get("accelerator_type"):
        machine["accelerator_type"] = settings["accelerator_type"]
        machine["accelerator_count"] = int(settings.get("accelerator_count", 1))
    container = {"image_uri": settings["image"]}
    workers = int(settings.get("workers", 2))
    pools = [{"machine_spec": machine, "replica_count": 1, "container_spec": container}]
    if workers > 1:
        pools.append({"machine_spec": dict(machine), "replica_count": workers - 1,
                      "container_spec": dict(container)})  # fmt: skip
    return pools


def vertex_custom_config(custom_config: dict, settings: dict) -> dict:
    """`custom_config` plus what TFX's Vertex AI Trainer reads to run the Trainer as a Vertex AI
    Training CustomJob (`settings`: project and image required; region, machine_type, workers,
    accelerator_type, accelerator_count optional)."""
    unknown = sorted(set(settings) - set(VERTEX_TRAINING_KEYS))
    missing = [k for k in ("project", "image") if not settings.get(k)]
    if unknown or missing:
        raise ValueError(
            f"--vertex-training: unknown keys {unknown}, missing {missing}; keys: "
            f"{VERTEX_TRAINING_KEYS} (project and image required)"
        )
    if int(settings.get("workers", 2)) < 1:
        raise ValueError(f"--vertex-training workers must be >= 1, got {settings['workers']}")
    return {
        **custom_config,
        VERTEX_ENABLE_KEY: True,
        VERTEX_REGION_KEY: settings.get("region", "us-central1"),
        VERTEX_TRAINING_ARGS_KEY: {
            "project": settings["project"],
            "worker_pool_specs": vertex_worker_pool_specs(settings),
        },
    }


# The example schema lives at the top of the repository (schemas/), beside this package.
DEFAULT_SCHEMA = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas", "schema.pbtxt"
)
PIPELINE_NAME = "ccl4rec"
SERVING_MODEL_NAME = "ccl4rec"  # TF Serving model name: <serving base>/ccl4rec/<version>/
RUNNERS = beam_runner.RUNNERS


def absolute(path: str) -> str:
    """`path` made absolute against the current directory; URLs (gs://, s3://...) and "" unchanged.

    TFX records artifact URIs under the pipeline root as given, so a relative root would make the
    MLMD store readable only from the directory the pipeline ran in.
    """
    if not path or "://" in path:
        return path
    return os.path.abspath(os.path.expanduser(path))


@dataclasses.dataclass
class PipelineConfig:
    """Everything `create_pipeline` needs.

    Attributes:
      data_root: raw-log directory (README "Raw-log layout").
      (data_root, pipeline_root, serving_base and schema_path are made absolute on creation.)
      pipeline_root: where TFX writes artifacts; MLMD lives in <pipeline_root>/metadata.sqlite and the
        push destination defaults to <pipeline_root>/serving.
      serving_base: TF Serving model base path; models go to <serving_base>/ccl4rec/<version>/.
      schema_path: the schema ImportSchemaGen imports and ExampleValidator checks against.
      max_history / static_history / eval_fraction / strict: example-builder options; max_history
        defaults to the preset's (`tf_ccl4rec.config.PRESET_MAX_HISTORY`).
      transform: overrides of `tf_ccl4rec.preprocessing.DEFAULTS` (vocabulary threshold, OOV buckets).
      preset: `CCL4RecConfig` preset ("default" or "paper"), under `model`.
      model: overrides of `CCL4RecConfig` fields.
      model_type: a key of `tf_ccl4rec.model_registry.MODEL_TYPES`.
      max_epochs / train_steps / validation_fraction / early_stopping_patience / refit /
        rows_per_user / distribution: Trainer settings (`tf_ccl4rec.training_settings.TrainerSettings`).
      tune / tune_trials: run the TFX Tuner (KerasTuner random search, `tf_ccl4rec.tuning`) for
        this many trials before the Trainer, which then trains with its best hyperparameters.
      top_k / ranking_protocol: cut-offs K of the per-user P/R/F1@K metrics and the protocol
        (tf_ccl4rec/metrics/ranking.py); 50 is the paper's K.
      auc_floor: the Evaluator blesses only models with AUC >= this,
      min_gain_over_count: ... at least this much above the user + video click-rate count
        (`user_item_rate`) trained in the same run on the same examples,
      max_auc_drop: ... and no more than this below the last blessed model.
      vertex_training: when set (`--vertex-training KEY=VALUE`), the Trainer runs as a Vertex AI
        Training job of `workers` replicas (TFX's Vertex AI Trainer; `vertex_custom_config`).
      runner / beam_args: Beam runner for the data-heavy components ("direct" and "portable"
        run here; `tf_ccl4rec.beam_runner`).
      job_endpoint / worker_pool: HOST:PORT of the Beam job service and of an external SDK
        worker pool, for runner "portable" (no worker pool: LOOPBACK).
      direct_mode / direct_workers: DirectRunner in_memory | multi_processing, and its workers.
      enable_cache: reuse outputs of components whose inputs did not change.
      serving_version_policy: version policy written to <serving_base>/models.config.
    """

    data_root: str
    pipeline_root: str
    serving_base: str = ""
    pipeline_name: str = PIPELINE_NAME
    schema_path: str = DEFAULT_SCHEMA
    max_history: int | None = None
    static_history: bool = False
    eval_fraction: float = 0.2
    strict: bool = False
    transform: dict = dataclasses.field(default_factory=dict)
    preset: str = "default"
    model: dict = dataclasses.field(default_factory=dict)
    model_type: str = "ccl4rec"
    max_epochs: int = TrainerSettings.max_epochs
    train_steps: int | None = None
    validation_fraction: float = TrainerSettings.validation_fraction
    early_stopping_patience: int = TrainerSettings.early_stopping_patience
    refit: bool = TrainerSettings.refit
    rows_per_user: int = TrainerSettings.rows_per_user
    distribution: str = TrainerSettings.distribution
    tune: bool = False
    tune_trials: int = 4
    top_k: tuple = (10, 50)
    ranking_protocol: str = "alpine"
    auc_floor: float = 0.55
    min_gain_over_count: float = 0.001
    max_auc_drop: float = 0.02
    vertex_training: dict = dataclasses.field(default_factory=dict)
    runner: str = "direct"
    beam_args: list = dataclasses.field(default_factory=list)
    job_endpoint: str = ""
    worker_pool: str = ""
    direct_mode: str = "in_memory"
    direct_workers: int = 1
    enable_cache: bool = True
    serving_version_policy: str = "latest:1"

    def __post_init__(self):
        # Made absolute once, here: MLMD, the Trainer, the report and the server all read them.
        self.data_root = absolute(self.data_root)
        self.pipeline_root = absolute(self.pipeline_root)
        self.serving_base = absolute(self.serving_base)
        self.schema_path = absolute(self.schema_path)
        if not self.serving_base:
            self.serving_base = os.path.join(self.pipeline_root, "serving")
        self.beam_pipeline_args()  # validates the runner and its flags now
        if self.vertex_training:
            vertex_custom_config({}, self.vertex_training)  # validates the keys now
        if not 0 < self.eval_fraction < 1:
            raise ValueError("eval_fraction must be in (0, 1)")
        self.top_k = tuple(sorted({int(k) for k in self.top_k}))
        if not self.top_k or min(self.top_k) < 1:
            raise ValueError("top_k needs at least one K >= 1")
        if self.tune_trials < 1:
            raise ValueError(f"tune_trials must be >= 1, got {self.tune_trials}")
        if self.tune and self.model_type in COUNTING_TYPES:
            raise ValueError(f"--tune: {self.model_type} is a count, it has nothing to tune")
        if self.max_history is None:
            self.max_history = PRESET_MAX_HISTORY.get(self.preset, F.DEFAULT_MAX_HISTORY)
        self.trainer_settings()  # validates every Trainer setting now, not inside the Trainer

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.pipeline_root, METADATA_FILE)

    @property
    def transform_settings(self) -> dict:
        return {"max_history": self.max_history, **self.transform}

    def trainer_settings(self) -> TrainerSettings:
        return TrainerSettings(
            model_type=self.model_type,
            preset=self.preset,
            model=dict(self.model),
            transform=self.transform_settings,
            data_root=self.data_root,  # made absolute (URLs kept) in __post_init__
            distribution=self.distribution,
            rows_per_user=self.rows_per_user,
            max_epochs=self.max_epochs,
            train_steps=self.train_steps,
            validation_fraction=self.validation_fraction,
            early_stopping_patience=self.early_stopping_patience,
            refit=self.refit,
        )

    def trainer_custom_config(self, settings: TrainerSettings | None = None) -> dict:
        """The Trainer's custom_config: `settings` (default: `trainer_settings()`) and the code
        version, which makes a rerun after a code change retrain instead of reusing TFX's cached
        model (run_fn is given by module path, which TFX does not fingerprint)."""
        if settings is None:
            settings = self.trainer_settings()
        return {**settings.to_custom_config(), "code_version": code_version()}

    def tuner_custom_config(self) -> dict:
        """The Tuner's custom_config: the Trainer's settings and the number of trials."""
        return {**self.trainer_custom_config(), TUNE_TRIALS_KEY: self.tune_trials}

    def count_trainer_custom_config(self) -> dict:
        """The blessing's baseline: the user + video click-rate count on the same examples
        (`TrainerSettings.for_count`: changing the candidate's knobs does not count again)."""
        return self.trainer_custom_config(self.trainer_settings().for_count(COUNT_MODEL_TYPE))

    def beam_pipeline_args(self) -> list:
        """Beam flags for the chosen runner (`tf_ccl4rec.beam_runner.pipeline_args`); extra
        `beam_args` are appended verbatim.

        DirectRunner and the portable runner (a Beam job service + worker pool) run here.
        Flink/Spark/Dataflow need their cluster flags in `beam_args` (e.g.
        --flink_master=HOST:PORT, --spark_master_url=..., --project/--region/--temp_location).
        Our DoFns have no local-file side effects, so the same pipeline runs there unchanged.
        """
        return beam_runner.pipeline_args(
            self.runner,
            job_endpoint=self.job_endpoint,
            worker_pool=self.worker_pool,
            direct_mode=self.direct_mode,
            direct_workers=self.direct_workers,
            extra=self.beam_args,
        )


SLICE_FEATURES = F.SLICE_FEATURES
