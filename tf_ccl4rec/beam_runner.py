"""Beam runner flags from the command line: ``--runner direct|portable|flink|spark|dataflow``.

``portable`` submits the pipeline to a Beam job service over the portability API (PortableRunner):

- ``--job-endpoint HOST:PORT``: the job service. Beam's own
  (``python -m apache_beam.runners.portability.local_job_service_main --port PORT``), or the
  Flink / Spark job server of a cluster (docs/scaling.md gives their exact commands): they speak
  the same job API.
- ``--worker-pool HOST:PORT`` (optional): an external SDK worker pool
  (``python -m apache_beam.runners.worker.worker_pool_main --service_port PORT``) that runs the
  Python DoFns: ``--environment_type=EXTERNAL --environment_config=HOST:PORT``. Without it, the
  submitting process runs them itself (``LOOPBACK``), which only works when the runner can reach
  back to this process (a job service on this host, or a cluster on the same network).

The worker pool must import this project and the pipeline's libraries (TFX, tf.Transform): start
it from this project's virtualenv (its ``bin`` first on PATH, so subprocesses find the same
``python``) with this project importable (installed, or on PYTHONPATH). Paths given to the
pipeline must be absolute and readable by the workers (a shared file system or gs://...).

Used by ``ccl4rec pipeline run`` (`pipeline.configs.PipelineConfig.beam_pipeline_args`) and
``ccl4rec data examples``. Free of Beam imports: the CLI validates flags cheaply.
"""

from __future__ import annotations

import argparse
import os

RUNNERS = ("direct", "portable", "flink", "spark", "dataflow")
DIRECT_MODES = ("in_memory", "multi_processing", "multi_threading")


def check_endpoint(value: str, flag: str) -> str:
    """``value`` if it is HOST:PORT with a port in 1..65535, else ValueError naming ``flag``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{flag} must be HOST:PORT, got {value!r}")
    return value


def portable_args(job_endpoint: str, worker_pool: str = "") -> list[str]:
    """PortableRunner flags: the job service, and the SDK workers (EXTERNAL pool or LOOPBACK)."""
    args = ["--runner=PortableRunner", f"--job_endpoint={check_endpoint(job_endpoint, '--job-endpoint')}"]  # fmt: skip
    if worker_pool:
        check_endpoint(worker_pool, "--worker-pool")
        args += ["--environment_type=EXTERNAL", f"--environment_config={worker_pool}"]
    else:
        args.append("--environment_type=LOOPBACK")
    return args


def project_setup_file() -> str | None:
    """This project's setup.py when it runs from a source checkout (editable install), else None."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")
    return path if os.path.isfile(path) else None


def pipeline_args(
    runner: str,
    job_endpoint: str = "",
    worker_pool: str = "",
    direct_mode: str = "in_memory",
    direct_workers: int = 1,
    extra: list[str] | tuple = (),
) -> list[str]:
    """Beam flags for ``runner``; ``extra`` (``--beam-arg`` values) is appended verbatim.

    DirectRunner and the portable runner run here. Flink/Spark/Dataflow need their cluster flags
    in ``extra`` (``--flink_master=HOST:PORT``, ``--spark_master_url=spark://HOST:7077``,
    ``--project/--region/--temp_location``); they fetch Beam's job-server jar from Maven at run
    time (docs/scaling.md).
    """
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    if runner != "portable" and (job_endpoint or worker_pool):
        raise ValueError(
            f"--job-endpoint / --worker-pool are flags of --runner portable (got --runner {runner})"
        )
    if runner == "direct":
        if direct_mode not in DIRECT_MODES:
            raise ValueError(f"unknown direct_mode {direct_mode!r}")
        args = ["--runner=DirectRunner", f"--direct_running_mode={direct_mode}"]
        args.append(f"--direct_num_workers={direct_workers}")
        # DirectRunner workers are this process or its children: nothing is staged. Without a
        # dependency flag every TFX Beam executor builds an sdist of TFX for them first (1.9 s
        # per component, 5 per pipeline run); naming our setup.py tells TFX ours is given.
        setup_file = project_setup_file()
        if setup_file:
            args.append(f"--setup_file={setup_file}")
    elif runner == "portable":
        if not job_endpoint:
            raise ValueError(
                "--runner portable needs --job-endpoint HOST:PORT (a Beam job service)"
            )
        args = portable_args(job_endpoint, worker_pool)
    elif runner == "flink":
        args = ["--runner=FlinkRunner", "--environment_type=LOOPBACK"]
    elif runner == "spark":
        args = ["--runner=SparkRunner", "--environment_type=LOOPBACK"]
    else:
        args = ["--runner=DataflowRunner", "--experiments=use_runner_v2"]
    return args + list(extra)


def add_arguments(parser: argparse.ArgumentParser, runners=RUNNERS) -> None:
    """``--runner``, ``--job-endpoint``, ``--worker-pool`` on ``parser``."""
    parser.add_argument("--runner", choices=runners, default="direct", help="Beam runner")
    parser.add_argument(
        "--job-endpoint",
        default="",
        metavar="HOST:PORT",
        help="--runner portable: the Beam job service (Beam's local one, Flink's or Spark's)",
    )
    parser.add_argument(
        "--worker-pool",
        default="",
        metavar="HOST:PORT",
        help="--runner portable: an external SDK worker pool (else LOOPBACK: this process)",
    )
