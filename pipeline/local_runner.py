"""Runs the pipeline here: LocalDagRunner, SQLite MLMD, Beam DirectRunner (or another Beam runner).

Prints one progress line per component (with wall time) and returns a summary read back from MLMD:
the pushed version, the evaluation's key metrics, and whether the model was blessed.
"""

import contextlib
import dataclasses
import logging
import os
import time
from unittest import mock

from tfx import v1 as tfx
from tfx.orchestration.portable import launcher as tfx_launcher

from pipeline import pipeline as ccl4rec_pipeline
from pipeline.configs import SERVING_MODEL_NAME, PipelineConfig
from pipeline.pipeline import EVALUATOR_ID, GATE_ID
from tf_ccl4rec import mlmd


class _Progress:
    """One line when a component starts and one when it ends (with wall time, cached or not)."""

    def __init__(self, total: int, echo=print):
        self.total = total
        self.echo = echo
        self.index = 0
        self.timings = {}

    def start(self, name):
        self.index += 1
        self.echo(f"[{self.index}/{self.total}] {name} ...", flush=True)
        return time.time()

    def finish(self, name, started, cached):
        seconds = time.time() - started
        self.timings[name] = (seconds, cached)
        how = "cached" if cached else "done"
        self.echo(f"[{self.index}/{self.total}] {name} {how} in {seconds:.1f} s", flush=True)

    def failed(self, name, started):
        self.echo(f"[{self.index}/{self.total}] {name} FAILED after {time.time() - started:.1f} s")

    @contextlib.contextmanager
    def watching_launcher(self):
        """Wraps TFX's component Launcher for the duration of a run.

        TFX has no progress callback, and its per-component INFO log lines cannot be relied on:
        executors (Transform's Beam run) reconfigure logging mid-run. So the launcher itself is
        wrapped; `_prepare_execution` says whether the execution was needed (else: cache hit).
        """
        original_launch = tfx_launcher.Launcher.launch
        original_prepare = tfx_launcher.Launcher._prepare_execution
        progress = self

        def prepare(launcher):
            result = original_prepare(launcher)
            launcher._ccl4rec_cached = not result.is_execution_needed
            return result

        def launch(launcher):
            name = launcher._pipeline_node.node_info.id
            started = progress.start(name)
            try:
                result = original_launch(launcher)
            except BaseException:
                progress.failed(name, started)
                raise
            progress.finish(name, started, getattr(launcher, "_ccl4rec_cached", False))
            return result

        with (
            mock.patch.object(tfx_launcher.Launcher, "launch", launch),
            mock.patch.object(tfx_launcher.Launcher, "_prepare_execution", prepare),
        ):
            yield


@dataclasses.dataclass
class RunSummary:
    blessed: bool | None
    pushed: bool
    pushed_path: str | None
    evaluation_uri: str | None
    metrics: dict
    timings: dict
    log_file: str
    models_config: str | None = None
    count_metrics: dict = dataclasses.field(default_factory=dict)
    beats_count: bool | None = None

    def lines(self) -> list:
        out = [f"blessed: {self.blessed}", f"pushed: {self.pushed_path or 'no (not blessed)'}"]
        if "auc" in self.metrics and "auc" in self.count_metrics:
            gain = self.metrics["auc"] - self.count_metrics["auc"]
            out.append(
                f"AUC {self.metrics['auc']:.4f} vs the user + video count {self.count_metrics['auc']:.4f}"
                f" ({gain:+.4f}): {'beats' if self.beats_count else 'does NOT beat'} the count"
            )
        if self.models_config:
            out.append(f"TF Serving config: {self.models_config}")
        out.append(f"evaluation: {self.evaluation_uri}")
        for name, value in sorted(self.metrics.items()):
            out.append(
                f"  {name}: {value:.4f}" if isinstance(value, float) else f"  {name}: {value}"
            )
        out.append(f"full log: {self.log_file}")
        return out


