"""Test-wide setup: tf-keras before TensorFlow, the xdist layout, the artifacts several modules share.

`make test` (and a bare `pytest`) run on 2 xdist workers (pyproject's `-n auto --dist loadfile`):
each module runs on one worker, so its module fixtures are built once, and the modules that
share a session artifact (SHARED) run on the same worker, which builds it once. Naming test files
or node ids (`pytest tests/x.py::test_y`) runs them in this process, without workers.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

MAX_WORKERS = 2  # the project's machines have 2 cores; each worker is a TensorFlow process

# Modules that read one session artifact: one scheduling unit under xdist. (Not `xdist_group`
# marks: xdist 3.8 suffixes `item._nodeid`, which pytest 9 no longer reads, so they do nothing.)
SHARED = {
    "tests/pipeline/test_pipeline_e2e.py": "tiny_pipeline",
    "tests/report/test_report.py": "tiny_pipeline",
}

# Units that take the longest (chosen by reading the tests, not yet measured with --durations),
# started first so that neither worker is left with a long one at the end. Other units follow in
# collection order.
LONGEST_FIRST = (
    "tiny_pipeline",
    "tests/experiments/test_experiments_smoke.py",
    "tests/pipeline/test_multi_worker.py",
    "tests/pipeline/test_portable_beam.py",
    "tests/serving/test_serving_server.py",
)


def unit(nodeid: str) -> str:
    """The xdist scheduling unit of a test: its module, or its SHARED group."""
    path = nodeid.split("::")[0]
    return SHARED.get(path, path)


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: 2 workers for the suite or a directory; none for named files or node ids (one
    module gains nothing from workers, which each import TensorFlow and collect it again)."""
    args = [a for a in config.args if not a.startswith("-")]
    if args and all("::" in a or a.endswith(".py") for a in args):
        return 0
    return min(MAX_WORKERS, os.cpu_count() or 1)


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with the SHARED modules as one unit."""
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler for any other --dist
    from xdist.scheduler import LoadFileScheduling

    class SharedUnits(LoadFileScheduling):
        def _split_scope(self, nodeid):
            return unit(nodeid)

    return SharedUnits(config, log)


def pytest_collection_modifyitems(config, items):
    """Under xdist, the longest units first (a worker's collection order is the send order)."""
    if not hasattr(config, "workerinput"):
        return
    last = len(LONGEST_FIRST)
    rank = {u: i for i, u in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(unit(item.nodeid), last))  # stable: keeps module order


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """The pipeline tests' 40-user synthetic log (see tests/shared_artifacts.py)."""
    from shared_artifacts import tiny_data as build

    return build(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, tiny_data):
    """The shared tiny pipeline runs (see `shared_artifacts.run_tiny_pipeline`)."""
    from shared_artifacts import run_tiny_pipeline

    return run_tiny_pipeline(tmp_path_factory, tiny_data)


@pytest.fixture(scope="session")
def serving_transform(tmp_path_factory):
    """(TFTransformOutput, transformed rows) of `random_raw_rows(seed=0)` with max_history 8: the
    Transform output `build_serving_model` analyzes by default."""
    from shared_artifacts import serving_transform as build

    return build(tmp_path_factory)
