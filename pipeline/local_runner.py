"""Runs the pipeline here: LocalDagRunner, SQLite MLMD, Beam DirectRunner (or another Beam runner).

Prints one progress line per component (with wall time) and returns a summary read back from MLMD:
the pushed version (or the version already serving this model), the evaluation's key metrics, and
whether the model was blessed. One run per pipeline root at a time (`pipeline.root_lock`).
"""

import contextlib
import dataclasses
import logging
import os
import threading
import time

from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.metadata import sqlite_metadata_connection_config
from tfx.orchestration.pipeline import Pipeline

from pipeline import pipeline as ccl4rec_pipeline
from pipeline import root_lock
from pipeline.components.blessing_gate import ALREADY_SERVING_KEY
from pipeline.configs import SERVING_MODEL_NAME, PipelineConfig
from pipeline.pipeline import EVALUATOR_ID, GATE_ID
from tf_ccl4rec import mlmd
from tf_ccl4rec.beam_overhead import trim_beam_overhead
from tf_ccl4rec.tracing import keep_autograph_out_of_keras

# How often the progress thread looks at MLMD while the pipeline runs (seconds).
POLL_INTERVAL = 0.5


class _Progress:
    """One line when a component starts and one when it ends (with wall time, cached or not)."""

    def __init__(self, total: int, echo=print):
        self.total = total
        self.echo = echo
        self.index = 0
        self.timings = {}
        self._index = {}  # execution id -> its [i/total] number
        self._finished = set()

    def observe(self, execution_id: int, name: str, state: str, seconds: float) -> None:
        """Prints what is new about one execution: its start and, once, its end.

        Args:
          execution_id: The MLMD execution id.
          name: The component (node) id.
          state: "running", "done", "cached" or "failed".
          seconds: Wall time from the execution's registration to its last update.
        """
        if execution_id not in self._index:
            self.index += 1
            self._index[execution_id] = self.index
            self.echo(f"[{self.index}/{self.total}] {name} ...", flush=True)
        if state == "running" or execution_id in self._finished:
            return
        self._finished.add(execution_id)
        at = f"[{self._index[execution_id]}/{self.total}] {name}"
        if state == "failed":
            self.echo(f"{at} FAILED after {seconds:.1f} s", flush=True)
            return
        self.timings[name] = (seconds, state == "cached")
        self.echo(f"{at} {state} in {seconds:.1f} s", flush=True)


class _ExecutionWatcher:
    """Feeds `_Progress` from MLMD while LocalDagRunner runs (a context manager).

    TFX has no progress callback, and its per-component INFO log lines cannot be relied on:
    executors (Transform's Beam run) reconfigure logging mid-run. But every node TFX runs registers
    an MLMD execution when it starts and sets its state when it ends (COMPLETE, CACHED for a cache
    hit, FAILED), with creation and last-update times. A thread polls the store for executions
    newer than the run; one last look on exit prints the end of the last component.
    """

    # MLMD execution state -> what `_Progress` prints; NEW, RUNNING (and UNKNOWN) = still running.
    _STATES = {"COMPLETE": "done", "CACHED": "cached", "FAILED": "failed", "CANCELED": "failed"}

    def __init__(self, connection_config, pipeline_name: str, progress: _Progress):
        from ml_metadata.metadata_store import metadata_store

        # Opening the store creates its schema now, before TFX connects to the same file.
        self._store = metadata_store.MetadataStore(connection_config)
        self._after = max((e.id for e in self._store.get_executions()), default=0)
        self._prefix = f"{pipeline_name}."
        self._progress = progress
        self._names = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ccl4rec-progress", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._stop.set()
        self._thread.join()
        try:
            self.poll()
        except Exception:
            if exc_type is None:
                raise
        return False

    def _loop(self):
        while not self._stop.wait(POLL_INTERVAL):
            try:
                self.poll()
            except Exception:  # e.g. the SQLite file is busy: look again next time
                continue

    def _node_id(self, execution_id: int) -> str:
        """The node id from the execution's node context "<pipeline name>.<node id>", or None."""
        for context in self._store.get_contexts_by_execution(execution_id):
            if context.name.startswith(self._prefix):
                return context.name[len(self._prefix) :]
        return None

    def poll(self) -> None:
        from ml_metadata.proto import metadata_store_pb2

        state_name = metadata_store_pb2.Execution.State.Name
        executions = [e for e in self._store.get_executions() if e.id > self._after]
        for execution in sorted(executions, key=lambda e: e.id):
            if execution.id not in self._names:
                name = self._node_id(execution.id)
                if name is None:
                    continue  # not associated with its node yet: next look
                self._names[execution.id] = name
            state = self._STATES.get(state_name(execution.last_known_state), "running")
            seconds = execution.last_update_time_since_epoch - execution.create_time_since_epoch
            self._progress.observe(execution.id, self._names[execution.id], state, seconds / 1000)


