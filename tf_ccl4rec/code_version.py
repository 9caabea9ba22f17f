"""A short hash of the source files that decide what a model trains and measures.

Keys the experiment run cache (`experiments/runs.py`) and goes into the Trainer's custom_config
(`pipeline/configs.py`), so TFX's cache and ours never serve a model trained by older code: TFX
fingerprints a `module_file`, not a run_fn given by module path. No TensorFlow import.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os

# Source files (relative to the tf_ccl4rec package) whose code decides what a run trains and what
# it measures: the models and their layers and losses, augmentation, batching, the config, the
# Trainer and its settings, the export, preprocessing, the metrics and the experiment runner.
CODE_FILES = (
    "config.py",
    "features.py",
    "model.py",
    "augmentation.py",
    "losses.py",
    "batching.py",
    "trainer.py",
    "tuning.py",  # the Tuner's trials (its custom_config carries this hash too)
    "layers/*.py",
    "baselines/*.py",
    "metrics/*.py",
    "experiments/runs.py",
    "experiments/metrics.py",
    "training_settings.py",
    "model_registry.py",
    "export.py",
    "preprocessing.py",
)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.cache
def code_version(package_dir: str = _PACKAGE_DIR) -> str:
    """A short hash of the `CODE_FILES` under `package_dir` (their paths and contents)."""
    digest = hashlib.sha1()
    for pattern in CODE_FILES:
        paths = sorted(glob.glob(os.path.join(package_dir, pattern)))
        if not paths:
            raise FileNotFoundError(
                f"no {pattern} in {package_dir} (code_version.CODE_FILES is stale)"
            )
        for path in paths:
            digest.update(os.path.relpath(path, package_dir).replace(os.sep, "/").encode())
            with open(path, "rb") as handle:
                digest.update(hashlib.sha1(handle.read()).digest())
    return digest.hexdigest()[:12]