def overall_metrics(evaluation_uri: str, baseline: bool = False) -> dict:
    """Overall-slice metrics of a TFMA evaluation (via TFMA's loader), as name -> float.

    Args:
      evaluation_uri: The Evaluator's output.
      baseline: The baseline model's metrics instead of the candidate's ({} when none).
    """
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.writers import eval_config_writer

    config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    names = {spec.is_baseline: spec.name for spec in config.model_specs}
    if baseline and True not in names:
        return {}
    result = tfma.load_eval_result(evaluation_uri, model_name=names.get(baseline) or None)
    for slice_key, metrics in result.slicing_metrics:
        if slice_key == ():
            values = metrics.get("", {}).get("", {})
            return {
                name: float(v["doubleValue"])
                for name, v in values.items()
                if isinstance(v, dict) and "doubleValue" in v
            }
    return {}


def summarize(config: PipelineConfig, timings=None, log_file="") -> RunSummary:
    """Reads the newest Evaluator/Pusher outputs of this pipeline from MLMD."""
    store = mlmd.open_store(config.pipeline_root)
    blessing = mlmd.latest_output(store, "ModelBlessing", GATE_ID)
    evaluation = mlmd.latest_output(store, "ModelEvaluation", EVALUATOR_ID)
    pushed = mlmd.latest_artifact(store, "PushedModel")
    is_pushed = bool(mlmd.custom_property(pushed, "pushed"))
    evaluation_uri = (
        mlmd.artifact_path(evaluation.uri, config.pipeline_root) if evaluation else None
    )
    return RunSummary(
        blessed=None if blessing is None else bool(mlmd.custom_property(blessing, "blessed")),
        pushed=is_pushed,
        pushed_path=mlmd.custom_property(pushed, "pushed_destination") if is_pushed else None,
        evaluation_uri=evaluation_uri,
        metrics=overall_metrics(evaluation_uri) if evaluation_uri else {},
        count_metrics=overall_metrics(evaluation_uri, baseline=True) if evaluation_uri else {},
        beats_count=None
        if blessing is None
        else bool(mlmd.custom_property(blessing, "beats_count")),
        timings=timings or {},
        log_file=log_file,
    )


def local_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    """The pipeline (`pipeline.pipeline.create_pipeline`) with MLMD in <pipeline_root>/metadata.sqlite."""
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    return ccl4rec_pipeline.create_pipeline(config, metadata_connection_config=connection)


def run(config: PipelineConfig, echo=print) -> RunSummary:
    """Runs the whole pipeline with LocalDagRunner and returns its summary.

    TFX's own INFO logs go to <pipeline_root>/logs/run-<time>.log; the console gets progress lines.
    """
    os.makedirs(os.path.join(config.pipeline_root, "logs"), exist_ok=True)
    log_file = os.path.join(
        config.pipeline_root, "logs", f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    )
    pipeline = local_pipeline(config)
    progress = _Progress(total=len(pipeline.components), echo=echo)
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # TFX (absl), TensorFlow, Beam and Python warnings go to the log file; the console gets progress.
    quiet = [logging.getLogger(n) for n in ("absl", "tensorflow", "apache_beam", "py.warnings")]
    saved = [(lg, lg.level, lg.propagate, list(lg.handlers)) for lg in quiet]
    logging.captureWarnings(True)
    for lg in quiet:
        lg.setLevel(logging.INFO)
        lg.propagate = False
        lg.handlers = [file_handler]
    try:
        with progress.watching_launcher():
            tfx.orchestration.LocalDagRunner().run(pipeline)
    finally:
        logging.captureWarnings(False)
        for lg, level, propagate, handlers in saved:
            lg.setLevel(level)
            lg.propagate = propagate
            lg.handlers = handlers
        file_handler.close()
    summary = summarize(config, progress.timings, log_file)
    if summary.pushed:
        from serving.model_config import write_push_config

        # <serving_base>/models.config: what tensorflow_model_server / `ccl4rec serve` load.
        summary.models_config = write_push_config(
            config.serving_base, SERVING_MODEL_NAME, config.serving_version_policy
        )
    return summary
