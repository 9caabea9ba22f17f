"""The TFX Trainer's ``run_fn``: CCL4RecModel on Transform's output, exported with the serving signatures.

custom_config (all optional; JSON-able, set by ``pipeline/configs.py``):
  model_type:   "ccl4rec" (default) or a baseline of tf_ccl4rec.baselines.MODEL_TYPES
  model:        CCL4RecConfig overrides (vocab_size, num_oov_buckets and max_history come from Transform)
  transform:    the Transform settings used (``preprocessing.DEFAULTS`` keys)
  data_root:    raw-log directory, to load the video-feature table for "content"/"both" representations
  distribution: "auto" (MirroredStrategy when GPUs are visible), "mirrored" (over every visible device,
                CPUs included), or "default"
  rows_per_user: rows of one user kept together in a batch (L_cui needs both labels per user)
  epochs:       train_steps are split over this many Keras epochs (eval + TensorBoard after each)
"""

import json
import logging

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from tf_ccl4rec import baselines
from tf_ccl4rec.batching import group_by_user
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.export import export_serving_model
from tf_ccl4rec.model import ScheduleCallback
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME, transform_settings

log = logging.getLogger(__name__)


def choose_strategy(distribution: str = "auto") -> tf.distribute.Strategy:
    """MirroredStrategy over the GPUs when there are any (or on request), else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if distribution == "mirrored" or (distribution == "auto" and gpus):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        log.info("Training with MirroredStrategy on %s", devices)
        print(f"trainer: MirroredStrategy over {len(devices)} devices: {devices}", flush=True)
        return strategy
    if distribution not in ("auto", "default"):
        raise ValueError(f"distribution must be auto, mirrored or default, got {distribution!r}")
    print("trainer: no GPU visible; default (single-device) strategy", flush=True)
    return tf.distribute.get_strategy()


def model_config(custom_config: dict, tft_output) -> CCL4RecConfig:
    """CCL4RecConfig from the overrides, with the sizes that Transform decided."""
    settings = transform_settings(custom_config.get("transform"))
    values = dict(custom_config.get("model") or {})
    values.update(
        vocab_size=int(tft_output.vocabulary_size_by_name(VIDEO_VOCAB_NAME)),
        num_oov_buckets=int(settings["num_oov_buckets"]),
        max_history=int(settings["max_history"]),
    )
    return CCL4RecConfig.from_dict(values)


def content_table(config: CCL4RecConfig, tft_output, data_root: str | None):
    """The frozen content table aligned with the vocabulary (row 0 = padding, OOV rows = 0).

    Videos of the vocabulary without a feature row get zeros; their count is printed, not hidden.
    """
    if config.video_representation == "id":
        return None
    from tf_ccl4rec.data.raw_log import load_video_features

    loaded = load_video_features(data_root) if data_root else None
    if loaded is None:
        raise ValueError(
            f"video_representation={config.video_representation!r} needs the video-feature table "
            f"in the raw-log directory (custom_config data_root={data_root!r})"
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
    print(f"trainer: content features for {len(vocab) - missing}/{len(vocab)} videos", flush=True)
    return table


def make_dataset(
    file_pattern, data_accessor, tft_output, batch_size, rows_per_user, seed, repeat=True
):
    """Transformed examples -> user-grouped batches of model features."""
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=256, shuffle=False, num_epochs=1),
        tft_output.transformed_metadata.schema,
    ).unbatch()
    # Scalars come as [1] from FixedLenFeature([1]); the model wants [B].
    dataset = dataset.map(
        lambda row: {
            k: tf.reshape(v, []) if v.shape.num_elements() == 1 else v for k, v in row.items()
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if repeat:
        dataset = dataset.repeat()
    return group_by_user(
        dataset, batch_size, rows_per_user=rows_per_user, seed=seed, drop_remainder=repeat
    ).prefetch(tf.data.AUTOTUNE)


def run_fn(fn_args):
    """TFX generic Trainer entry point: trains CCL4Rec and exports the serving SavedModel."""
    train_and_export(fn_args)


def train_and_export(fn_args):
    """Trains on `fn_args` (a TFX FnArgs), exports to fn_args.serving_model_dir, returns the model."""
    custom = fn_args.custom_config or {}
    if isinstance(custom, str):
        custom = json.loads(custom)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    config = model_config(custom, tft_output)
    model_type = custom.get("model_type", "ccl4rec")
    content = content_table(config, tft_output, custom.get("data_root"))
    seed = int(config.seed)
    tf.keras.utils.set_random_seed(seed)
    rows_per_user = int(custom.get("rows_per_user", 4))

    strategy = choose_strategy(custom.get("distribution", "auto"))
    batch = config.batch_size * strategy.num_replicas_in_sync
    train = make_dataset(
        fn_args.train_files, fn_args.data_accessor, tft_output, batch, rows_per_user, seed
    )
    evaluation = make_dataset(
        fn_args.eval_files, fn_args.data_accessor, tft_output, batch, rows_per_user, seed
    )
    with strategy.scope():  # variables (built by parameter_counts) must live in the scope
        # Baselines read the keys they share with CCL4RecConfig and ignore the rest.
        model = baselines.build_model(model_type, config.to_dict(), content)
        model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
        counts = model.parameter_counts()
    print(
        f"trainer: {model_type} config {json.dumps(config.to_dict(), sort_keys=True)}", flush=True
    )
    print(f"trainer: parameters {counts}", flush=True)
    epochs = max(1, int(custom.get("epochs", 1)))
    total_steps = max(1, int(fn_args.train_steps))
    steps_per_epoch = max(1, total_steps // epochs)
    eval_steps = max(1, int(fn_args.eval_steps or 1))
    history = model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=evaluation,
        validation_steps=eval_steps,
        callbacks=[
            tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")
        ]
        # The controllable-augmentation schedule (§3.5) exists only in CCL4Rec.
        + ([ScheduleCallback(steps_per_epoch * epochs)] if model_type == "ccl4rec" else []),
        verbose=2,
    )
    final = {k: round(float(v[-1]), 5) for k, v in history.history.items()}
    print(f"trainer: final epoch metrics {json.dumps(final, sort_keys=True)}", flush=True)
    export_serving_model(model, tft_output, fn_args.serving_model_dir)
    print(f"trainer: exported serving model to {fn_args.serving_model_dir}", flush=True)
    return model
