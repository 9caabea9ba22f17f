"""The TFX Trainer's ``run_fn``: a model of `model_registry` on Transform's output, trained to
convergence and exported with the serving signatures.

Settings arrive as one `TrainerSettings` in ``custom_config`` (see `training_settings.py`). The
loop, the same for CCL4Rec and every baseline:

1. The latest ``validation_fraction`` of each user's training exposures (by timestamp) is held
   out as a validation split; the rest is trained on. The Evaluator's eval split is never seen.
2. Keras epochs of one pass over the training rows each (``steps_per_epoch`` from the counted
   rows), up to ``max_epochs``; ``train_steps`` overrides the total when given.
3. After every epoch the validation AUC is measured and one line printed; training stops after
   ``early_stopping_patience`` epochs without a better one and the best epoch's weights are
   restored.
4. With ``refit`` (the default), the model is then trained again from its initialisation on
   every training row, validation rows included, for the best epoch's number of epochs, and
   that model is exported: the latest exposures before the eval split are the most informative
   ones, and a count uses them too.

Counts (`model_registry.COUNTING_TYPES`) skip all of this: one exact pass over every training row.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from tf_ccl4rec import distribution as _distribution
from tf_ccl4rec import features as F
from tf_ccl4rec import model_registry
from tf_ccl4rec.batching import SHUFFLE_WINDOWS, group_by_user
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.export import export_serving_model
from tf_ccl4rec.model import ScheduleCallback
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME, transform_settings
from tf_ccl4rec.training_settings import TrainerSettings

log = logging.getLogger(__name__)
VALIDATION_METRIC = "val_auc"
_NO_VALIDATION = np.iinfo(np.int64).max  # cutoff of a user with no validation rows
ROW_SHUFFLE_BUFFER = 200_000  # rows; bounds memory on large logs (a full shuffle below that)
WARM_START_BATCH = 4096  # rows per batch when the warm start computes statistics from the rows


def choose_strategy(distribution: str = "auto") -> tf.distribute.Strategy:
    """The Trainer's strategy (`tf_ccl4rec.distribution.choose_strategy`: multi-worker under a
    TF_CONFIG cluster, MirroredStrategy over GPUs, else one device)."""
    return _distribution.choose_strategy(distribution)


def model_config(settings: TrainerSettings, tft_output) -> CCL4RecConfig:
    """The preset, the user's overrides and the sizes that Transform and the data decided.

    `video_representation="auto"` becomes "content" when the raw log has a video-feature table
    and "id" otherwise; `content_feature_dim` is the table's width unless the user set it.
    """
    from tf_ccl4rec.config import AUTO_REPRESENTATION, PRESETS
    from tf_ccl4rec.data.raw_log import load_video_features

    transform = transform_settings(settings.transform)
    values = {**PRESETS[settings.preset], **settings.model}
    representation = values.get("video_representation", "id")
    if representation != "id" and not values.get("content_feature_dim"):
        loaded = load_video_features(settings.data_root) if settings.data_root else None
        if loaded is None and representation != AUTO_REPRESENTATION:
            raise ValueError(
                f"video_representation={representation!r} needs the video-feature table in the "
                f"raw-log directory (data_root={settings.data_root!r})"
            )
        if loaded is None:
            values["video_representation"] = "id"
        else:
            values["content_feature_dim"] = int(loaded[1].shape[1])
    if values.get("video_representation") == AUTO_REPRESENTATION:
        values["video_representation"] = "content"
    return CCL4RecConfig.from_dict(
        {
            **values,
            "vocab_size": int(tft_output.vocabulary_size_by_name(VIDEO_VOCAB_NAME)),
            "num_oov_buckets": int(transform["num_oov_buckets"]),
            "max_history": int(transform["max_history"]),
        }
    )


def content_table(config: CCL4RecConfig, tft_output, data_root: str | None):
    """The frozen content table aligned with the vocabulary (row 0 = padding, OOV rows = 0).

    Videos of the vocabulary without a feature row get zeros; their count is printed, not hidden.
    Rows are scaled to unit L2 norm so the projection starts at the same scale whatever the
    feature extractor (§4.1 leaves the features' scale open).
    """
    if config.video_representation == "id":
        return None
    from tf_ccl4rec.data.raw_log import load_video_features

    loaded = load_video_features(data_root) if data_root else None
    if loaded is None:
        raise ValueError(
            f"video_representation={config.video_representation!r} needs the video-feature table "
            f"in the raw-log directory (data_root={data_root!r})"
        )
    ids, matrix = loaded
    row_of = {vid: i for i, vid in enumerate(ids)}
    table = np.zeros((config.num_embeddings, matrix.shape[1]), np.float32)
    vocab = [v.decode() for v in tft_output.vocabulary_by_name(VIDEO_VOCAB_NAME)]
    missing = 0
    for index, vid in enumerate(vocab, start=1):
        row = row_of.get(vid)
        if row is None:
            missing += 1
        else:
            table[index] = matrix[row]
    if config.normalize_content_features:
        norms = np.linalg.norm(table, axis=1, keepdims=True)
        table = table / np.where(norms > 0, norms, 1.0)
    print(f"trainer: content features for {len(vocab) - missing}/{len(vocab)} videos", flush=True)
    return table


def video_tables(model_type: str, config: CCL4RecConfig, tft_output, data_root: str | None):
    """(content table, category table) of a model type: CCL4Rec's (`content_table`,
    `video_categories`, either may be None); (None, None) for the baselines, which read ids only."""
    if model_type != model_registry.CCL4REC:
        return None, None
    return (
        content_table(config, tft_output, data_root),
        video_categories(config, tft_output, data_root),
    )


def video_categories(config: CCL4RecConfig, tft_output, data_root: str | None):
    """int32 [num_embeddings] category index of every vocabulary video (0 = none), or None.

    Read from the raw log's optional `category` column (a video's most frequent category; indices
    1..K in sorted order). None when `config.category_statistics` is off or the log has no
    categories; the second case is printed, since the preset asked for them.
    """
    if not (config.category_statistics and config.history_statistics):
        return None
    import pandas as pd

    from tf_ccl4rec.data.raw_log import raw_log_paths, read_header

    if not data_root:
        print("trainer: no raw-log directory given: category statistics off", flush=True)
        return None
    path = raw_log_paths(data_root).interactions
    if F.RAW_CATEGORY not in read_header(path):
        print(f"trainer: {path} has no {F.RAW_CATEGORY!r} column: category statistics off",
              flush=True)  # fmt: skip
        return None
    with tf.io.gfile.GFile(path) as f:  # gs:// as well as local paths
        log = pd.read_csv(f, usecols=[F.RAW_VIDEO_ID, F.RAW_CATEGORY], dtype=str,
                          keep_default_na=False)  # fmt: skip
    # The example builder strips ids the same way; rows without a category say nothing.
    log = log.apply(lambda c: c.str.strip())
    log = log[(log[F.RAW_VIDEO_ID] != "") & (log[F.RAW_CATEGORY] != "")]
    names = sorted(log[F.RAW_CATEGORY].unique())
    index_of = {name: i for i, name in enumerate(names, start=1)}
    counts = log.groupby([F.RAW_VIDEO_ID, F.RAW_CATEGORY]).size().reset_index(name="n")
    counts = counts.sort_values(
        [F.RAW_VIDEO_ID, "n", F.RAW_CATEGORY], ascending=[True, False, True]
    )
    category_of_id = dict(
        counts.drop_duplicates(F.RAW_VIDEO_ID)[[F.RAW_VIDEO_ID, F.RAW_CATEGORY]].itertuples(
            index=False
        )
    )
    table = np.zeros(config.num_embeddings, np.int32)
    vocab = [v.decode() for v in tft_output.vocabulary_by_name(VIDEO_VOCAB_NAME)]
    for index, vid in enumerate(vocab, start=1):
        name = category_of_id.get(vid)
        if name is not None:
            table[index] = index_of[name]
    known = int((table[1 : len(vocab) + 1] > 0).sum())
    print(f"trainer: categories for {known}/{len(vocab)} videos ({len(names)} categories)",
          flush=True)  # fmt: skip
    return table


def _rows(file_pattern, data_accessor, tft_output):
    """Transformed examples, one feature dict per row (scalars as [], not [1])."""
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=256, shuffle=False, num_epochs=1),
        tft_output.transformed_metadata.schema,
    ).unbatch()
    return dataset.map(
        lambda row: {
            k: tf.reshape(v, []) if v.shape.num_elements() == 1 else v for k, v in row.items()
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def validation_cutoffs(users: np.ndarray, timestamps: np.ndarray, fraction: float):
    """Per user, the timestamp from which its training exposures are validation.

    The latest floor(n * fraction) exposures of a user with n (ties at the cutoff go with them),
    the same rule as the example builder's eval split. Users with none get int64 max.

    Args:
      users: int64 [R] user index per training row.
      timestamps: int64 [R].
      fraction: In (0, 1).

    Returns:
      (unique users int64 [U], cutoffs int64 [U], bool [R] validation rows in the input order).
    """
    from tf_ccl4rec.data.examples import eval_count

    order = np.lexsort((timestamps, users))
    sorted_stamps = timestamps[order]
    unique, starts, counts = np.unique(users[order], return_index=True, return_counts=True)
    cutoffs = np.full(len(unique), _NO_VALIDATION, np.int64)
    for i, (start, n) in enumerate(zip(starts, counts, strict=True)):
        k = eval_count(int(n), fraction)
        if k:
            cutoffs[i] = sorted_stamps[start + n - k]
    return unique, cutoffs, timestamps >= cutoffs[np.searchsorted(unique, users)]


class TrainingData:
    """The training rows split into train and validation (leak-free, per user, by time).

    Args:
      rows: Unbatched tf.data.Dataset of transformed feature dicts (scalars as []), in a
        repeatable order: the Trainer's examples (`from_files`) or the experiments' arrays.
      fraction: `TrainerSettings.validation_fraction`.
      source: What `rows` is, for error messages.
    """

    @classmethod
    def from_files(cls, file_pattern, data_accessor, tft_output, fraction: float):
        return cls(_rows(file_pattern, data_accessor, tft_output), fraction, str(file_pattern))

    def __init__(self, rows, fraction: float, source: str = "the training rows"):
        self._rows = rows
        names = (F.MODEL_USER, F.MODEL_TIMESTAMP, F.MODEL_TARGET, F.MODEL_LABEL)
        # The user statistics the wide logit's warm start fits, when Transform wrote them.
        count_names = (F.MODEL_CLICK_COUNT, F.MODEL_NONCLICK_COUNT, F.MODEL_RECENT_CLICK_COUNT)
        has_counts = all(n in rows.element_spec for n in count_names)
        keys = self._rows.map(
            lambda r: (
                tuple(r[n] for n in names)
                + (
                    (tf.stack([tf.cast(r[n], tf.float32) for n in count_names]),)
                    if has_counts
                    else ()
                )
            )
        )
        # Without tf.data's map_and_batch_fusion: fused, every experiment run (each builds a
        # TrainingData) trained ~1.6x slower after it (`experiment ablation --quick` 50 -> 31 s);
        # unfused, this pass costs ~1.5 s more on 100k rows, once per Trainer run.
        options = tf.data.Options()
        options.experimental_optimization.map_and_batch_fusion = False
        parts = list(keys.batch(65536).with_options(options).as_numpy_iterator())
        if not parts:
            raise ValueError(f"no training examples in {source}: nothing to train on")
        columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
        users, stamps, targets, labels = columns[:4]
        counts = columns[4] if has_counts else None
        # Every row's video, click and user counts (and the rows themselves, for statistics that
        # need the histories): what the refit's warm start fits.
        self.all_warm_start = (targets, labels, counts, self._rows.batch(WARM_START_BATCH))
        unique, cutoffs, held_out = validation_cutoffs(users, stamps, fraction)
        self.num_validation = int(held_out.sum())
        # What the warm start fits before the refit (`CCL4RecModel.warm_start`).
        self.train_warm_start = (
            targets[~held_out],
            labels[~held_out],
            None if counts is None else counts[~held_out],
        )
        self.num_rows = len(users)
        self.num_train = self.num_rows - self.num_validation
        if self.num_train < 1 or self.num_validation < 1:
            raise ValueError(
                f"{self.num_rows} training rows leave {self.num_train} to train on and "
                f"{self.num_validation} to validate on (validation_fraction {fraction}); "
                "users need more exposures"
            )
        self._cutoff = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(unique, tf.int64), tf.constant(cutoffs, tf.int64)
            ),
            default_value=_NO_VALIDATION,
        )
        train_rows = self._rows.filter(lambda r: tf.logical_not(self._is_validation(r)))
        self.train_warm_start += (train_rows.batch(WARM_START_BATCH),)

    def _is_validation(self, row):
        return row[F.MODEL_TIMESTAMP] >= self._cutoff.lookup(row[F.MODEL_USER])

    def train(
        self, batch_size: int, rows_per_user: int, seed: int, with_validation: bool = False
    ) -> tf.data.Dataset:
        """Endless user-grouped batches of the training rows (and of the validation rows when
        `with_validation`, as the refit trains on)."""
        rows = self._rows
        if not with_validation:
            rows = rows.filter(lambda r: tf.logical_not(self._is_validation(r)))
        # The examples come user by user; without a row shuffle before grouping, each stretch of
        # an epoch would see only a few hundred users (non-i.i.d. steps).
        size = self.num_rows if with_validation else self.num_train
        rows = rows.shuffle(min(size, ROW_SHUFFLE_BUFFER), seed=seed)
        # At most one pass of windows: on a log smaller than the buffer the first batch would
        # wait for many passes of the data (0.4-0.7 s per fit on a 229-row log).
        windows = min(SHUFFLE_WINDOWS, -(-size // rows_per_user))
        batches = group_by_user(
            rows.repeat(),
            batch_size,
            rows_per_user=rows_per_user,
            shuffle_windows=windows,
            seed=seed,
            drop_remainder=True,
        ).prefetch(tf.data.AUTOTUNE)
        # Multi-worker: every worker builds the same global batches and keeps its share.
        return _distribution.shard_by_data(batches)

    def validation(self, batch_size: int) -> tf.data.Dataset:
        return _distribution.shard_by_data(
            self._rows.filter(self._is_validation).batch(batch_size).cache().prefetch(2)
        )

    def every_row(self, batch_size: int) -> tf.data.Dataset:
        """One pass over every training row, validation rows included (what a count reads)."""
        return _distribution.shard_by_data(self._rows.batch(batch_size).prefetch(2))


class BestEpoch(tf.keras.callbacks.EarlyStopping):
    """Early stopping on the validation AUC that always ends on the best epoch's weights.

    Keras' EarlyStopping restores them only when it stops early; a run that uses all its epochs
    would export the last epoch instead.
    """

    def __init__(self, patience: int):
        super().__init__(
            monitor=VALIDATION_METRIC, mode="max", patience=patience, restore_best_weights=True
        )

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            print(
                f"trainer: restored the weights of epoch {self.best_epoch + 1} "
                f"(validation AUC {self.best:.4f})",
                flush=True,
            )


class _TimedLines(tf.keras.callbacks.Callback):
    """Times each epoch: the first one includes tracing, so the total alone misleads."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self._start = self._epoch_start = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def timing(self, epoch: int) -> str:
        """E.g. "epoch 2/20 (6 s, 31 s in all)": this epoch's seconds, then since the start."""
        now = time.time()
        return (
            f"epoch {epoch + 1}/{self.epochs} ({now - self._epoch_start:.0f} s, "
            f"{now - self._start:.0f} s in all)"
        )


