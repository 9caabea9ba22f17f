"""Copies of schemas/schema.pbtxt with one field changed (to inject anomalies)."""

from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils

from pipeline.configs import DEFAULT_SCHEMA
from tf_ccl4rec import features as F


def schema_with_label_domain(path, low: int, high: int):
    schema = io_utils.parse_pbtxt_file(DEFAULT_SCHEMA, schema_pb2.Schema())
    for feature in schema.feature:
        if feature.name == F.LABEL:
            feature.int_domain.min = low
            feature.int_domain.max = high
    io_utils.write_pbtxt_file(str(path), schema)
    return path
