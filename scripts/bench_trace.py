"""Times the first fit step (the traced train step) of tiny models of a checkout, fresh and warm.

    python scripts/bench_trace.py [CODE_DIR] [--repeats 3]

Runs this interpreter with PYTHONPATH=CODE_DIR (default: this checkout), one fit of one batch
of 8 random rows per model: the first model of each type pays AutoGraph's conversion of the code it
calls (once per process), the later ones only tracing. CCL4Rec has every loss term of Eq 16,
the non-click sequence, the item bias and the retrieval head. Use a quiet machine; compare
checkouts in one sitting.
"""

import argparse
import os
import subprocess
import sys

# The models and rows of tests/model/test_tracing.py, written out here rather than imported:
# the child runs against any checkout, including ones from before that test existed.
CHILD = r"""
import os, statistics, time
import numpy as np
import tensorflow as tf
from tf_ccl4rec import features as F
from tf_ccl4rec.model_registry import build_model

VOCAB, N, B = 40, 6, 8
CONFIG = dict(vocab_size=VOCAB, embedding_dim=8, max_history=N, mlp_units=[8], num_substitutes=20,
              use_nonclick_sequence=True, item_bias=True, retrieval_weight=0.1)
rng = np.random.default_rng(0)
rows = {
    F.MODEL_USER: rng.integers(1, 5, 2 * B).astype(np.int64),
    F.MODEL_CLICK_HISTORY: rng.integers(0, VOCAB + 1, (2 * B, N)).astype(np.int64),
    F.MODEL_NONCLICK_HISTORY: rng.integers(0, VOCAB + 1, (2 * B, N)).astype(np.int64),
    F.MODEL_TARGET: rng.integers(1, VOCAB + 1, 2 * B).astype(np.int64),
    F.MODEL_LABEL: rng.integers(0, 2, 2 * B).astype(np.float32),
}
data = tf.data.Dataset.from_tensor_slices(rows).batch(B).take(1)
tf.get_logger().setLevel("ERROR")  # each new model retraces: that is what is timed
for model_type in ("ccl4rec", "atrank"):
    times = []
    for _ in range(REPEATS):
        tf.keras.utils.set_random_seed(0)
        model = build_model(model_type, CONFIG)
        model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    warm = statistics.median(times[1:]) if len(times) > 1 else float("nan")
    print(f"{model_type:8s} first fit step: first model {times[0]:5.1f} s, later models "
          f"{warm:5.1f} s (median of {len(times) - 1})", flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("code_dir", nargs="?", default=os.path.dirname(os.path.dirname(__file__)))
    parser.add_argument("--repeats", type=int, default=4, help="models per type (>= 2)")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be >= 2 (the first model, then the warm ones)")
    env = dict(
        os.environ,
        PYTHONPATH=os.path.abspath(args.code_dir),
        TF_USE_LEGACY_KERAS="1",
        TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
    )
    print(f"checkout {os.path.abspath(args.code_dir)}, load average {os.getloadavg()[0]:.2f}")
    code = f"REPEATS = {args.repeats}\n" + CHILD
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd="/")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
