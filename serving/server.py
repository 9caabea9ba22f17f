"""A TF Serving-protocol gRPC server for the pushed CCL4Rec SavedModels (``ccl4rec serve``).

Production runs ``tensorflow_model_server`` on the push directory; this server speaks the same
protocol (tensorflow-serving-api's generated ``PredictionService`` and ``ModelService``) for
development, tests and small deployments. Hand-written because TF Serving is a C++ binary that
this machine does not have; everything else (protos, tensor conversion, SavedModel loading) is
TensorFlow's. The parts, one module each:

* ``serving.versions``: loading versions and the version policy (``ModelManager``);
* ``serving.execution``: running Predict / Classify / GetModelMetadata on one version;
* ``serving.services``: the gRPC servicers, turning failures into status codes;
* ``serving.limits`` / ``serving.memory``: per-request limits, the in-flight byte budget;
* this module: ``ModelServer`` (binds the port, owns the thread pool) and the CLI.

Requests run concurrently on a thread pool of ``--workers`` threads; SIGTERM/SIGINT stop the
server cleanly (in-flight requests get a grace period).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

from serving import memory  # noqa: E402 (no TensorFlow: it must set the allocator first)

memory.use_plain_cpu_allocator()

import grpc  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving import layout  # noqa: E402
from serving import limits as limits_mod  # noqa: E402
from serving import model_config as mc  # noqa: E402
from serving.errors import ServingError  # noqa: E402
from serving.execution import run_classify, run_metadata, run_predict  # noqa: E402
from serving.limits import RequestLimits  # noqa: E402
from serving.services import ModelService, PredictionService  # noqa: E402
from serving.versions import LoadedVersion, ModelManager, load_version  # noqa: E402

__all__ = [
    "LoadedVersion",
    "ModelManager",
    "ModelServer",
    "ModelService",
    "PredictionService",
    "RequestLimits",
    "ServingError",
    "add_arguments",
    "load_version",
    "resolve_model_path",
    "run",
    "run_classify",
    "run_metadata",
    "run_predict",
]

log = logging.getLogger("ccl4rec.serve")


def resolve_model_path(base_path: str, model_name: str) -> str:
    """``base_path/model_name``, or ``base_path`` itself when it already holds version dirs."""
    base_path = os.path.abspath(base_path)
    if os.path.basename(base_path) == model_name or layout.list_versions(base_path):
        return base_path
    return layout.model_dir(base_path, model_name)


class ModelServer:
    """The gRPC server, usable in-process (tests, benchmarks) or via ``ccl4rec serve``.

    Args:
      model_base_path: the push base ``<base>`` (versions under ``<base>/<model_name>/``), or the
        model directory itself if it directly holds version dirs. Ignored with a config file.
      model_name: the served model name.
      port: TCP port; 0 picks a free one (see ``port`` after ``start``).
      host: interface to bind.
      policy: version policy (``latest:1``, ``specific:3,4``, ``all``) or a ``VersionPolicy``.
      labels: ``{label: version}``.
      poll_seconds: seconds between version polls.
      max_batch: users (batch rows / tf.Examples) one request may carry.
      max_history: ids per user in each history of one request (longer is refused).
      max_candidates: candidate ids per request (``predict``: B * C, ``recommend``: B * k).
      max_message_bytes: the largest request message gRPC accepts.
      max_inflight_bytes: request bytes executing at once (more wait: ``serving.memory``).
      workers: request threads.
      model_config_file: a ``models.config`` ModelServerConfig; gives name, path, policy, labels.
    """

    def __init__(
        self,
        model_base_path: str | None = None,
        model_name: str = mc.DEFAULT_MODEL_NAME,
        port: int = 8500,
        host: str = "127.0.0.1",
        policy: mc.VersionPolicy | str = "latest:1",
        labels: dict | None = None,
        poll_seconds: float = 2.0,
        max_batch: int = limits_mod.DEFAULT_MAX_BATCH,
        max_history: int = limits_mod.DEFAULT_MAX_HISTORY,
        max_candidates: int = limits_mod.DEFAULT_MAX_CANDIDATES,
        max_message_bytes: int = limits_mod.DEFAULT_MAX_MESSAGE_BYTES,
        max_inflight_bytes: int = limits_mod.DEFAULT_MAX_INFLIGHT_BYTES,
        workers: int = 8,
        model_config_file: str | None = None,
    ):
        if model_config_file:
            model_name, model_path, policy, labels = mc.single_model(
                mc.read_config(model_config_file)
            )
        elif model_base_path:
            model_path = resolve_model_path(model_base_path, model_name)
        else:
            raise ValueError("give model_base_path or model_config_file")
        if isinstance(policy, str):
            policy = mc.parse_version_policy(policy)
        if workers < 1 or poll_seconds <= 0:
            raise ValueError("workers must be >= 1 and poll_seconds > 0")
        self.limits = limits_mod.RequestLimits(
            max_batch, max_history, max_candidates, max_message_bytes, max_inflight_bytes
        )
        self.manager = ModelManager(
            model_name, model_path, policy, dict(labels or {}), poll_seconds
        )
        self.host, self._port, self.max_batch, self.workers = host, port, max_batch, workers
        self._server: grpc.Server | None = None

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> ModelServer:
        """Loads the initial versions, then starts answering on ``host:port``."""
        m = self.manager
        log.info(
            "model %s at %s, policy %s, labels %s", m.model_name, m.model_path, m.policy, m.labels
        )
        memory.fix_mmap_threshold()
        if memory.onednn_pool_active():
            log.warning(
                "TensorFlow allocates through oneDNN's memory pool (TF_ENABLE_ONEDNN_OPTS is "
                "not 0, or TF was loaded before serving.server): RSS will keep the peak of the "
                "largest concurrent requests (docs/serving.md, Request limits)"
            )
        m.start()
        if not m.serving_versions:
            log.warning("no servable version of %s in %s yet; polling", m.model_name, m.model_path)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rpc"),
            options=[
                ("grpc.max_receive_message_length", self.limits.max_message_bytes),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),  # a port already in use must fail, not be shared
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(m, self.limits), self._server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(m), self._server)
        bound = self._server.add_insecure_port(f"{self.host}:{self._port}")
        if bound == 0:
            raise OSError(f"could not bind {self.host}:{self._port}")
        self._port = bound
        self._server.start()
        log.info(
            "serving %s versions %s on %s:%d", m.model_name, m.serving_versions, self.host, bound
        )
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Stops accepting requests, lets in-flight ones finish within ``grace`` s, stops polling."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        self.manager.stop()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``ccl4rec serve`` flags."""
    parser.add_argument(
        "--model-base-path",
        help="push base dir: versions are read from DIR/<model-name>/<version>/ "
        "(or DIR/<version>/ when DIR itself holds version dirs)",
    )
    parser.add_argument("--model-name", default=mc.DEFAULT_MODEL_NAME)
    parser.add_argument(
        "--model-config-file",
        help="models.config (ModelServerConfig text proto); overrides name, path, policy, labels",
    )
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--version-policy", default="latest:1", help="latest:N | specific:3,4 | all"
    )
    parser.add_argument("--version-labels", default="", help="e.g. stable=3,canary=4")
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    limits = parser.add_argument_group(
        "request limits", "a request over a limit is refused (docs/serving.md, Request limits)"
    )
    limits.add_argument(
        "--max-batch",
        type=int,
        default=limits_mod.DEFAULT_MAX_BATCH,
        help="users (batch rows or tf.Examples) per request (default %(default)s)",
    )
    limits.add_argument(
        "--max-history",
        type=int,
        default=limits_mod.DEFAULT_MAX_HISTORY,
        help="ids per user in click_history and in nonclick_history; longer histories are "
        "refused, not truncated (default %(default)s)",
    )
    limits.add_argument(
        "--max-candidates",
        type=int,
        default=limits_mod.DEFAULT_MAX_CANDIDATES,
        help="candidate ids per request: predict's users x candidates, recommend's users x k "
        "(default %(default)s)",
    )
    limits.add_argument(
        "--max-message-bytes",
        type=int,
        default=limits_mod.DEFAULT_MAX_MESSAGE_BYTES,
        help="largest request message (grpc.max_receive_message_length; default %(default)s)",
    )
    limits.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=limits_mod.DEFAULT_MAX_INFLIGHT_BYTES,
        help="request bytes executing at once; more requests wait their turn, so concurrent "
        "large requests do not stack up memory (default %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--grace-seconds", type=float, default=5.0)


