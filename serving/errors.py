"""The request failure every serving module raises: a message plus TF Serving's gRPC status code."""

from __future__ import annotations

import grpc

# tensorflow.error.Code value -> grpc.StatusCode (the two enums share their numbers)
GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    """A request failure with the gRPC status code TF Serving would return."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ServingError:
    """An INVALID_ARGUMENT failure."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)
