"""Artifacts several test modules read, built once per test run (fixtures in tests/conftest.py).

- `tiny_data`: the 40-user synthetic log of the pipeline tests.
- `run_tiny_pipeline`: one full pipeline run on it, a cached rerun and a rerun with an impossible
  AUC floor, with a report after the first and the last. tests/pipeline/test_pipeline_e2e.py and
  tests/report/test_report.py assert on it (they used to run it once each), and
  tests/pipeline/test_pipeline_tune_e2e.py runs `--tune` on its root (it used to run the whole
  pipeline on the same log); under xdist they are one scheduling unit (tests/conftest.py), so one
  worker builds it. Tests that run more on its root do so after these three runs.
- `serving_transform`: the Transform output `build_serving_model` analyzes by default, shared by
  the export, serving and baseline tests and the distributed Trainer's subprocess
  (`serving_transform_dir`). Under xdist the first worker to need it builds it in
  the run's shared temp directory under a file lock; the other reads it.
"""

import contextlib
import dataclasses
import fcntl
import os
import pickle
import shutil

TINY_MODEL = {"embedding_dim": 16, "mlp_units": [16], "num_substitutes": 100}


def tiny_config(data_dir, root, **overrides):
    """The tiny pipeline's config; `overrides` for the reruns on its root."""
    from pipeline.configs import PipelineConfig

    values = dict(
        data_root=data_dir,
        pipeline_root=root,
        max_history=20,
        train_steps=60,
        max_epochs=2,
        model=TINY_MODEL,
        auc_floor=0.0,
        # Plumbing tests: blessing must not depend on 60 steps beating the count on 40 users;
        # test_a_model_that_does_not_beat_the_count_is_not_pushed checks the real threshold.
        min_gain_over_count=-1.0,
    )
    values.update(overrides)
    return PipelineConfig(**values)


def versions(config):
    """The pushed versions under the config's serving base, oldest first."""
    base = os.path.join(config.serving_base, "ccl4rec")
    return sorted(int(v) for v in os.listdir(base)) if os.path.isdir(base) else []


def tiny_data(tmp_path_factory):
    from tf_ccl4rec.data import synth

    out = str(tmp_path_factory.mktemp("raw"))
    config = synth.SynthConfig(users=40, videos=200, topics=8, exposures_per_user=60, seed=3)
    synth.synth(config, out, progress=lambda *a, **k: None)
    return out


@dataclasses.dataclass
class TinyPipeline:
    data_dir: str
    config: object  # PipelineConfig of the first run (pipeline_root absolute)
    first: object  # RunSummary of each run
    lines: list  # the first run's progress lines
    first_report: str  # HTML of `build_report` right after the first run
    rerun: object  # same config again: everything cached, nothing new pushed
    strict: object  # auc_floor=0.999: evaluated again, not blessed
    second_report: str  # HTML right after the strict run
    versions: dict  # pushed versions after "first", "rerun" and "strict"


def run_tiny_pipeline(tmp_path_factory, data_dir):
    from pipeline import local_runner
    from tf_ccl4rec.report import build_report

    workdir = tmp_path_factory.mktemp("project")
    reports = tmp_path_factory.mktemp("reports")
    quiet = dict(echo=lambda *a, **k: None)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        # A relative root, as `make demo` gives (demo_out/pipeline); the config makes it absolute.
        config = tiny_config(data_dir, os.path.join("out", "pipeline"))
        lines = []
        first = local_runner.run(config, echo=lambda *a, **k: lines.append(a[0]))
        first_report = build_report(config.pipeline_root, str(reports / "first.html"))
        seen = {"first": versions(config)}
        rerun = local_runner.run(config, **quiet)
        seen["rerun"] = versions(config)
        strict = local_runner.run(
            tiny_config(data_dir, config.pipeline_root, auc_floor=0.999), **quiet
        )
        seen["strict"] = versions(config)
        second_report = build_report(config.pipeline_root, str(reports / "second.html"))
    finally:
        os.chdir(cwd)
    with open(first_report) as f, open(second_report) as g:
        return TinyPipeline(data_dir, config, first, lines, f.read(), rerun, strict, g.read(), seen)


@contextlib.contextmanager
def _locked(path):
    with open(path + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def shared_dir(tmp_path_factory, name, build):
    """A directory `build(directory)` fills once per test run.

    Without xdist: a fresh temp directory. Under xdist: <the run's temp dir>/<name>, which every
    worker of the run sees; the first builds it holding a file lock, the others wait, then read.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        directory = str(tmp_path_factory.mktemp(name))
        build(directory)
        return directory
    directory = os.path.join(str(tmp_path_factory.getbasetemp().parent), name)
    done = os.path.join(directory, ".complete")
    with _locked(directory):
        if not os.path.exists(done):
            shutil.rmtree(directory, ignore_errors=True)  # a worker that failed half-way
            os.makedirs(directory)
            build(directory)
            open(done, "w").close()
    return directory


def serving_transform_dir(tmp_path_factory):
    """The directory of the shared Transform output: `transform/` (TFT's output) and
    `rows.pickle` (the transformed rows)."""
    from tf_ccl4rec.testing import analyze, random_raw_rows

    def build(directory):
        _, rows = analyze(
            random_raw_rows(seed=0), os.path.join(directory, "transform"), {"max_history": 8}
        )
        with open(os.path.join(directory, "rows.pickle"), "wb") as f:
            pickle.dump(rows, f)

    return shared_dir(tmp_path_factory, "serving_transform", build)


def serving_transform(directory):
    """(TFTransformOutput, transformed rows) from `serving_transform_dir`'s directory."""
    import tensorflow_transform as tft

    with open(os.path.join(directory, "rows.pickle"), "rb") as f:
        rows = pickle.load(f)
    return tft.TFTransformOutput(os.path.join(directory, "transform")), rows
