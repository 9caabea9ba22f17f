"""Versions of one served model: loading SavedModels and keeping the policy's versions loaded.

Versions are the integer directories under the model directory (``serving.layout``); the version
policy (``latest:N``, ``specific:3,4``, ``all``) picks which to serve. ``ModelManager`` polls the
directory in the background, loads new versions and swaps the served set atomically; in-flight
requests finish on the version they started with. A version is loaded only once its files stop
changing between two polls, so a copy still being written is never loaded. A version that fails
to load is refused (logged, ``GetModelStatus`` shows END with the error) and the previous one keeps
serving; it is retried only if its files change.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2  # noqa: E402

from serving import layout  # noqa: E402
from serving import model_config as mc  # noqa: E402
from serving import signatures as sig  # noqa: E402
from serving.errors import ServingError  # noqa: E402

log = logging.getLogger("ccl4rec.serve")

_INIT_OP_KEY = "__saved_model_init_op"  # not a signature; TF Serving hides it too
_State = get_model_status_pb2.ModelVersionStatus.State


@dataclass
class LoadedVersion:
    """One loaded SavedModel version: the TF object, its signature functions and SignatureDefs."""

    version: int
    path: str
    model: object
    functions: dict
    signature_defs: dict


@dataclass
class _VersionStatus:
    state: int
    error_code: int = 0  # tensorflow.error.Code; 0 = OK
    error_message: str = ""


def _load_error_code(err: Exception) -> int:
    """tensorflow.error.Code of a load failure: TF's own code, DATA_LOSS for an unparsable proto."""
    if isinstance(err, tf.errors.OpError):
        return err.error_code
    if isinstance(err, DecodeError):
        return tf.errors.DATA_LOSS
    return tf.errors.UNKNOWN


def _custom_op_prefixes(proto) -> set[str]:
    """Namespaces ("Scann", ...) of the namespaced custom ops the SavedModel's graph uses."""
    graph = proto.meta_graphs[0].graph_def
    nodes = list(graph.node)
    for function in graph.library.function:
        nodes.extend(function.node_def)
    return {node.op.split(">")[0] for node in nodes if ">" in node.op}


def load_custom_ops(proto) -> None:
    """Registers the custom ops the SavedModel needs before it is loaded.

    A two-stage export with `retrieval_index="scann"` runs ScaNN's ops (`Scann>...`), which live
    in the scann package's shared library; importing scann registers them. Stock
    tensorflow_model_server has no such ops and cannot serve that export.
    """
    if "Scann" not in _custom_op_prefixes(proto):
        return
    try:
        import scann  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "this SavedModel uses ScaNN's ops (retrieval_index='scann'): install the scann "
            "package (pip install '.[scann]') in the server's environment"
        ) from err


