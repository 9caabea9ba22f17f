"""Builders of small real artifacts for tests and benchmarks (no pipeline run needed).

`build_serving_model` analyzes a handful of raw examples with TFT (the same preprocessing_fn and
schema as the pipeline), builds an untrained or briefly trained CCL4RecModel and exports it with
`export_serving_model`: a real serving SavedModel in seconds.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx.utils import io_utils

from tf_ccl4rec import features as F
from tf_ccl4rec.config import CCL4RecConfig
from tf_ccl4rec.export import export_serving_model
from tf_ccl4rec.model import CCL4RecModel
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME, preprocessing_fn

SCHEMA_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas", "schema.pbtxt"
)


def raw_feature_spec() -> dict:
    schema = io_utils.parse_pbtxt_file(SCHEMA_PATH, schema_pb2.Schema())
    return schema_utils.schema_as_feature_spec(schema).feature_spec


def random_raw_rows(num_rows=200, num_videos=30, num_users=12, max_history=8, seed=0) -> list:
    """Raw example dicts as TFT's Beam implementation takes them (scalars as [1] lists)."""
    rng = np.random.default_rng(seed)
    spec = raw_feature_spec()
    rows = []
    for i in range(num_rows):
        clicks = [
            f"v{j}".encode() for j in rng.integers(0, num_videos, rng.integers(0, max_history))
        ]
        row = {
            F.USER_ID: [f"u{rng.integers(num_users)}".encode()],
            F.VIDEO_ID: [f"v{rng.integers(num_videos)}".encode()],
            F.LABEL: [int(rng.integers(2))],
            F.TIMESTAMP: [i],
            F.CLICK_HISTORY: clicks,
            F.NONCLICK_HISTORY: [f"v{j}".encode() for j in rng.integers(0, num_videos, 2)],
        }
        for name, feature_spec in spec.items():
            if name not in row:  # optional features (category, slice buckets)
                row[name] = [] if not isinstance(feature_spec, tf.io.FixedLenFeature) else [b""]
        rows.append(row)
    return rows


def analyze(rows, transform_dir, settings=None):
    """Runs TFT analyze + transform on rows; returns (TFTransformOutput, transformed rows)."""
    from tf_ccl4rec.beam_overhead import trim_beam_overhead

    trim_beam_overhead()  # as `ccl4rec pipeline run` does
    spec = raw_feature_spec()
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
        (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, settings), output_record_batches=False
        )
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    # What TFX's Transform also writes: the raw metadata (serving parses raw examples with it).
    metadata_io.write_metadata(
        metadata, os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR)
    )
    return tft.TFTransformOutput(transform_dir), transformed


def build_serving_model(
    workdir,
    model_overrides=None,
    settings=None,
    train_steps=0,
    seed=0,
    data_seed=0,
    export_dir=None,
    num_categories=0,
    transform=None,
):
    """A real serving SavedModel at `export_dir` (default <workdir>/export; TFT output in
    <workdir>/transform). `data_seed` fixes the data (hence the vocabulary), `seed` the weights.
    `num_categories` > 0 gives the videos random categories 1..num_categories - 1 (0 = none) for
    the `category_statistics` of the model overrides. `transform`: the (TFTransformOutput,
    transformed rows) an earlier `analyze` of these rows and settings returned, reused instead of
    analyzing again (the tests share one).

    Returns:
      (export_dir, model, tft_output, transformed rows)
    """
    settings = {"max_history": 8, **(settings or {})}
    tft_output, transformed = transform or analyze(
        random_raw_rows(seed=data_seed), os.path.join(workdir, "transform"), settings
    )
    values = {
        "embedding_dim": 8,
        "mlp_units": [8],
        "num_substitutes": 10,
        "num_positives": 2,
        "num_negatives": 2,
        "batch_size": 16,
        **(model_overrides or {}),
        "vocab_size": tft_output.vocabulary_size_by_name(VIDEO_VOCAB_NAME),
        "num_oov_buckets": settings.get("num_oov_buckets", 1),
        "max_history": settings["max_history"],
    }
    tf.keras.utils.set_random_seed(seed)
    config = CCL4RecConfig.from_dict(values)
    categories = None
    if num_categories:
        categories = np.random.default_rng(data_seed).integers(
            0, num_categories, config.num_embeddings
        )
        categories[0] = 0
    model = CCL4RecModel(config, video_categories=categories)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    columns = {k: np.stack([np.asarray(r[k]) for r in transformed]) for k in transformed[0]}
    if train_steps:
        dataset = tf.data.Dataset.from_tensor_slices(columns).repeat().batch(16)
        model.fit(dataset, steps_per_epoch=train_steps, epochs=1, verbose=0)
    else:
        model({k: v[:2] for k, v in columns.items()})
    export_dir = export_serving_model(
        model, tft_output, export_dir or os.path.join(workdir, "export")
    )
    return export_dir, model, tft_output, transformed


def vocabulary(tft_output) -> list:
    """The video vocabulary of a Transform output, as str ids in index order."""
    return [v.decode() for v in tft_output.vocabulary_by_name(VIDEO_VOCAB_NAME)]


def serialize_raw_row(row: dict) -> bytes:
    """A raw row (feature -> list of bytes or ints, as `random_raw_rows` makes) as a tf.Example."""
    example = tf.train.Example()
    for name, values in row.items():
        feature = example.features.feature[name]
        if values and isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        elif values:
            feature.int64_list.value.extend(values)
    return example.SerializeToString()


def write_transformed_examples(rows, path: str) -> None:
    """Writes transformed rows (feature name -> array) as tf.Examples to one TFRecord file: the
    Trainer's input for tests that run `run_fn` / `tuner_fn` without the Transform component."""
    with tf.io.TFRecordWriter(path) as writer:
        for row in rows:
            feats = {}
            for name, value in row.items():
                value = np.asarray(value).reshape(-1)
                if value.dtype.kind == "f":
                    feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=value))
                else:
                    feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=value))
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()
            )
