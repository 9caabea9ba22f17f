"""Run as a subprocess by test_replica_scaling.py: one SGD step under MirroredStrategy over 2
logical CPUs vs one step on one device, same global batch and weights. Prints one JSON line.

Logical devices must be configured before TensorFlow initialises them, hence a fresh process.
"""

import json
import sys

import tensorflow as tf

import tf_ccl4rec  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from tf_ccl4rec import features as F  # noqa: E402
from tf_ccl4rec import model_registry  # noqa: E402
from tf_ccl4rec.config import CCL4RecConfig  # noqa: E402
from tf_ccl4rec.distribution import choose_strategy  # noqa: E402

# L2 large enough that counting the kernel L2 twice (or the embedding L2 half) moves the weights
# far more than float error; CE only, so the step has no random sampling.
CONFIG = CCL4RecConfig(
    vocab_size=20, embedding_dim=4, max_history=5, mlp_units=(4,), num_substitutes=3, l2=0.5,
    use_ccl=False, use_ccl_pos=False, use_ccl_neg=False, use_ce_pos=False, use_ce_neg=False,
    use_cui=False,
)  # fmt: skip


def batch():
    rng = np.random.default_rng(0)
    n = 64
    return {
        F.MODEL_USER: rng.integers(1, 5, n).astype(np.int64),
        F.MODEL_CLICK_HISTORY: rng.integers(0, 21, (n, 5)).astype(np.int64),
        F.MODEL_NONCLICK_HISTORY: rng.integers(0, 21, (n, 5)).astype(np.int64),
        F.MODEL_TARGET: rng.integers(1, 21, n).astype(np.int64),
        F.MODEL_LABEL: (rng.random(n) < 0.5).astype(np.float32),
    }


def one_step(model_type, strategy, initial):
    data = batch()
    with strategy.scope():
        model = model_registry.build_model(model_type, CONFIG.to_dict())
        model(data)
        if initial is not None:
            model.set_weights(initial)
        initial = model.get_weights()
        before = trainable(model)
        model.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    model.fit(tf.data.Dataset.from_tensor_slices(data).batch(64), epochs=1, verbose=0)
    return initial, before, trainable(model), float(sum(tf.reduce_sum(x) for x in model.losses))


def trainable(model):
    """The trainable weights in order (get_weights also holds the metrics' counters)."""
    return [v.numpy() for v in model.trainable_variables]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def main(model_types):
    result = {}
    for model_type in model_types:
        initial, before, single, kernel_l2 = one_step(
            model_type, tf.distribute.get_strategy(), None
        )
        _, _, mirrored, _ = one_step(model_type, choose_strategy("mirrored"), initial)
        result[model_type] = {
            "kernel_l2": kernel_l2,
            "step": max_diff(single, before),
            "max_abs_diff": max_diff(single, mirrored),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:] or ["ccl4rec", "ncf"])