def load_version(path: str, version: int) -> LoadedVersion:
    """Loads one SavedModel version (raises whatever TensorFlow raises on a bad model)."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, layout.SAVED_MODEL_FILE), "rb") as f:
        proto.ParseFromString(f.read())
    if not proto.meta_graphs:
        raise ValueError(f"{path}: saved_model.pb holds no MetaGraph")
    signature_defs = {
        k: v for k, v in proto.meta_graphs[0].signature_def.items() if k != _INIT_OP_KEY
    }
    load_custom_ops(proto)
    model = tf.saved_model.load(path)
    return LoadedVersion(version, path, model, dict(model.signatures), signature_defs)


@dataclass
class ModelManager:
    """Keeps the policy's versions of one model loaded, polling the model directory.

    Args:
      model_name: the name requests use in ``ModelSpec.name``.
      model_path: ``<base>/<model_name>``, holding the integer version directories.
      policy: which versions to serve.
      labels: ``{label: version}`` (e.g. stable/canary), resolvable in every request.
      poll_seconds: seconds between looks at ``model_path``.
    """

    model_name: str
    model_path: str
    policy: mc.VersionPolicy = field(default_factory=mc.VersionPolicy)
    labels: dict = field(default_factory=dict)
    poll_seconds: float = 2.0

    def __post_init__(self):
        self._serving: dict[int, LoadedVersion] = {}  # replaced as a whole, never mutated
        self._status: dict[int, _VersionStatus] = {}
        self._status_lock = threading.Lock()
        self._seen: dict[int, tuple] = {}  # version -> fingerprint at the previous poll
        self._ignored: set[str] = set()  # directory names already warned about
        self._failed: dict[int, tuple] = {}  # version -> fingerprint that failed to load
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- loading ------------------------------------------------------------------------------
    def _set_status(self, version: int, state: int, code: int = 0, message: str = ""):
        with self._status_lock:
            self._status[version] = _VersionStatus(state, code, message)

    def _settled_versions(self) -> list[int]:
        settled = []
        versions, ignored = layout.scan(self.model_path)
        for name in ignored:
            if name not in self._ignored:  # once per name, not on every poll
                self._ignored.add(name)
                log.warning(
                    "ignoring %s: not a version directory (a version is named by a non-negative "
                    "integer without leading zeros, e.g. 3)",
                    os.path.join(self.model_path, name),
                )
        for version in versions:
            if version in self._serving:
                settled.append(version)
                continue
            fp = layout.fingerprint(layout.version_dir(self.model_path, version))
            if self._failed.get(version) == fp:
                continue  # refused before and unchanged since
            if self._seen.get(version) == fp:
                settled.append(version)
            self._seen[version] = fp
        return settled

    def poll_once(self) -> None:
        """One look at the model directory: load what the policy wants, swap, unload the rest."""
        eligible = self._settled_versions()
        while True:
            wanted = self.policy.select(eligible)
            new = [v for v in wanted if v not in self._serving]
            if not new:
                break
            loaded = dict(self._serving)
            for version in new:
                path = layout.version_dir(self.model_path, version)
                self._set_status(version, _State.LOADING)
                log.info("loading %s version %d from %s", self.model_name, version, path)
                try:
                    loaded[version] = load_version(path, version)
                except Exception as err:  # any load failure refuses the version, never the server
                    self._failed[version] = self._seen.get(version, ())
                    eligible.remove(version)
                    message = f"{type(err).__name__}: {err}".strip()[:2000]
                    self._set_status(version, _State.END, _load_error_code(err), message)
                    log.error(
                        "refused %s version %d (failed to load, keeping %s): %s",
                        self.model_name,
                        version,
                        sorted(self._serving) or "nothing",
                        message,
                    )
                    continue
                self._set_status(version, _State.AVAILABLE)
                problems = sig.contract_violations(loaded[version].signature_defs)
                if problems:  # served anyway (TF Serving would), but the operator should know
                    log.warning(
                        "%s version %d breaks the signature contract: %s",
                        self.model_name,
                        version,
                        "; ".join(problems),
                    )
            self._swap({v: loaded[v] for v in loaded if v in self.policy.select(eligible)})
        # Versions that left the policy (or the disk) are unloaded.
        keep = set(self.policy.select(eligible))
        if set(self._serving) - keep:
            self._swap({v: lv for v, lv in self._serving.items() if v in keep})

    def _swap(self, serving: dict[int, LoadedVersion]) -> None:
        before = set(self._serving)
        self._serving = serving  # one reference assignment: requests see old or new, never half
        for version in before - set(serving):
            self._set_status(version, _State.END)
            log.info("unloaded %s version %d", self.model_name, version)
        if set(serving) != before:
            log.info("serving %s versions %s", self.model_name, sorted(serving))

    def start(self) -> None:
        """Loads the initial versions (waiting for them to settle) and starts the poller."""
        self.poll_once()
        if not self._serving and self._seen:
            self._stop.wait(min(self.poll_seconds, 0.5))  # second look so the versions can settle
            self.poll_once()
        self._thread = threading.Thread(target=self._poll_loop, name="version-poller", daemon=True)
        self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # a bad poll (e.g. a vanished dir) must not stop future polls
                log.exception("version poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- request-time lookups -----------------------------------------------------------------
    @property
    def serving_versions(self) -> list[int]:
        return sorted(self._serving)

    def resolve(self, spec) -> LoadedVersion:
        """The loaded version a ``ModelSpec`` asks for (latest when none is given).

        Raises:
          ServingError: NOT_FOUND (unknown model or version), INVALID_ARGUMENT (unknown label).
        """
        serving = self._serving
        if spec.name != self.model_name:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})"
            )
        version = self._requested_version(spec)
        if version is None:
            if not serving:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Latest({spec.name})",
                )
            return serving[max(serving)]
        if version not in serving:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({spec.name}, {version})",
            )
        return serving[version]

    def _requested_version(self, spec) -> int | None:
        """The version a ModelSpec names (by label or number), or None for "latest"."""
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            if spec.version_label not in self.labels:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {spec.version_label}",
                )
            return self.labels[spec.version_label]
        if choice == "version":
            return spec.version.value
        return None

    def status(self, spec) -> list[tuple[int, _VersionStatus]]:
        """(version, status) pairs for GetModelStatus, newest first.

        Raises:
          ServingError: NOT_FOUND for an unknown model or a version never seen.
        """
        if spec.name != self.model_name:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        with self._status_lock:
            statuses = dict(self._status)
        wanted = self._requested_version(spec)
        if wanted is None:
            if not statuses:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find any versions of model {spec.name}",
                )
            return sorted(statuses.items(), reverse=True)
        if wanted not in statuses:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find version {wanted} of model {spec.name}",
            )
        return [(wanted, statuses[wanted])]
