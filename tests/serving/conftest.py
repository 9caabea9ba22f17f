"""Fixtures of the serving tests: the backend parametrization (ours / real TF Serving)."""

import pytest
from server_harness import BACKENDS, require_backend


@pytest.fixture(params=BACKENDS)
def backend(request):
    require_backend(request.param)
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(request):
    require_backend(request.param)
    return request.param
