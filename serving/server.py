"""A TF Serving-protocol gRPC server for the pushed CCL4Rec SavedModels (``ccl4rec serve``).

Production runs ``tensorflow_model_server`` on the push directory; this server speaks the same
protocol (tensorflow-serving-api's generated ``PredictionService`` and ``ModelService``) for
development, tests and small deployments. Hand-written because TF Serving is a C++ binary that
this machine does not have; everything else (protos, tensor conversion, SavedModel loading) is
TensorFlow's.

Behaviour, mirroring TF Serving:

* Versions are the integer directories under the model directory (``serving.layout``); the
  version policy (``latest:N``, ``specific:3,4``, ``all``) picks which to serve. A poller loads new
  versions in the background and swaps the served set atomically; in-flight requests finish on
  the version they started with. A version is loaded only once its files stop changing between
  two polls, so a copy still being written is never loaded. A version that fails to load is
  refused (logged, ``GetModelStatus`` shows END with the error) and the previous one keeps serving;
  it is retried only if its files change.
* Errors: NOT_FOUND for an unknown model or version; INVALID_ARGUMENT for unknown version labels,
  missing/extra inputs, wrong dtypes or shapes, batches over ``--max-batch``, unknown output
  aliases and errors the model raises on bad values; FAILED_PRECONDITION for an unknown signature
  in Predict (TF Serving's code for it); UNIMPLEMENTED for Regress, MultiInference and
  HandleReloadConfigRequest. A failing request never takes the server down.
* Requests run concurrently on a thread pool of ``--workers`` threads; SIGTERM/SIGINT stop the
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
from dataclasses import dataclass, field

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import layout  # noqa: E402
from serving import model_config as mc  # noqa: E402
from serving import signatures as sig  # noqa: E402

log = logging.getLogger("ccl4rec.serve")

_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
_INIT_OP_KEY = "__saved_model_init_op"  # not a signature; TF Serving hides it too
_State = get_model_status_pb2.ModelVersionStatus.State


class ServingError(Exception):
    """A request failure with the gRPC status code TF Serving would return."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


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
        self._failed: dict[int, tuple] = {}  # version -> fingerprint that failed to load
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- loading ------------------------------------------------------------------------------
    def _set_status(self, version: int, state: int, code: int = 0, message: str = ""):
        with self._status_lock:
            self._status[version] = _VersionStatus(state, code, message)

    def _settled_versions(self) -> list[int]:
        settled = []
        for version in layout.list_versions(self.model_path):
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


# --- request execution ------------------------------------------------------------------------
def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _call(fn, kwargs) -> dict:
    try:
        return fn(**kwargs)
    except tf.errors.OpError as err:  # bad values (e.g. k > vocabulary) come back as TF errors
        code = _GRPC_CODES.get(err.error_code, grpc.StatusCode.UNKNOWN)
        raise ServingError(code, err.message) from err


def run_predict(loaded: LoadedVersion, request, max_batch: int):
    """Runs a ``PredictRequest`` on one loaded version (TF Serving's Predict semantics).

    Raises:
      ServingError: with TF Serving's status code for every bad request.
    """
    name = request.model_spec.signature_name or sig.SERVING_DEFAULT
    fn = loaded.functions.get(name)
    if fn is None:
        raise ServingError(
            grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.'
        )
    specs = fn.structured_input_signature[1]
    sent, expected = set(request.inputs), set(specs)
    if sent != expected:
        raise _invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    kwargs = {}
    for alias, proto in request.inputs.items():
        spec = specs[alias]
        if proto.dtype != spec.dtype.as_datatype_enum:
            got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "an invalid dtype"
            raise _invalid(f"Expects arg[{alias}] to be {spec.dtype.name} but {got} is provided")
        try:
            array = tf.make_ndarray(proto)
        except Exception as err:  # malformed TensorProto (e.g. content size != shape)
            raise _invalid(f"input {alias!r} is not a valid TensorProto: {err}") from err
        if not spec.shape.is_compatible_with(array.shape):
            raise _invalid(
                f"input {alias!r} has shape {list(array.shape)}, the signature expects "
                f"{spec.shape.as_list() if spec.shape.rank is not None else 'any'}"
            )
        if array.ndim >= 1 and array.shape[0] > max_batch:
            raise _invalid(
                f"Task size {array.shape[0]} is larger than maximum input batch size {max_batch}"
            )
        kwargs[alias] = tf.constant(array, dtype=spec.dtype)
    outputs = fn.structured_outputs
    aliases = list(request.output_filter) or list(outputs)
    for alias in aliases:
        if alias not in outputs:
            raise _invalid(
                f"output tensor alias not found in signature: {alias} Outputs expected to be "
                f"in the set {{{','.join(sorted(outputs))}}}."
            )
    if len(set(aliases)) != len(aliases):
        raise _invalid(f"duplicate output tensor alias in {aliases}")
    result = _call(fn, kwargs)
    response = predict_pb2.PredictResponse()
    sig.set_model_spec(response.model_spec, request.model_spec.name, name, loaded.version)
    for alias in aliases:
        response.outputs[alias].CopyFrom(tf.make_tensor_proto(result[alias].numpy()))
    return response


def _examples(request_input) -> list:
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return list(request_input.example_list.examples)
    if kind == "example_list_with_context":
        ctx = request_input.example_list_with_context
        merged = []
        for example in ctx.examples:
            e = type(example)()
            e.CopyFrom(ctx.context)
            e.MergeFrom(example)  # the example's own features win, like TF Serving's concat
            merged.append(e)
        return merged
    return []


