"""Run as a subprocess by test_trainer_distributed.py: the Trainer under MirroredStrategy on 2 CPUs.

Logical devices must be configured before TensorFlow initialises them, hence a fresh process.
It reads the session's shared Transform output (`serving_transform_dir` in tests/conftest.py:
TFT's output of `random_raw_rows(seed=0)` with max_history 8, and its transformed rows) instead of
analysing rows of its own. Prints one JSON line with what the test checks.
"""

import json
import os
import pickle
import sys

import tensorflow as tf

import tf_ccl4rec  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
from tfx.components.trainer import fn_args_utils  # noqa: E402
from tfx.components.util import tfxio_utils  # noqa: E402
from tfx.types import standard_artifacts  # noqa: E402

from tf_ccl4rec.model import CCL4RecModel  # noqa: E402
from tf_ccl4rec.testing import (  # noqa: E402
    random_raw_rows,
    serialize_raw_row,
    write_transformed_examples,
)
from tf_ccl4rec.trainer import train_and_export  # noqa: E402
from tf_ccl4rec.training_settings import TrainerSettings  # noqa: E402


def main(workdir, shared_transform):
    settings = {"max_history": 8}  # the shared Transform output's
    with open(os.path.join(shared_transform, "rows.pickle"), "rb") as f:
        transformed = pickle.load(f)
    for split in ("train", "eval"):
        os.makedirs(os.path.join(workdir, "examples", f"Split-{split}"))
        write_transformed_examples(
            transformed, os.path.join(workdir, "examples", f"Split-{split}", "data.tfrecord")
        )
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(workdir, "examples")
    examples.split_names = '["train", "eval"]'
    factory = tfxio_utils.get_tf_dataset_factory_from_artifact([examples], [])
    fn_args = fn_args_utils.FnArgs(
        train_files=[os.path.join(workdir, "examples", "Split-train", "*")],
        eval_files=[os.path.join(workdir, "examples", "Split-eval", "*")],
        transform_output=os.path.join(shared_transform, "transform"),
        serving_model_dir=os.path.join(workdir, "serving"),
        model_run_dir=os.path.join(workdir, "logs"),
        train_steps=20,
        eval_steps=2,
        custom_config=TrainerSettings(
            preset="paper",
            model={"embedding_dim": 8, "mlp_units": [8], "num_substitutes": 10,
                   "num_positives": 2, "num_negatives": 2, "batch_size": 8},
            transform=settings,
            distribution="mirrored",
            max_epochs=1,
            train_steps=20,
            refit=False,  # the 20 steps checked below are those of one training
        ).to_custom_config(),
        data_accessor=fn_args_utils.DataAccessor(
            tf_dataset_factory=factory, record_batch_factory=None, data_view_decode_fn=None
        ),
    )  # fmt: skip
    strategy_model = train_and_export(fn_args)
    # The exported graph vs the same weights in a fresh single-device model.
    single = CCL4RecModel(strategy_model.config)
    batch = {
        k: np.stack([np.asarray(r[k]).reshape(-1) for r in transformed[:32]])
        for k in transformed[0]
    }
    batch = {k: v.reshape(-1) if v.shape[1] == 1 else v for k, v in batch.items()}
    single(batch)
    single.set_weights(strategy_model.get_weights())
    expected = single(batch).numpy()
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    parsed_rows = random_raw_rows(seed=0)[:32]  # the raw rows of `transformed`
    serialized = [serialize_raw_row(row) for row in parsed_rows]
    exported = loaded.signatures["serving_default"](inputs=tf.constant(serialized))["scores"]
    print(json.dumps({
        "replicas": int(strategy_model.distribute_strategy.num_replicas_in_sync),
        "strategy": type(strategy_model.distribute_strategy).__name__,
        "max_abs_diff": float(np.max(np.abs(exported.numpy().reshape(-1) - expected))),
        "trained_steps": int(strategy_model.optimizer.iterations.numpy()),
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
