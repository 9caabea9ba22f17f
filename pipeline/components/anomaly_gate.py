"""Stops the pipeline before Transform/Trainer when ExampleValidator found anomalies.

ExampleValidator only records anomalies (and a `blessed` property); TFX has no built-in way to fail
the run on them, so this small component reads its output and raises with every anomaly named.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies
from tfx.utils import io_utils


class DataAnomaliesError(RuntimeError):
    """The examples do not match schemas/schema.pbtxt."""


def describe_anomalies(anomalies_uri: str, split_names) -> list[str]:
    """One line per anomaly: split, feature and TFDV's description."""
    problems = []
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", "SchemaDiff.pb")
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(path))
        for feature, info in sorted(anomalies.anomaly_info.items()):
            problems.append(
                f"[{split}] feature '{feature}': {info.description or info.short_description}"
            )
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            problems.append(f"[{split}] dataset: {info.description or info.short_description}")
    return problems


@component
def AnomalyGate(
    anomalies: InputArtifact[ExampleAnomalies],
):
    """Raises DataAnomaliesError naming each anomaly; passes silently when there is none."""
    splits = standard_artifact_utils.decode_split_names(anomalies.split_names)
    problems = describe_anomalies(anomalies.uri, splits)
    if problems:
        raise DataAnomaliesError(
            "ExampleValidator found anomalies against schemas/schema.pbtxt; training was not started:\n  "
            + "\n  ".join(problems)
        )
