"""Server harness: our ``serving.server`` and, when on PATH, the real ``tensorflow_model_server``.

Both run as subprocesses on a free loopback port and are driven over real gRPC.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKENDS = ("ccl4rec", "tensorflow_model_server")
TF_SERVING_BIN = shutil.which("tensorflow_model_server")
START_TIMEOUT_S = 180  # startup imports TensorFlow on a shared 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server subprocess: ``target``, ``backend``, ``log()``, ``terminate()``."""

    def __init__(self, backend, model_path, config_file, tmp_path, max_batch=8, poll_seconds=0.5):
        self.backend = backend
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(tmp_path, f"{backend}-{self.port}.log")
        if backend == "ccl4rec":
            cmd = [
                sys.executable,
                "-m",
                "serving.server",
                "--model-config-file",
                config_file,
                "--port",
                str(self.port),
                "--poll-seconds",
                str(poll_seconds),
                "--max-batch",
                str(max_batch),
                "--workers",
                "8",
            ]
        else:
            cmd = [
                TF_SERVING_BIN,
                f"--port={self.port}",
                f"--model_config_file={config_file}",
                "--file_system_poll_wait_seconds=1",
                "--allow_version_labels_for_unavailable_models=true",
                # default: 5 retries 60 s apart, so a corrupt version would sit in LOADING
                "--max_num_load_retries=0",
            ]
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", PYTHONPATH=REPO)
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in terminate)
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def wait_available(self, client, version=None):
        """Waits (bounded) until ``version`` (or any version) is AVAILABLE; fails with the log."""
        from serving.client import ServingError

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.backend} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                states = {s.version: s.state for s in client.status()}
                if (version is None and "AVAILABLE" in states.values()) or (
                    states.get(version) == "AVAILABLE"
                ):
                    return
            except ServingError:
                pass  # not listening / nothing loaded yet
            time.sleep(0.2)
        pytest.fail(f"{self.backend} never served version {version}:\n{self.log()}")

    def terminate(self, timeout=30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def require_backend(backend):
    if backend == "tensorflow_model_server" and TF_SERVING_BIN is None:
        reason = "tensorflow_model_server not on PATH: real TF Serving parametrization skipped"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