def run_classify(loaded: LoadedVersion, request, max_batch: int):
    """Runs a ``ClassificationRequest`` (TF Serving's Classify semantics).

    The signature must take one string tensor (the serialized ``tf.Example``s) and output
    ``scores`` float ``[batch, num_classes]`` and/or ``classes`` string ``[batch, num_classes]``.

    Raises:
      ServingError: INVALID_ARGUMENT for an unknown signature, a signature of the wrong form or
        an empty / oversize input.
    """
    name = request.model_spec.signature_name or sig.SERVING_DEFAULT
    fn = loaded.functions.get(name)
    if fn is None:
        raise _invalid(f"No signature was found with the name: {name}")
    specs = fn.structured_input_signature[1]
    if len(specs) != 1:
        raise _invalid("Expected one input Tensor.")
    ((alias, spec),) = specs.items()
    if spec.dtype != tf.string:
        raise _invalid(f"Classify needs a string input; signature {name!r} takes {spec.dtype.name}")
    outputs = fn.structured_outputs
    if sig.SCORES not in outputs and sig.CLASSES not in outputs:
        raise _invalid(
            f"Expected classification signature outputs to contain at least one of "
            f"{{'{sig.CLASSES}', '{sig.SCORES}'}}; {name!r} has {sorted(outputs)}."
        )
    examples = _examples(request.input)
    if not examples:
        raise _invalid("Input is empty.")
    if len(examples) > max_batch:
        raise _invalid(
            f"Task size {len(examples)} is larger than maximum input batch size {max_batch}"
        )
    serialized = tf.constant([e.SerializeToString() for e in examples])
    result = _call(fn, {alias: serialized})
    batch = len(examples)
    scores = result[sig.SCORES].numpy() if sig.SCORES in result else None
    classes = result[sig.CLASSES].numpy() if sig.CLASSES in result else None
    for tensor, what in ((scores, "scores"), (classes, "classes")):
        if tensor is not None and (tensor.ndim != 2 or tensor.shape[0] != batch):
            raise _invalid(
                f"Expected {what} Tensor shape: [batch_size num_classes] but got "
                f"{list(tensor.shape)} for batch_size {batch}"
            )
    if scores is not None and classes is not None and scores.shape != classes.shape:
        raise _invalid(f"scores {scores.shape} and classes {classes.shape} differ in shape")
    response = classification_pb2.ClassificationResponse()
    sig.set_model_spec(response.model_spec, request.model_spec.name, name, loaded.version)
    num_classes = (scores if scores is not None else classes).shape[1]
    for i in range(batch):
        classification = response.result.classifications.add()
        for j in range(num_classes):
            c = classification.classes.add()
            if scores is not None:
                c.score = float(scores[i, j])
            if classes is not None:
                c.label = classes[i, j].decode("utf-8", "replace")
    return response


def run_metadata(loaded: LoadedVersion, request):
    """Answers ``GetModelMetadata`` (only ``signature_def`` is supported, as in TF Serving)."""
    if not request.metadata_field:
        raise _invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for f in request.metadata_field:
        if f != "signature_def":
            raise _invalid(f"Metadata field {f} is not supported")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    sig.set_model_spec(response.model_spec, request.model_spec.name, version=loaded.version)
    sdm = get_model_metadata_pb2.SignatureDefMap()
    for key, sdef in loaded.signature_defs.items():
        sdm.signature_def[key].CopyFrom(sdef)
    response.metadata["signature_def"].Pack(sdm)
    return response


# --- gRPC services ----------------------------------------------------------------------------
def _answer(context, method: str, compute):
    """Runs ``compute``; turns ServingError / unexpected errors into gRPC statuses."""
    try:
        return compute()
    except ServingError as err:
        code, message = err.code, err.message
    except Exception as err:  # never crash the server on one request
        log.exception("%s failed unexpectedly", method)
        code, message = grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}"
    context.abort(code, message)  # raises; outside the try so it is not caught above


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's PredictionService over a ``ModelManager``."""

    def __init__(self, manager: ModelManager, max_batch: int):
        self.manager = manager
        self.max_batch = max_batch

    def Predict(self, request, context):
        return _answer(
            context,
            "Predict",
            lambda: run_predict(self.manager.resolve(request.model_spec), request, self.max_batch),
        )

    def Classify(self, request, context):
        return _answer(
            context,
            "Classify",
            lambda: run_classify(self.manager.resolve(request.model_spec), request, self.max_batch),
        )

    def GetModelMetadata(self, request, context):
        return _answer(
            context,
            "GetModelMetadata",
            lambda: run_metadata(self.manager.resolve(request.model_spec), request),
        )

    def Regress(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not served: no regression head")

    def MultiInference(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not implemented")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's ModelService: GetModelStatus (config reload is not supported)."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        def compute():
            response = get_model_status_pb2.GetModelStatusResponse()
            for version, st in self.manager.status(request.model_spec):
                mvs = response.model_version_status.add()
                mvs.version = version
                mvs.state = st.state
                mvs.status.error_code = st.error_code
                mvs.status.error_message = st.error_message
            return response

        return _answer(context, "GetModelStatus", compute)

    def HandleReloadConfigRequest(self, request, context):
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "config reload is not supported; restart the server"
        )


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
      max_batch: largest batch a request may carry.
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
        max_batch: int = 1024,
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
        if max_batch < 1 or workers < 1 or poll_seconds <= 0:
            raise ValueError("max_batch and workers must be >= 1 and poll_seconds > 0")
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
        m.start()
        if not m.serving_versions:
            log.warning("no servable version of %s in %s yet; polling", m.model_name, m.model_path)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rpc"),
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),  # a port already in use must fail, not be shared
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(m, self.max_batch), self._server
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
    parser.add_argument("--max-batch", type=int, default=1024)
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
    while not done.wait(3600):
        pass
    started = time.monotonic()
    server.stop(args.grace_seconds)
    log.info("stopped cleanly in %.2fs", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
