"""One training run of the experiments: a model trained in-process and evaluated on the eval split.

A run is any model of `tf_ccl4rec.model_registry` on the prepared Transform output, trained by
the Trainer's own loop (`tf_ccl4rec.trainer.fit_model` over a `TrainingData` of the prepared
arrays): validation split, early stopping, refit on every training row, exact counts.
After every epoch it records the mean of each loss term and the eval AUC / P@K (training curves);
at the end it evaluates (`experiments.metrics`), times training and inference and counts
parameters. Results and weights are cached under
`<runs_dir>/<key>/`, keyed by everything that changes the run, so studies that share a model
train it once. The key holds the model settings in effect (defaults, preset, overrides), not the
overrides as written: the strategies' easy2hard and the Np sweep's Np = Nn = 4 are the
ablation's full model, the case study's too, and are trained once for all four.
The key also covers the code (`code_version`: a hash of the source files that define the model,
its training and its evaluation), so a changed model never comes back from the cache; entries of
older code are just no longer matched (delete `<runs_dir>` to reclaim their disk space).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

import numpy as np
import tensorflow as tf

from tf_ccl4rec import features as F
from tf_ccl4rec import model_registry
from tf_ccl4rec.code_version import code_version
from tf_ccl4rec.config import PRESETS, CCL4RecConfig, layer_sizes
from tf_ccl4rec.experiments import metrics
from tf_ccl4rec.model import CCL4RecModel
from tf_ccl4rec.trainer import (
    TrainingData,
    epoch_plan,
    fit_model,
    model_config,
    video_tables,
)
from tf_ccl4rec.training_settings import TrainerSettings

# The "full" model of every study: the default preset (README "Model settings").
FULL_PRESET = "default"
# The default preset trains L_ce + L_cui only; the studies of the contrastive machinery (Table 5,
# the strategies, the Np sweep, the case study) switch it back on: all of Eq 16 but L_ce⁻.
CONTRASTIVE = {"use_ccl": True, "use_ccl_pos": True, "use_ccl_neg": True, "use_ce_pos": True}
TRAINER = TrainerSettings()  # epochs, validation share, patience: the Trainer's defaults
PREDICT_BATCH = 1024
INFERENCE_BATCH = 32  # Table 3's "one batch"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What to train.

    Attributes:
      label: Row name in tables.
      model_type: "ccl4rec" or a baseline of `tf_ccl4rec.baselines.MODEL_TYPES`.
      overrides: CCL4RecConfig keys on top of the preset.
      seed: Weights, batching and sampling seed.
      max_epochs: Most passes over the training rows (early stopping usually ends sooner).
      preset: `tf_ccl4rec.config.PRESETS` key.
    """

    label: str
    model_type: str = "ccl4rec"
    overrides: tuple = ()
    seed: int = 0
    max_epochs: int = TRAINER.max_epochs
    preset: str = FULL_PRESET

    def model_values(self) -> dict:
        return {**dict(self.overrides), "seed": int(self.seed)}


def spec(label, model_type="ccl4rec", seed=0, max_epochs=TRAINER.max_epochs, **overrides):
    return RunSpec(label, model_type, tuple(sorted(overrides.items())), seed, max_epochs)


def _config(run: RunSpec, prepared) -> CCL4RecConfig:
    settings = TrainerSettings(
        model_type=run.model_type,
        preset=run.preset,
        model=run.model_values(),
        transform={"max_history": prepared.max_history},
        data_root=prepared.data_dir,
    )
    return model_config(settings, prepared.tft_output())


def effective_values(run: RunSpec) -> dict:
    """The model settings a run trains with: CCL4RecConfig's defaults, the preset, the overrides
    (and the seed). Two runs with equal values train the same model."""
    defaults = {f.name: f.default for f in dataclasses.fields(CCL4RecConfig)}
    values = {**defaults, **PRESETS[run.preset], **run.model_values()}
    values["mlp_units"] = list(layer_sizes(values["mlp_units"]))
    return values


def run_key(run: RunSpec, prepared, protocol: str, ks) -> str:
    payload = {
        "code": code_version(),
        "model_type": run.model_type,
        "model": effective_values(run),
        "max_epochs": run.max_epochs,
        "trainer": [TRAINER.validation_fraction, TRAINER.early_stopping_patience, TRAINER.refit],
        "data": prepared.stats,
        "data_dir": prepared.data_dir,
        "max_history": prepared.max_history,
        "protocol": protocol,
        "ks": list(ks),
    }
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{run.model_type}-{digest}"


def build(run: RunSpec, prepared, run_eagerly: bool = False):
    """The compiled, built model of a run (untrained); `run_eagerly` skips graph tracing (faster
    for a few steps, as in smoke tests; same results)."""
    config = _config(run, prepared)
    tf.keras.utils.set_random_seed(int(run.seed))
    content, categories = video_tables(
        run.model_type, config, prepared.tft_output(), prepared.data_dir
    )
    model = model_registry.build_model(run.model_type, config.to_dict(), content, categories)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate), run_eagerly=run_eagerly)
    model(_take(prepared.eval, np.arange(2)))
    return model, config


