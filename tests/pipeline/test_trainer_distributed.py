"""The Trainer's distributed path without a GPU: MirroredStrategy over two logical CPU devices."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_run_fn_under_mirrored_strategy_exports_a_model_that_predicts_like_one_device(
    tmp_path, serving_transform_dir
):
    script = os.path.join(os.path.dirname(__file__), "distributed_trainer_script.py")
    out = subprocess.run(
        [sys.executable, script, str(tmp_path), serving_transform_dir],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "MirroredStrategy over 2 devices" in out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "MirroredStrategy" and result["replicas"] == 2
    assert result["trained_steps"] == 20
    assert result["max_abs_diff"] < 1e-5
