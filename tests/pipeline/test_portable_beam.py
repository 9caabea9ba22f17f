"""The Beam stages on the portable runner: Beam's own job service and an external SDK worker
pool on localhost (the job API that Flink's and Spark's job servers expose), against
DirectRunner. The example builder's decoded examples and data-quality counts, and tf.Transform's
analyzer outputs and transformed rows, must be the same.

Both services run from this interpreter's virtualenv (its bin first on PATH: the pool's SDK
workers are `python` subprocesses) with this checkout on PYTHONPATH, and are stopped (their
process groups) whatever happens.
"""

import contextlib
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tf_ccl4rec import beam_runner, cli
from tf_ccl4rec.bench.multi_worker import free_port
from tf_ccl4rec.data import examples, quality, synth
from tf_ccl4rec.data.cli import run_examples

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 120  # seconds for a service to listen (imports on a loaded machine)


def _listening(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(1)
        return s.connect_ex(("localhost", port)) == 0


def _start(module: str, port_flag: str, port: int, log_path: str, env: dict):
    log = open(log_path, "w")  # noqa: SIM115  (closed by the fixture)
    proc = subprocess.Popen(
        [sys.executable, "-m", module, port_flag, str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the pool's SDK workers go with it
    )
    return proc, log


def _stop(proc, log):
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log.close()


@pytest.fixture(scope="module")
def portable(tmp_path_factory):
    """(job endpoint, worker pool) HOST:PORT of a local job service and worker pool."""
    logs = tmp_path_factory.mktemp("beam_services")
    venv_bin = os.path.dirname(sys.executable)
    env = dict(os.environ)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    job_port, pool_port = free_port(), free_port()
    started = []
    try:
        started.append(_start("apache_beam.runners.portability.local_job_service_main",
                              "--port", job_port, str(logs / "job_service.log"), env))  # fmt: skip
        started.append(_start("apache_beam.runners.worker.worker_pool_main",
                              "--service_port", pool_port, str(logs / "worker_pool.log"), env))  # fmt: skip
        deadline = time.time() + START_TIMEOUT
        names = ("job service", "worker pool")
        for (proc, log), port, name in zip(started, (job_port, pool_port), names, strict=True):
            while not _listening(port):
                assert proc.poll() is None, f"{name} exited: {open(log.name).read()[-3000:]}"
                assert time.time() < deadline, f"{name} not listening on {port}"
                time.sleep(0.5)
        yield f"localhost:{job_port}", f"localhost:{pool_port}"
    finally:
        for proc, log in started:
            _stop(proc, log)


def _raw_log(directory) -> str:
    synth.synth(
        synth.SynthConfig(users=12, videos=60, topics=6, exposures_per_user=15, seed=3),
        str(directory),
        progress=None,
    )
    path = os.path.join(str(directory), "interactions.csv")
    with open(path, "a") as f:  # bad rows of several kinds: their counts must match too
        f.write("u_bad,v1,not-a-time,1\nu_bad,v2,5,7\nonly,two\n")
    return str(directory)


def _decoded(out_dir, split):
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(out_dir, f"Split-{split}", "*.gz")))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    decoded = [examples.decode_example(r.numpy()) for r in records]
    return sorted(decoded, key=lambda e: (e["user_id"], e["timestamp"], e["video_id"]))


def _report(out_dir) -> dict:
    with open(os.path.join(out_dir, quality.REPORT_FILE)) as f:
        return json.load(f)


def test_portable_flags():
    assert beam_runner.pipeline_args("portable", "localhost:8099", "localhost:50000") == [
        "--runner=PortableRunner", "--job_endpoint=localhost:8099",
        "--environment_type=EXTERNAL", "--environment_config=localhost:50000",
    ]  # fmt: skip
    assert beam_runner.pipeline_args("portable", "jobs:8099", extra=["--x=1"])[-2:] == [
        "--environment_type=LOOPBACK", "--x=1"]  # fmt: skip
    with pytest.raises(ValueError, match="needs --job-endpoint"):
        beam_runner.pipeline_args("portable")
    with pytest.raises(ValueError, match="HOST:PORT"):
        beam_runner.pipeline_args("portable", "localhost")
    with pytest.raises(ValueError, match="flags of --runner portable"):
        beam_runner.pipeline_args("direct", job_endpoint="localhost:8099")


