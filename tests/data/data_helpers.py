"""Helpers for the data tests: write tiny raw logs, read written splits."""

import glob
import os

import numpy as np

from tf_ccl4rec import features as F


def write_log(directory, rows, header=None, features=None):
    """Writes interactions.csv (rows are lists of strings or raw lines) and optional features.

    Args:
      directory: target dir (created).
      rows: each a list of fields (joined with commas) or a str line written verbatim.
      header: column names (default: the four required columns).
      features: optional (ids, matrix) written as the video-feature table.
    """
    os.makedirs(directory, exist_ok=True)
    header = header or list(F.RAW_REQUIRED_COLUMNS)
    lines = [",".join(header)]
    lines += [r if isinstance(r, str) else ",".join(str(x) for x in r) for r in rows]
    with open(os.path.join(directory, F.RAW_INTERACTIONS_FILE), "w") as f:
        f.write("\n".join(lines) + "\n")
    if features is not None:
        ids, matrix = features
        np.save(os.path.join(directory, F.RAW_VIDEO_FEATURES_FILE), np.asarray(matrix))
        with open(os.path.join(directory, F.RAW_VIDEO_FEATURE_IDS_FILE), "w") as f:
            f.write("\n".join(ids) + "\n")
    return str(directory)


def read_split(out_dir, split):
    """Decoded examples of one split written by WriteExamples."""
    import tensorflow as tf

    from tf_ccl4rec.data.examples import decode_example

    files = sorted(glob.glob(os.path.join(out_dir, f"Split-{split}", "*.gz")))
    assert files, f"no files in Split-{split}"
    data = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [decode_example(r.numpy()) for r in data]
