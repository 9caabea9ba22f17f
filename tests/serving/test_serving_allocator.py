"""The server process allocates tensors with TF's plain CPU allocator, not oneDNN's pool.

oneDNN's pool (``MklCPUAllocator``) keeps the peak of every large request: server RSS grew
+10 to +13 % over 20 requests at the limits (scripts/serve_soak.py); with the plain allocator it
stays flat (docs/serving.md, Request limits).
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE = """
import serving.server  # what `ccl4rec serve` and `python -m serving.server` import first
from serving import memory
print(memory.onednn_pool_active(), flush=True)
"""


def _pool_active(**env_overrides) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(env_overrides, PYTHONPATH=os.pathsep.join([REPO, env.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_the_server_process_does_not_use_the_onednn_pool():
    assert _pool_active() == "False"


def test_an_explicit_setting_wins():
    # The probe can tell the two apart: with oneDNN asked for, the pool is there (x86 Linux).
    assert _pool_active(TF_ENABLE_ONEDNN_OPTS="1") == "True"
