"""A small client for the TF Serving gRPC API of a CCL4Rec model (this server or TF Serving).

Example::

    with ServingClient("localhost:8500") as client:
        client.predict([["v1", "v2"]], [["v7", "v9"]])  # -> float32 [1, 2]
        client.recommend([["v1", "v2"]], k=10)  # -> (ids [1, 10], scores [1, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving import signatures as sig  # noqa: E402
from serving.model_config import DEFAULT_MODEL_NAME  # noqa: E402


class ServingError(RuntimeError):
    """A failed call: the gRPC status code, the server's message and what was called.

    Attributes:
      code: the ``grpc.StatusCode``.
      details: the server's message.
      method: the RPC (e.g. "Predict/recommend").
    """

    def __init__(self, method: str, target: str, code: grpc.StatusCode, details: str):
        self.method, self.target, self.code, self.details = method, target, code, details
        super().__init__(f"{method} on {target} failed: {code.name}: {details}")


@dataclass(frozen=True)
class VersionStatus:
    """One version's state as GetModelStatus reports it."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: int
    error_message: str


class ServingClient:
    """Calls the four CCL4Rec signatures and the model status/metadata over gRPC.

    Args:
      target: ``host:port`` of the server.
      model_name: the served model name.
      timeout: per-call deadline in seconds.
      version: pin every call to this version (default: latest).
      version_label: pin every call to this label (e.g. "stable"); excludes ``version``.
    """

    def __init__(
        self,
        target: str,
        model_name: str = DEFAULT_MODEL_NAME,
        timeout: float = 10.0,
        version: int | None = None,
        version_label: str | None = None,
    ):
        if ":" not in target:
            raise ValueError(f"server must be HOST:PORT, got {target!r}")
        if version is not None and version_label is not None:
            raise ValueError("give a version or a version label, not both")
        self.target, self.model_name, self.timeout = target, model_name, timeout
        self.version, self.version_label = version, version_label
        self.last_version: int | None = None  # version that answered the latest call
        self._channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Blocks until the channel connects.

        Raises:
          ServingError: UNAVAILABLE if nothing answers within ``timeout`` seconds.
        """
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError as err:
            raise ServingError(
                "connect", self.target, grpc.StatusCode.UNAVAILABLE, f"no answer in {timeout}s"
            ) from err

    def _call(self, stub_method, request, method: str):
        try:
            return stub_method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise ServingError(method, self.target, err.code(), err.details() or "") from err

    def _spec(self, spec, signature_name=None, version=None, version_label=None):
        if version is None and version_label is None:
            version, version_label = self.version, self.version_label
        sig.set_model_spec(spec, self.model_name, signature_name, version, version_label)

    # --- Predict ------------------------------------------------------------------------------
    def predict_raw(self, signature_name: str, inputs: dict, version=None, version_label=None):
        """Predict on any signature with ``{alias: array}`` inputs; returns ``{alias: ndarray}``.

        Raises:
          ServingError: on any non-OK status (the message carries code and server details).
        """
        request = sig.make_predict_request(self.model_name, signature_name, inputs)
        self._spec(request.model_spec, signature_name, version, version_label)
        response = self._call(self._predict.Predict, request, f"Predict/{signature_name}")
        self.last_version = response.model_spec.version.value
        return {alias: tf.make_ndarray(t) for alias, t in response.outputs.items()}

    def predict(
        self,
        click_histories: Sequence[Sequence],
        candidates: Sequence[Sequence],
        nonclick_histories: Sequence[Sequence] | None = None,
        **version,
    ) -> np.ndarray:
        """Click probabilities of each user's candidates (``predict`` signature).

        Args:
          click_histories: per user, the clicked video ids (raw ids: str or int).
          candidates: per user, the candidate video ids to score.
          nonclick_histories: per user, exposed-not-clicked ids; None = none.
          **version: optional ``version=`` or ``version_label=`` for this call.

        Returns:
          float32 ``[users, max candidates]``, 0 where a user has fewer candidates.
        """
        inputs = sig.predict_inputs(click_histories, candidates, nonclick_histories)
        return self.predict_raw(sig.PREDICT, inputs, **version)[sig.PROBABILITIES]

    def recommend(self, click_histories, k: int = 10, nonclick_histories=None, **version):
        """Top-k unseen videos per user (``recommend`` signature).

        Returns:
          ``(video_ids, scores)``: ``[users, k]`` lists of str ids and a float32 array.
        """
        inputs = sig.recommend_inputs(click_histories, k, nonclick_histories)
        out = self.predict_raw(sig.RECOMMEND, inputs, **version)
        ids = [[v.decode("utf-8") for v in row] for row in out[sig.VIDEO_IDS]]
        return ids, out[sig.SCORES]

    def user_embedding(self, click_histories, nonclick_histories=None, **version) -> np.ndarray:
        """The user vectors u, float32 ``[users, D]`` (``user_embedding`` signature)."""
        inputs = sig.history_inputs(click_histories, nonclick_histories)
        return self.predict_raw(sig.USER_EMBEDDING, inputs, **version)[sig.EMBEDDING]

    # --- Classify / metadata / status ---------------------------------------------------------
    def classify(self, examples: Sequence, signature_name=sig.SERVING_DEFAULT, **version):
        """Classify ``tf.Example``s; returns float32 ``[batch, num_classes]`` scores."""
        request = sig.make_classify_request(self.model_name, examples, signature_name)
        self._spec(request.model_spec, signature_name, **version)
        response = self._call(self._predict.Classify, request, "Classify")
        self.last_version = response.model_spec.version.value
        return np.array(
            [[c.score for c in cl.classes] for cl in response.result.classifications],
            dtype=np.float32,
        )

    def metadata(self, **version) -> dict:
        """``{signature name: SignatureDef}`` of the served version (GetModelMetadata)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, **version)
        response = self._call(self._predict.GetModelMetadata, request, "GetModelMetadata")
        sdm = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sdm)
        self.last_version = response.model_spec.version.value
        return dict(sdm.signature_def)

    def status(self, **version) -> list[VersionStatus]:
        """Every version's state (GetModelStatus), newest first."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, **version)
        response = self._call(self._models.GetModelStatus, request, "GetModelStatus")
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [
            VersionStatus(
                s.version, state_name(s.state), s.status.error_code, s.status.error_message
            )
            for s in response.model_version_status
        ]