def test_direct_flags_name_our_setup_file_so_tfx_builds_no_sdist(monkeypatch):
    from tfx.utils import dependency_utils

    args = beam_runner.pipeline_args("direct")
    # This checkout's setup.py, found from the test's own location.
    setup_file = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "setup.py"))
    assert args == ["--runner=DirectRunner", "--direct_running_mode=in_memory",
                    "--direct_num_workers=1", f"--setup_file={setup_file}"]  # fmt: skip
    # TFX keeps flags that already name a dependency; without one it builds an sdist of itself.
    assert dependency_utils.make_beam_dependency_flags(args) == args
    # Installed without the source tree (no setup.py): no flag, TFX does what it always did.
    monkeypatch.setattr(beam_runner, "project_setup_file", lambda: None)
    assert not any(a.startswith("--setup_file") for a in beam_runner.pipeline_args("direct"))


def test_pipeline_config_takes_the_portable_runner(tmp_path):
    import argparse

    from pipeline.cli import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["run", "--data", str(tmp_path), "--root", str(tmp_path / "r"),
                              "--runner", "portable", "--job-endpoint", "localhost:8099",
                              "--worker-pool", "localhost:50000", "--tune"])  # fmt: skip
    config = config_from_args(args)
    assert config.tune and config.beam_pipeline_args() == beam_runner.pipeline_args(
        "portable", "localhost:8099", "localhost:50000"
    )
    args = parser.parse_args(["run", "--data", str(tmp_path), "--root", str(tmp_path / "r"),
                              "--runner", "portable"])  # fmt: skip
    with pytest.raises(ValueError, match="needs --job-endpoint"):
        config_from_args(args)


def test_example_builder_and_transform_match_direct_runner(portable, tmp_path, capsys):
    from tf_ccl4rec.bench.pipeline import transform_examples

    job_endpoint, worker_pool = portable
    raw = _raw_log(tmp_path / "raw")
    options = examples.ExampleOptions(max_history=6)
    direct_out, portable_out = str(tmp_path / "direct"), str(tmp_path / "portable")
    t0 = time.time()
    run_examples(raw, direct_out, options, progress=lambda s: None)
    t1 = time.time()
    # The portable run goes through the CLI: `ccl4rec data examples --runner portable ...`.
    code = cli.main(["data", "examples", "--data-root", raw, "--out", portable_out,
                     "--max-history", "6", "--runner", "portable",
                     "--job-endpoint", job_endpoint, "--worker-pool", worker_pool])  # fmt: skip
    t2 = time.time()
    assert code == 0, capsys.readouterr()
    for split in ("train", "eval"):
        direct, ported = _decoded(direct_out, split), _decoded(portable_out, split)
        assert direct and ported == direct, split
    direct_report, portable_report = _report(direct_out), _report(portable_out)
    assert sum(direct_report[quality.INTERACTIONS]["bad_rows"].values()) == 3
    assert portable_report == direct_report  # every count, bad rows by kind included

    # tf.Transform (analyze + transform of the train split) on both runners.
    outputs = {}
    for name, args in (("direct", None),
                       ("portable", beam_runner.pipeline_args("portable", job_endpoint, worker_pool))):  # fmt: skip
        tft_dir = str(tmp_path / f"tft_{name}")
        rows_prefix = str(tmp_path / f"rows_{name}")
        t = time.time()
        count = transform_examples(direct_out, tft_dir, 6, beam_args=args, rows_prefix=rows_prefix)
        lines = []
        for path in sorted(glob.glob(rows_prefix + "-*")):
            with open(path) as f:
                lines += f.read().splitlines()
        vocab_dir = os.path.join(tft_dir, "transform_fn", "assets")
        vocabs = {
            os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(vocab_dir + "/*"))
        }
        outputs[name] = (count, sorted(lines), vocabs, time.time() - t)
    d, p = outputs["direct"], outputs["portable"]
    assert d[0] == p[0] == len(d[1]) > 0
    assert p[1] == d[1]  # every transformed row
    assert d[2] and p[2] == d[2]  # the analyzers' vocabularies
    print(f"examples: direct {t1 - t0:.0f} s, portable {t2 - t1:.0f} s; "
          f"transform: direct {d[3]:.0f} s, portable {p[3]:.0f} s")  # fmt: skip
