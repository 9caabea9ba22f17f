"""Test-wide setup: tf-keras before TensorFlow, the xdist layout, the artifacts several modules share.

`make test` (and a bare `pytest`) run on 2 xdist workers (pyproject's `-n auto --dist loadfile`):
each module runs on one worker, so its module fixtures are built once, and the modules that
share a session artifact (SHARED) run on the same worker, which builds it once. Naming test files
or node ids (`pytest tests/x.py::test_y`) runs them in this process, without workers.
"""

import gc
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under xdist each worker is a TensorFlow process (and starts more: pipeline runs, CLIs): with TF's
# default of one intra-op thread per core they contend for the 2 cores. One each ran the whole
# suite in 8:01 instead of 9:52 (2026-12-02; one inter-op thread as well gained nothing more).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import pytest  # noqa: E402

MAX_WORKERS = 2  # the project's machines have 2 cores; each worker is a TensorFlow process

# Modules that read one session artifact: one scheduling unit under xdist. (Not `xdist_group`
# marks: xdist 3.8 suffixes `item._nodeid`, which pytest 9 no longer reads, so they do nothing.)
SHARED = {
    "tests/pipeline/test_pipeline_e2e.py": "tiny_pipeline",
    "tests/pipeline/test_pipeline_tune_e2e.py": "tiny_pipeline",
    "tests/report/test_report.py": "tiny_pipeline",
}

# Seconds each unit took in a measured run of the whole suite (sum of its tests' setup + call +
# teardown on its worker; units under 5 s left out). Under xdist the units start longest first
# (what xdist's loadfile scheduler sends next is the next unit of the collection order, to the
# first worker with <= 2 tests pending): greedy longest-first keeps the two workers' totals
# close, and no long unit starts last. Unlisted units follow in collection order. Re-measure with
# `--durations` (or per-test wall times) after changing a long test, and update the figures.
# Measured 2026-12-03 evening on the working tree after 8739e06, 2 workers, one intra-op thread
# each, in a slow hour (the same tests ran ~1.3x faster earlier that day; only the order matters).
UNIT_SECONDS = {
    "tiny_pipeline": 257,
    "tests/experiments/test_experiments_smoke.py": 171,
    "tests/model/test_model.py": 136,
    "tests/bench/test_bench_cli.py": 133,
    "tests/model/test_tracing.py": 93,
    "tests/pipeline/test_multi_worker.py": 87,
    "tests/serving/test_serving_server.py": 77,
    "tests/baselines/test_baselines.py": 67,
    "tests/pipeline/test_trainer_distributed.py": 60,
    "tests/pipeline/test_portable_beam.py": 53,
    "tests/export/test_two_stage.py": 50,
    "tests/export/test_signatures.py": 48,
    "tests/pipeline/test_preprocessing.py": 43,
    "tests/data/test_data_examples.py": 40,
    "tests/pipeline/test_tuning.py": 39,
    "tests/data/test_data_schema.py": 38,
    "tests/data/test_data_examples_columnar.py": 37,
    "tests/pipeline/test_replica_scaling.py": 26,
    "tests/metrics/test_ranking.py": 21,
    "tests/pipeline/test_fit_model.py": 16,
    "tests/data/test_data_cli.py": 16,
    "tests/serving/test_serving_allocator.py": 14,
    "tests/test_foundation.py": 13,
    "tests/serving/test_serving_units.py": 12,
    "tests/data/test_data_importers.py": 12,
    "tests/data/test_data_component.py": 9,
    "tests/bench/test_bench_flops.py": 6,
}


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
    items.sort(key=lambda item: -UNIT_SECONDS.get(unit(item.nodeid), 0))  # stable: module order


def pytest_collection_finish(session):
    """Freezes what collection imported (TensorFlow, TFX, Beam: ~340k objects) out of the cyclic
    GC, whose full collections walked it all again. tests/model/test_model.py alone: GC 4.1 ->
    2.6 CPU s. Only what is alive now is frozen; later objects are collected as before."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session", autouse=True)
def trimmed_beam():
    """Test processes run Beam as `ccl4rec pipeline run` and the CLIs do
    (tf_ccl4rec/beam_overhead.py), whichever test happens to run a pipeline first. Only where the
    collected modules loaded Beam: a run of one pure-model module does not pay its import (~2 s)."""
    if "apache_beam" in sys.modules:
        from tf_ccl4rec.beam_overhead import trim_beam_overhead

        trim_beam_overhead()


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
def serving_transform_dir(tmp_path_factory):
    """The directory of `serving_transform`: `transform/` and `rows.pickle` (for subprocesses)."""
    from shared_artifacts import serving_transform_dir as build

    return build(tmp_path_factory)


@pytest.fixture(scope="session")
def serving_transform(serving_transform_dir):
    """(TFTransformOutput, transformed rows) of `random_raw_rows(seed=0)` with max_history 8: the
    Transform output `build_serving_model` analyzes by default."""
    from shared_artifacts import serving_transform as read

    return read(serving_transform_dir)