def run(args: argparse.Namespace) -> int:
    """Runs the server until SIGTERM/SIGINT; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not args.model_base_path and not args.model_config_file:
        print("ccl4rec serve: give --model-base-path or --model-config-file", file=sys.stderr)
        return 2
    try:
        server = ModelServer(
            model_base_path=args.model_base_path,
            model_name=args.model_name,
            port=args.port,
            host=args.host,
            policy=args.version_policy,
            labels=mc.parse_labels(args.version_labels),
            poll_seconds=args.poll_seconds,
            max_batch=args.max_batch,
            max_history=args.max_history,
            max_candidates=args.max_candidates,
            max_message_bytes=args.max_message_bytes,
            max_inflight_bytes=args.max_inflight_bytes,
            workers=args.workers,
            model_config_file=args.model_config_file,
        )
    except (ValueError, OSError) as err:
        print(f"ccl4rec serve: {err}", file=sys.stderr)
        return 2
    done = threading.Event()

    def _on_signal(signum, _frame):
        log.info("received %s, shutting down", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        server.start()
    except OSError as err:
        print(f"ccl4rec serve: {err}", file=sys.stderr)
        server.stop(0)
        return 1
    print(f"READY {args.host}:{server.port}", flush=True)  # a line scripts can wait for
    # Short waits: a process-directed SIGTERM may land on a gRPC or TensorFlow thread, which does
    # not interrupt a main thread blocked in one long lock wait, so the Python handler (always run
    # by the main thread) would wait for it; now it runs within a second.
    while not done.wait(1.0):
        pass
    started = time.monotonic()
    server.stop(args.grace_seconds)
    log.info("stopped cleanly in %.2fs", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