def _take(columns: dict, rows) -> dict:
    return {k: v[rows] for k, v in columns.items()}


def training_data(prepared) -> TrainingData:
    """The Trainer's `TrainingData` over the prepared train columns (same split and batches)."""
    rows = tf.data.Dataset.from_tensor_slices(prepared.train).map(
        lambda row: {
            k: tf.reshape(v, []) if v.shape.num_elements() == 1 else v for k, v in row.items()
        }  # fmt: skip
    )
    return TrainingData(rows, TRAINER.validation_fraction, "the prepared train split")


def predict(model, columns: dict, batch: int = PREDICT_BATCH) -> np.ndarray:
    """Click probabilities of every row of `columns` (Keras predict: compiled once per model)."""
    return np.asarray(model.predict(columns, batch_size=batch, verbose=0)).reshape(-1)


def evaluate(model, prepared, ks=(10, 50), protocol="alpine") -> dict:
    """AUC and per-user P/R/F1@K of `model` on the eval split, plus α-noise AUC for CCL4Rec."""
    scores = predict(model, prepared.eval)
    labels = prepared.eval[F.MODEL_LABEL]
    users = prepared.eval_keys[F.RAW_USER_ID].to_numpy()
    out = {"auc": metrics.auc(labels, scores)}
    out.update(metrics.ranking_metrics(users, labels, scores, ks, protocol))
    if isinstance(model, CCL4RecModel) and prepared.alpha_rows is not None:
        alphas = history_alpha(model, _take(prepared.eval, prepared.alpha_rows))
        lengths = [len(z) for z in prepared.alpha_noise]
        alpha = metrics.alpha_noise_auc(
            [a[:n] for a, n in zip(alphas, lengths, strict=True)], prepared.alpha_noise
        )
        out["alpha_noise_auc"] = alpha["pooled"]
        out["alpha_noise_auc_per_user"] = alpha["per_user"]
        out["alpha_noise_items"] = [alpha["items"], alpha["noise_items"], alpha["histories"]]
    return out


def history_alpha(model: CCL4RecModel, columns: dict) -> np.ndarray:
    """α_t (Eq 2) of every click-history position ([rows, N]; 0 on padding)."""
    ids = tf.constant(columns[F.MODEL_CLICK_HISTORY])
    _, alpha_t = model.scorer(model.video(ids), tf.not_equal(ids, F.PAD_ID))
    return alpha_t.numpy()


def oracle(prepared, ks=(10, 50), protocol="alpine") -> dict | None:
    """The same metrics for the planted genuine click probability (None without ground truth)."""
    if prepared.truth is None:
        return None
    labels = prepared.eval[F.MODEL_LABEL]
    known = ~np.isnan(prepared.truth)
    users = prepared.eval_keys[F.RAW_USER_ID].to_numpy()
    out = {"auc": metrics.oracle_auc(labels, prepared.truth), "rows_with_truth": int(known.sum())}
    out.update(
        metrics.ranking_metrics(users[known], labels[known], prepared.truth[known], ks, protocol)
    )
    return out