@contextlib.contextmanager
def _logs_to_file(log_file: str):
    """TFX (absl), TensorFlow, Beam and Python warnings go to `log_file` instead of the console."""
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(n) for n in ("absl", "tensorflow", "apache_beam", "py.warnings")]
    saved = [(lg, lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
    logging.captureWarnings(True)
    for lg, _, _, handlers in saved:
        for old in handlers:
            lg.removeHandler(old)
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for lg, level, propagate, handlers in saved:
            lg.removeHandler(handler)
            for old in handlers:
                lg.addHandler(old)
            lg.setLevel(level)
            lg.propagate = propagate
        handler.close()


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
    # The version that already serves this very model (a rerun with unchanged inputs).
    already_serving: str | None = None
    # The blessing names a version that is no longer there (a cached gate; the version was deleted).
    already_serving_gone: str | None = None

    def lines(self) -> list:
        if self.pushed_path:
            pushed = self.pushed_path
        elif self.already_serving:
            pushed = f"nothing new: this model is already serving as {self.already_serving}"
        elif self.already_serving_gone:
            pushed = (
                f"no: the cached blessing says this model serves as {self.already_serving_gone}, "
                "which no longer exists; rerun with --no-cache to push it again"
            )
        else:
            pushed = "no (not blessed)"
        out = [f"blessed: {self.blessed}", f"pushed: {pushed}"]
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


def overall_metrics(evaluation_uri: str) -> tuple[dict, dict]:
    """Overall-slice metrics of a TFMA evaluation (via TFMA's loaders), as name -> float.

    Returns:
      (the candidate's metrics, the baseline model's metrics or {} when there is none).
    """
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.writers import eval_config_writer

    config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    names = {spec.is_baseline: spec.name for spec in config.model_specs}

    def overall(model_name):
        result = tfma.load_eval_result(evaluation_uri, model_name=model_name or None)
        for slice_key, metrics in result.slicing_metrics:
            if slice_key == ():
                values = metrics.get("", {}).get("", {})
                return {
                    name: float(v["doubleValue"])
                    for name, v in values.items()
                    if isinstance(v, dict) and "doubleValue" in v
                }
        return {}

    return overall(names.get(False)), overall(names[True]) if True in names else {}


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
    metrics, count_metrics = overall_metrics(evaluation_uri) if evaluation_uri else ({}, {})
    serving = mlmd.custom_property(blessing, ALREADY_SERVING_KEY) or None
    serving_exists = bool(serving) and os.path.isdir(
        mlmd.artifact_path(serving, config.pipeline_root)
    )
    return RunSummary(
        # A model already serving passed both verdicts; the gate withheld only the push.
        blessed=None
        if blessing is None
        else bool(mlmd.custom_property(blessing, "blessed")) or bool(serving),
        already_serving=serving if serving_exists else None,
        already_serving_gone=serving if serving and not serving_exists else None,
        pushed=is_pushed,
        pushed_path=mlmd.custom_property(pushed, "pushed_destination") if is_pushed else None,
        evaluation_uri=evaluation_uri,
        metrics=metrics,
        count_metrics=count_metrics,
        beats_count=None
        if blessing is None
        else bool(mlmd.custom_property(blessing, "beats_count")),
        timings=timings or {},
        log_file=log_file,
    )


def local_pipeline(config: PipelineConfig) -> Pipeline:
    """The pipeline (`pipeline.pipeline.create_pipeline`) with MLMD in <pipeline_root>/metadata.sqlite."""
    connection = sqlite_metadata_connection_config(config.metadata_path)
    return ccl4rec_pipeline.create_pipeline(config, metadata_connection_config=connection)


def run(config: PipelineConfig, echo=print) -> RunSummary:
    """Runs the whole pipeline with LocalDagRunner and returns its summary.

    TFX's own INFO logs go to <pipeline_root>/logs/run-<time>.log; the console gets progress lines.

    Raises:
      root_lock.PipelineRootLocked: another run holds `config.pipeline_root` (nothing ran).
    """
    with root_lock.hold(config.pipeline_root):
        return _run_locked(config, echo)


def _run_locked(config: PipelineConfig, echo) -> RunSummary:
    os.makedirs(os.path.join(config.pipeline_root, "logs"), exist_ok=True)
    log_file = os.path.join(
        config.pipeline_root, "logs", f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    )
    pipeline = local_pipeline(config)
    trim_beam_overhead()  # the in-process Beam stages (tf_ccl4rec/beam_overhead.py)
    # Importing tf_ccl4rec.tracing did this already; said here because a run whose Trainer
    # comes from the cache imports no model, and its Evaluator needs it as much.
    keep_autograph_out_of_keras()
    progress = _Progress(total=len(pipeline.components), echo=echo)
    watcher = _ExecutionWatcher(pipeline.metadata_connection_config, config.pipeline_name, progress)
    with _logs_to_file(log_file), watcher:
        LocalDagRunner().run(pipeline)
    summary = summarize(config, progress.timings, log_file)
    if summary.pushed or summary.already_serving:
        from serving.model_config import write_push_config

        # <serving_base>/models.config: what tensorflow_model_server / `ccl4rec serve` load.
        summary.models_config = write_push_config(
            config.serving_base, SERVING_MODEL_NAME, config.serving_version_policy
        )
    return summary
