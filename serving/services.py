"""The gRPC services: TF Serving's PredictionService and ModelService over a ``ModelManager``.

A failing request never takes the server down: ``ServingError`` becomes its status code, any
other exception INTERNAL (logged). Regress, MultiInference and HandleReloadConfigRequest answer
UNIMPLEMENTED.
"""

from __future__ import annotations

import logging

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()

import grpc  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving.errors import ServingError  # noqa: E402
from serving.execution import run_classify, run_metadata, run_predict  # noqa: E402
from serving.limits import RequestLimits  # noqa: E402
from serving.memory import ByteBudget  # noqa: E402
from serving.versions import ModelManager  # noqa: E402

log = logging.getLogger("ccl4rec.serve")


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

    def __init__(self, manager: ModelManager, limits: RequestLimits | int | None = None):
        self.manager = manager
        if limits is None or isinstance(limits, int):
            limits = RequestLimits() if limits is None else RequestLimits(max_batch=limits)
        self.limits = limits
        self.budget = ByteBudget(limits.max_inflight_bytes)

    def _run(self, execute, request, context):
        loaded = self.manager.resolve(request.model_spec)
        with self.budget.hold(request.ByteSize(), context.time_remaining()):
            return execute(loaded, request, self.limits)

    def Predict(self, request, context):
        return _answer(context, "Predict", lambda: self._run(run_predict, request, context))

    def Classify(self, request, context):
        return _answer(context, "Classify", lambda: self._run(run_classify, request, context))

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