class EpochLines(_TimedLines):
    """One progress line per epoch: time, training loss/AUC, validation AUC."""

    def __init__(self, epochs: int):
        super().__init__(epochs)
        self.best = -1.0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = float(logs.get(VALIDATION_METRIC, float("nan")))
        mark = " (best)" if value > self.best else ""
        self.best = max(self.best, value)
        print(
            f"trainer: {self.timing(epoch)}: "
            f"loss {logs.get('loss', float('nan')):.4f} train AUC {logs.get('auc', float('nan')):.4f}"
            f" validation AUC {value:.4f}{mark}",
            flush=True,
        )


class RefitLines(_TimedLines):
    """One progress line per refit epoch (no validation rows are left to score)."""

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(
            f"trainer: refit {self.timing(epoch)}: "
            f"loss {logs.get('loss', float('nan')):.4f} train AUC {logs.get('auc', float('nan')):.4f}",
            flush=True,
        )


def epoch_plan(num_train: int, batch: int, settings: TrainerSettings) -> tuple[int, int]:
    """(epochs, steps per epoch): whole passes, or `train_steps` spread over Keras epochs."""
    per_pass = max(1, num_train // batch)
    if settings.model_type in model_registry.COUNTING_TYPES:
        return 1, per_pass  # one exact count; more passes would count rows twice
    if settings.train_steps is None:
        return settings.max_epochs, per_pass
    epochs = max(1, min(settings.max_epochs, math.ceil(settings.train_steps / per_pass)))
    return epochs, max(1, settings.train_steps // epochs)


def run_fn(fn_args):
    """TFX generic Trainer entry point: trains and exports the serving SavedModel."""
    train_and_export(fn_args)


def settings_from_fn_args(fn_args) -> TrainerSettings:
    """The TrainerSettings that `run_fn` trains with (parsed from fn_args.custom_config)."""
    return TrainerSettings.from_custom_config(fn_args.custom_config)


def with_hyperparameters(settings: TrainerSettings, hyperparameters) -> TrainerSettings:
    """`settings` with the Tuner's best values (`fn_args.hyperparameters`, a KerasTuner
    HyperParameters config, or None) as model overrides: they win over the preset and --model."""
    if not hyperparameters:
        return settings
    import keras_tuner

    values = keras_tuner.HyperParameters.from_config(hyperparameters).values
    print(f"trainer: the Tuner's best hyperparameters (over the preset and --model): {values}",
          flush=True)  # fmt: skip
    return dataclasses.replace(settings, model={**settings.model, **values})


def train_and_export(fn_args, callbacks=()):
    """Trains on `fn_args` (a TFX FnArgs), exports to fn_args.serving_model_dir, returns the model.

    `callbacks`: extra Keras callbacks of the training (`fit_model`'s; the benchmarks' clocks).
    Under a multi-worker TF_CONFIG every worker runs this; only the chief's export is kept and
    only the chief writes TensorBoard logs (`tf_ccl4rec.distribution`).
    """
    settings = with_hyperparameters(settings_from_fn_args(fn_args), fn_args.hyperparameters)
    model_type = settings.model_type
    # The strategy first: MultiWorkerMirroredStrategy configures collective ops, which TensorFlow
    # allows only before its runtime has run anything.
    if model_type in model_registry.COUNTING_TYPES:
        # A count is one exact pass: every worker of a multi-worker job counts every row alone
        # (the same model everywhere) and only the chief's export is kept.
        strategy = tf.distribute.get_strategy()
        chief = _distribution.is_chief(_distribution.tf_config())
    else:
        strategy = choose_strategy(settings.distribution)
        chief = _distribution.strategy_is_chief(strategy)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    config = model_config(settings, tft_output)
    content, categories = video_tables(model_type, config, tft_output, settings.data_root)
    data = TrainingData.from_files(
        fn_args.train_files, fn_args.data_accessor, tft_output, settings.validation_fraction
    )
    model = fit_model(
        settings,
        config,
        content,
        data,
        strategy,
        log_dir=fn_args.model_run_dir if chief else None,
        callbacks=callbacks,
        categories=categories,
    ).model
    # Every worker saves (saving may run collective ops); only the chief's copy is kept.
    target = _distribution.export_dir(fn_args.serving_model_dir, chief)
    export_serving_model(model, tft_output, target)
    _distribution.remove_worker_copy(target, fn_args.serving_model_dir)
    if chief:
        print(f"trainer: exported serving model to {fn_args.serving_model_dir}", flush=True)
    else:
        print("trainer: not the chief: this worker's export was written and removed", flush=True)
    return model


def _build(
    settings, config, content, strategy, warm_start=None, run_eagerly=False, categories=None
):
    """A compiled model of `settings.model_type` (seeded), warm-started from the given rows
    ((targets, labels, user counts, rows) of `TrainingData`)."""
    tf.keras.utils.set_random_seed(int(config.seed))
    with strategy.scope():  # variables (built by parameter_counts) must live in the scope
        model = model_registry.build_model(
            settings.model_type, config.to_dict(), content, categories
        )
        model.compile(
            optimizer=tf.keras.optimizers.Adam(config.learning_rate), run_eagerly=run_eagerly
        )
        counts = model.parameter_counts()
        if warm_start and getattr(model, "warm_start", None) and model.warm_start(*warm_start):
            print(
                "trainer: wide logit warm-started at the user + video count (user statistics "
                f"fitted: {warm_start[2] is not None}; category statistics: "
                f"{getattr(model.wide, 'category_of', None) is not None})",
                flush=True,
            )
    return model, counts


@dataclasses.dataclass
class Fit:
    """What `fit_model` trained.

    Attributes:
      model: The model to export (the refit one when there was a refit).
      epochs: Epochs run before early stopping ended training (0 for a count).
      steps_per_epoch: Steps of one of those epochs.
      best_epoch: 1-based epoch of the best validation AUC (0 for a count).
      best_val_auc: That AUC (NaN for a count).
      refit_epochs: Epochs of the refit on every training row (0: no refit).
    """

    model: tf.keras.Model
    epochs: int = 0
    steps_per_epoch: int = 0
    best_epoch: int = 0
    best_val_auc: float = float("nan")
    refit_epochs: int = 0


def fit_model(
    settings: TrainerSettings,
    config,
    content,
    data,
    strategy,
    log_dir=None,
    callbacks=(),
    run_eagerly=False,
    categories=None,
) -> Fit:
    """Trains `settings.model_type` on `data` (a `TrainingData`) as the module docstring says.

    Args:
      settings / config / content: What `model_registry.build_model` needs.
      data: TrainingData.
      strategy: tf.distribute strategy (`choose_strategy`).
      log_dir: TensorBoard directory of the early-stopped training (None: no TensorBoard).
      callbacks: Extra Keras callbacks of the early-stopped training (the experiments' curves).
      run_eagerly: Keras eager execution (no tracing: faster for the few steps of smoke tests).
      categories: CCL4Rec's video category table (`video_categories`), or None.
    """
    model_type = settings.model_type
    batch = config.batch_size * strategy.num_replicas_in_sync
    if model_type in model_registry.COUNTING_TYPES:
        model, _ = _build(settings, config, content, strategy, None, run_eagerly)
        model.fit(data.every_row(batch), epochs=1, callbacks=list(callbacks), verbose=0)
        print(
            f"trainer: {model_type} counted every one of the {data.num_rows} training rows "
            "(a count has nothing to stop early, so it holds out no validation rows)",
            flush=True,
        )
        return Fit(model)
    epochs, steps_per_epoch = epoch_plan(data.num_train, batch, settings)
    print(
        f"trainer: {data.num_rows} training rows: {data.num_train} to train on, "
        f"{data.num_validation} held out for validation (each user's latest "
        f"{settings.validation_fraction:.0%}); up to {epochs} epochs of {steps_per_epoch} steps "
        f"(batch {batch})",
        flush=True,
    )
    model, counts = _build(
        settings, config, content, strategy, data.train_warm_start, run_eagerly, categories
    )
    print(f"trainer: {model_type} ({settings.preset} preset) {config.to_json()}", flush=True)
    print(f"trainer: parameters {counts}", flush=True)
    best = BestEpoch(settings.early_stopping_patience)
    callbacks = [*callbacks, EpochLines(epochs), best]
    if log_dir:
        callbacks.insert(0, tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    if model_type == model_registry.CCL4REC:  # the augmentation schedule (§3.5)
        callbacks.append(ScheduleCallback(steps_per_epoch * epochs))
    seed = int(config.seed)
    history = model.fit(
        data.train(batch, settings.rows_per_user, seed),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=data.validation(batch),
        callbacks=callbacks,
        verbose=0,
    )
    fit = Fit(model, len(history.epoch), steps_per_epoch, int(best.best_epoch) + 1,
              float(best.best))  # fmt: skip
    if not settings.refit:
        return fit
    refit_epochs = fit.best_epoch
    # The same number of steps per row as above, over every row.
    refit_steps = max(1, round(steps_per_epoch * data.num_rows / data.num_train))
    print(
        f"trainer: refit from the initialisation on all {data.num_rows} training rows "
        f"(validation included) for the best {refit_epochs} epoch(s) of {refit_steps} steps",
        flush=True,
    )
    model, _ = _build(
        settings, config, content, strategy, data.all_warm_start, run_eagerly, categories
    )
    callbacks = [RefitLines(refit_epochs)]
    if model_type == model_registry.CCL4REC:
        callbacks.append(ScheduleCallback(refit_steps * refit_epochs))
    model.fit(
        data.train(batch, settings.rows_per_user, seed, with_validation=True),
        epochs=refit_epochs,
        steps_per_epoch=refit_steps,
        callbacks=callbacks,
        verbose=0,
    )
    fit.model, fit.refit_epochs = model, refit_epochs
    return fit