class _Recorder(tf.keras.callbacks.Callback):
    """Per-step total loss, per-epoch means of each loss term and eval curves."""

    def __init__(self, prepared, ks, protocol, steps_per_epoch):
        super().__init__()
        self.prepared, self.ks, self.protocol = prepared, ks, protocol
        self.steps_per_epoch = steps_per_epoch
        self.step_loss: list[float] = []
        self.curves: dict[str, list] = {"step": []}
        self.eval_seconds = 0.0  # spent evaluating inside fit, not training

    def on_train_batch_end(self, batch, logs=None):
        self.step_loss.append(float(logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        t0 = time.perf_counter()
        self.curves["step"].append((epoch + 1) * self.steps_per_epoch)
        self.curves.setdefault("train_loss", []).append(
            float(np.mean(self.step_loss[-self.steps_per_epoch :]))
        )
        for name, value in (logs or {}).items():
            # "loss" in the logs is the last batch's; the per-term trackers are epoch means.
            if name.endswith("_loss") and not name.startswith("val_"):
                if name not in ("total_loss", "regularization_loss"):
                    self.curves.setdefault(f"train_{name}", []).append(float(value))
        self.curves.setdefault("val_auc", []).append(float((logs or {}).get("val_auc", np.nan)))
        scores = predict(self.model, self.prepared.eval)
        labels = self.prepared.eval[F.MODEL_LABEL]
        users = self.prepared.eval_keys[F.RAW_USER_ID].to_numpy()
        ranking = metrics.ranking_metrics(users, labels, scores, self.ks, self.protocol)
        self.curves.setdefault("eval_auc", []).append(metrics.auc(labels, scores))
        for k in self.ks:
            self.curves.setdefault(f"eval_precision_at_{k}", []).append(
                ranking[f"precision_at_{k}"]
            )
        self.eval_seconds += time.perf_counter() - t0


def inference_ms_per_batch(model, prepared, repeats: int = 50) -> float:
    """Median wall time of one compiled forward pass on a batch of 32 eval rows (ms)."""
    fn = tf.function(lambda f: model(f, training=False), autograph=False)
    batch = {k: tf.constant(v) for k, v in _take(prepared.eval, slice(0, INFERENCE_BATCH)).items()}
    fn(batch)  # trace
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(batch).numpy()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def train_and_evaluate(
    run: RunSpec,
    prepared,
    runs_dir: str,
    ks=(10, 50),
    protocol: str = "alpine",
    progress=print,
    keep_model: bool = False,
    run_eagerly: bool = False,
):
    """Trains one run to convergence and evaluates it, or loads its cached result.

    Args:
      run: RunSpec.
      prepared: `experiments.data.Prepared`.
      runs_dir: Cache directory of runs.
      ks: Ranking cut-offs.
      protocol: Ranking protocol ("alpine" or "thacil").
      progress: callable(str).
      keep_model: Also return the trained model (rebuilt and restored when cached).
      run_eagerly: Keras eager execution (no tracing; for runs of a few steps).

    Returns:
      result dict (and the model when keep_model).
    """
    if run.max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {run.max_epochs}")
    key = run_key(run, prepared, protocol, ks)
    out_dir = os.path.join(runs_dir, key)
    result_path = os.path.join(out_dir, "result.json")
    weights = os.path.join(out_dir, "weights", "ckpt")
    if os.path.exists(result_path):
        with open(result_path) as f:
            result = json.load(f)
        progress(f"  {run.label} (seed {run.seed}): cached run {key}, AUC {result['auc']:.4f}")
        if not keep_model:
            return result
        model, _ = build(run, prepared, run_eagerly)
        model.load_weights(weights).expect_partial()
        restored = metrics.auc(prepared.eval[F.MODEL_LABEL], predict(model, prepared.eval))
        if not abs(restored - result["auc"]) < 1e-4:
            raise RuntimeError(
                f"{out_dir}: restored weights give AUC {restored:.6f}, the run recorded "
                f"{result['auc']:.6f}; delete the directory to retrain"
            )
        return result, model

    t0 = time.perf_counter()
    config = _config(run, prepared)
    content, categories = video_tables(
        run.model_type, config, prepared.tft_output(), prepared.data_dir
    )
    settings = dataclasses.replace(
        TRAINER, model_type=run.model_type, preset=run.preset, max_epochs=run.max_epochs
    )
    data = training_data(prepared)
    batch = config.batch_size
    epochs, steps_per_epoch = epoch_plan(data.num_train, batch, settings)
    recorder = _Recorder(prepared, ks, protocol, steps_per_epoch)
    progress(f"  {run.label} (seed {run.seed}): up to {epochs} epochs of {steps_per_epoch} steps")
    t_fit = time.perf_counter()
    fit = fit_model(settings, config, content, data, tf.distribute.get_strategy(),
                    callbacks=[recorder], run_eagerly=run_eagerly,
                    categories=categories)  # fmt: skip
    model = fit.model
    fit_seconds = max(time.perf_counter() - t_fit - recorder.eval_seconds, 1e-9)
    result = evaluate(model, prepared, ks, protocol)
    trained_epochs = fit.epochs or 1  # early-stopped epochs (a count: its one pass); refit apart
    steps = len(recorder.step_loss) + fit.refit_epochs * round(
        steps_per_epoch * data.num_rows / data.num_train
    )
    counts = model.parameter_counts()
    half = recorder.step_loss[len(recorder.step_loss) // 2 :]
    result.update(
        label=run.label,
        model_type=run.model_type,
        seed=run.seed,
        steps=steps,
        epochs=trained_epochs,
        best_epoch=fit.best_epoch,
        best_val_auc=fit.best_val_auc,
        refit_epochs=fit.refit_epochs,
        config=config.to_dict(),
        curves=recorder.curves,
        step_loss=recorder.step_loss,
        loss_variance_second_half=float(np.var(half)) if half else float("nan"),
        train_seconds=fit_seconds,
        train_seconds_per_epoch=fit_seconds / max(trained_epochs, 1),
        inference_ms_per_batch=inference_ms_per_batch(model, prepared),
        parameters=counts,
        wall_seconds=time.perf_counter() - t0,
        key=key,
    )
    os.makedirs(out_dir, exist_ok=True)
    model.save_weights(weights)
    with open(result_path, "w") as f:
        json.dump(result, f)
    k = ks[0]
    progress(
        f"  {run.label} (seed {run.seed}): AUC {result['auc']:.4f} P@{k} "
        f"{result[f'precision_at_{k}']:.4f}; best epoch {result['best_epoch']}/{fit.epochs} "
        f"(validation AUC {result['best_val_auc']:.4f}), refit {fit.refit_epochs} epoch(s); "
        f"{result['wall_seconds']:.0f} s, "
        f"{steps / fit_seconds:.1f} train steps/s)"
    )
    return (result, model) if keep_model else result
