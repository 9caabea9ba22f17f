"""Process environment the stack needs before TensorFlow is imported.

TFRS 0.7.7 refuses Keras 3, so every process (CLI, tests, TFX executors, Beam workers)
must select tf-keras through ``TF_USE_LEGACY_KERAS=1`` before ``import tensorflow``.
Importing any of our packages runs this first.

TF's C++ logging is read from ``TF_CPP_MIN_LOG_LEVEL`` once, when TensorFlow loads, so it is set
here too; child processes (Beam workers, the serving server, bench workloads) inherit it.
"""

import os
import sys

# 3 = FATAL only. Level 2 still lets through the ERROR lines every TF start prints on this stack
# ("Unable to register cuFFT/cuDNN/cuBLAS factory: ... already been registered", a duplicate CUDA
# plugin registration, harmless on CPU and GPU alike). TF's real errors reach Python as
# exceptions, so they still show. An explicit TF_CPP_MIN_LOG_LEVEL in the environment wins.
TF_CPP_MIN_LOG_LEVEL = "3"


def quiet_import_warnings() -> None:
    """Hides warnings that third-party packages print at import time and users cannot act on."""
    import warnings

    # google-cloud packages (via apache-beam[gcp]) warn about Python 3.10 on every import.
    warnings.filterwarnings("ignore", message="You are using a non-supported Python version")
    warnings.filterwarnings("ignore", message="Support for google-cloud-storage < 3.0.0")


def ensure_legacy_keras() -> None:
    """Sets TF_USE_LEGACY_KERAS=1, failing loudly if TensorFlow was imported without it."""
    # TF's C++ log lines drown progress output (see TF_CPP_MIN_LOG_LEVEL above).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_CPP_MIN_LOG_LEVEL)
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        return
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf = sys.modules.get("tensorflow")
    if tf is not None and not getattr(tf.keras, "__name__", "").startswith("tf_keras"):
        raise RuntimeError(
            "TensorFlow was imported before tf_ccl4rec with Keras 3 selected. "
            "Set TF_USE_LEGACY_KERAS=1 in the environment (or import tf_ccl4rec first)."
        )
