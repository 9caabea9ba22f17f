"""CCL4RecExampleGen: the TFX component wrapping the Beam example builder.

Output: one ``Examples`` artifact with splits ``train`` and ``eval`` as gzipped TFRecords of
``tf.Example`` (``Split-train/``, ``Split-eval/``, ``split_names`` set, payload format
FORMAT_TF_EXAMPLE), exactly what StatisticsGen / Transform expect from an ExampleGen, plus
``data_quality.json`` in the artifact directory. The Beam metric counters (namespace
``ccl4rec_data``) show in the runner's UI.

A custom BaseBeamComponent rather than a FileBasedExampleGen executor: FileBasedExampleGen
builds each split from its own input pattern or by hashing, while here both splits come out of
one per-user, time-ordered pass.

Caching: TFX's cache keys on parameters, so the component also takes ``input_fingerprint`` (size
and modification time of the raw-log files, computed when the pipeline is built): a changed raw
log reruns the builder, an unchanged one is reused.
"""

import json
import os
from typing import Any

from absl import logging
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

from tf_ccl4rec import features as F

EXAMPLES_KEY = "examples"
DATA_ROOT_KEY = "data_root"
MAX_HISTORY_KEY = "max_history"
STATIC_HISTORY_KEY = "static_history"
EVAL_FRACTION_KEY = "eval_fraction"
STRICT_KEY = "strict"
FEATURE_DIM_KEY = "feature_dim"
FINGERPRINT_KEY = "input_fingerprint"
SPLIT_NAMES = ("train", "eval")


class CCL4RecExampleGenSpec(types.ComponentSpec):
    """Parameters of `CCL4RecExampleGen` (booleans as 0/1 ints, which every orchestrator keeps)."""

    PARAMETERS = {
        DATA_ROOT_KEY: ExecutionParameter(type=str),
        MAX_HISTORY_KEY: ExecutionParameter(type=int),
        STATIC_HISTORY_KEY: ExecutionParameter(type=int),
        EVAL_FRACTION_KEY: ExecutionParameter(type=float),
        STRICT_KEY: ExecutionParameter(type=int),
        FEATURE_DIM_KEY: ExecutionParameter(type=int, optional=True),
        FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class Executor(base_beam_executor.BaseBeamExecutor):
    """Runs `BuildExamples` + `WriteExamples` into the output Examples artifact."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        from tf_ccl4rec.data import examples, quality

        self._log_startup(input_dict, output_dict, exec_properties)
        artifact = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        artifact.split_names = artifact_utils.encode_split_names(list(SPLIT_NAMES))
        feature_dim = exec_properties.get(FEATURE_DIM_KEY)
        options = examples.ExampleOptions(
            max_history=int(exec_properties[MAX_HISTORY_KEY]),
            static_history=bool(exec_properties[STATIC_HISTORY_KEY]),
            eval_fraction=float(exec_properties[EVAL_FRACTION_KEY]),
            strict=bool(exec_properties[STRICT_KEY]),
            feature_dim=int(feature_dim) if feature_dim else None,
        )
        data_root = exec_properties[DATA_ROOT_KEY]
        logging.info("CCL4RecExampleGen: %s -> %s (%s)", data_root, artifact.uri, options)
        pipeline = self._make_beam_pipeline()
        _ = (
            pipeline
            | "BuildExamples" >> examples.BuildExamples(data_root, options)
            | "WriteExamples" >> examples.WriteExamples(artifact.uri)
        )
        result = pipeline.run()
        result.wait_until_finish()
        _log_counters(result)
        examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(artifact, "tfrecords_gzip")
        report_path = os.path.join(artifact.uri, quality.REPORT_FILE)
        report = io_utils.read_string_file(report_path)
        logging.info("CCL4RecExampleGen data quality (%s):\n%s", report_path, report)
        quality.check_not_empty(json.loads(report), data_root)


def _log_counters(result) -> None:
    """Logs the builder's Beam counters (not every runner can be queried after the run)."""
    from apache_beam.metrics.metric import MetricsFilter

    from tf_ccl4rec.data import quality

    try:
        query = result.metrics().query(MetricsFilter().with_namespace(quality.METRICS_NAMESPACE))
    except (NotImplementedError, AttributeError) as err:
        logging.info("CCL4RecExampleGen: runner cannot report Beam counters (%s)", err)
        return
    for counter in sorted(query.get("counters", []), key=lambda c: c.key.metric.name):
        logging.info(
            "CCL4RecExampleGen counter %s = %s", counter.key.metric.name, counter.committed
        )


class CCL4RecExampleGen(base_beam_component.BaseBeamComponent):
    """Raw-log directory -> ``Examples`` (splits train / eval) for StatisticsGen and Transform.

    Args:
      data_root: raw-log directory (docs/data.md): interactions.csv [+ video features].
      max_history: newest clicks / non-clicks kept per history.
      static_history: THACIL protocol (the user's whole training history on every example).
      eval_fraction: per-user time split when the log has no ``split`` column.
      strict: a bad row fails the component instead of being counted and skipped.
      feature_dim: expected video-feature width (None: whatever the table has).
      input_fingerprint: cache key of the raw-log files; None computes it from ``data_root``.
    """

    SPEC_CLASS = CCL4RecExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        data_root: str,
        max_history: int = F.DEFAULT_MAX_HISTORY,
        static_history: bool = False,
        eval_fraction: float = 0.2,
        strict: bool = False,
        feature_dim: int | None = None,
        input_fingerprint: str | None = None,
    ):
        from tf_ccl4rec.data import examples, raw_log

        if input_fingerprint is None:
            try:
                input_fingerprint = raw_log.fingerprint(data_root)
            except Exception as err:  # e.g. gs:// without credentials when compiling for Kubeflow
                logging.warning(
                    "CCL4RecExampleGen: cannot fingerprint %s at pipeline definition (%s); "
                    "the cache keys on the path only",
                    data_root,
                    err,
                )

        # Validate here so a bad option fails at pipeline definition, not inside the executor.
        examples.ExampleOptions(max_history, static_history, eval_fraction, strict, feature_dim)
        spec = CCL4RecExampleGenSpec(
            data_root=data_root,
            max_history=int(max_history),
            static_history=int(bool(static_history)),
            eval_fraction=float(eval_fraction),
            strict=int(bool(strict)),
            feature_dim=feature_dim,
            input_fingerprint=input_fingerprint,
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)
