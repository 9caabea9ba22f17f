"""The raw-log layout: locating its files, parsing its rows, naming what is wrong with a bad row.

A raw-log directory (written by ``ccl4rec data synth`` and every importer, see docs/data.md)::

    interactions.csv          header required; user_id, video_id, timestamp, click
                              [, category][, split]   (split in {train, eval})
    video_features.npy        optional, float32 [V, F]
    video_feature_ids.txt     optional, one video id per line, row-aligned with the matrix

Everything here is pure Python (no Beam, no TensorFlow) so the Beam DoFns, the importers and the
Trainer's feature loader share one definition of a valid row.
"""

import csv
import io
import math
import os
from typing import NamedTuple

import numpy as np

from tf_ccl4rec import features as F

TRAIN = "train"
EVAL = "eval"
SPLITS = (TRAIN, EVAL)

# Bad-row kinds. Interaction rows: each bad row is counted under exactly one kind (the first
# check it fails, in this order), so kept + sum(kinds) == input rows.
NOT_UTF8 = "not_utf8"  # bytes that are not UTF-8: the row cannot be read as text
FIELD_TOO_LONG = "field_too_long"  # a field longer than MAX_FIELD_CHARS
MALFORMED_CSV = "malformed_csv"  # the csv module cannot parse the line (e.g. a NUL byte)
MISSING_FIELD = "missing_field"  # wrong number of fields, or an empty required field
NON_NUMERIC_TIMESTAMP = "non_numeric_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"  # outside int64, all tf.Example can store
BAD_CLICK = "click_not_0_1"
BAD_SPLIT = "split_not_train_eval"  # only when the optional split column is present
DUPLICATE_ROW = "duplicate_row"  # identical parsed row seen before; the first copy is kept
UNKNOWN_VIDEO = "unknown_video_id"  # not in the (valid rows of the) video-feature table
INTERACTION_KINDS = (
    NOT_UTF8,
    FIELD_TOO_LONG,
    MALFORMED_CSV,
    MISSING_FIELD,
    NON_NUMERIC_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    BAD_CLICK,
    BAD_SPLIT,
    DUPLICATE_ROW,
    UNKNOWN_VIDEO,
)
# Video-feature rows: kept + sum(kinds) == rows of the feature table.
NON_FINITE_FEATURE = "non_finite_feature"  # NaN or +-inf anywhere in the vector
WRONG_FEATURE_WIDTH = "wrong_feature_width"
DUPLICATE_FEATURE_ID = "duplicate_feature_id"  # a second row for an id; the first is kept
FEATURE_KINDS = (NON_FINITE_FEATURE, WRONG_FEATURE_WIDTH, DUPLICATE_FEATURE_ID)

# Ids and categories become vocabulary entries and serving inputs; longer than this is not an id.
MAX_FIELD_CHARS = 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Interaction(NamedTuple):
    """One parsed exposure. ``category``/``split`` are "" when absent."""

    user_id: str
    video_id: str
    timestamp: int
    click: int
    category: str = ""
    split: str = ""


_STRICT_PREFIX = "strict: bad input row"


class BadRowError(ValueError):
    """A bad row met under ``strict``: the message names the kind, where it is, and the row."""

    def __init__(self, kind: str, row: str | bytes, where: str | None = None):
        at = f" at {where}" if where else ""
        super().__init__(f"{_STRICT_PREFIX} ({kind}){at}: {row[:200]!r}")
        self.kind = kind

    @classmethod
    def from_message(cls, message: str) -> "BadRowError":
        """Rebuilds the error from its message (as recovered by `strict_error_message`)."""
        err = cls.__new__(cls)
        ValueError.__init__(err, message)
        err.kind = message[len(_STRICT_PREFIX) + 2 :].split(")", 1)[0]
        return err


def strict_error_message(text: str) -> str | None:
    """The `BadRowError` message inside a runner's wrapped error text, or None.

    Beam runners re-raise a DoFn's exception as their own type with the DoFn's message and
    a ``[while running ...]`` suffix; this recovers the plain message for the CLI.
    """
    start = text.find(_STRICT_PREFIX)
    if start < 0:
        return None
    end = text.find(" [while running", start)
    return text[start : end if end >= 0 else len(text)].splitlines()[0]


def find_line(path: str, data: bytes) -> int | None:
    """1-based number of the first line of ``path`` equal to ``data`` (for strict errors only).

    Beam reads a file in parallel bundles without line numbers, so a strict failure finds its
    line by scanning the file once, on the error path.
    """
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        for number, line in enumerate(f, start=1):
            if line.rstrip(b"\r\n") == data:
                return number
    return None


class RawLogPaths(NamedTuple):
    interactions: str
    video_features: str | None
    video_feature_ids: str | None


def raw_log_paths(data_root: str) -> RawLogPaths:
    """Locates the files of a raw-log directory (any Beam filesystem: local, gs://, ...).

    Args:
      data_root: the raw-log directory.

    Returns:
      The paths; the feature paths are None when the directory has no feature table.

    Raises:
      FileNotFoundError: no interactions.csv, or only one of the two feature-table files.
    """
    from apache_beam.io.filesystems import FileSystems

    join = FileSystems.join
    interactions = join(data_root, F.RAW_INTERACTIONS_FILE)
    if not FileSystems.exists(interactions):
        raise FileNotFoundError(f"raw log {data_root!r} has no {F.RAW_INTERACTIONS_FILE}")
    feats = join(data_root, F.RAW_VIDEO_FEATURES_FILE)
    ids = join(data_root, F.RAW_VIDEO_FEATURE_IDS_FILE)
    has_feats, has_ids = FileSystems.exists(feats), FileSystems.exists(ids)
    if has_feats != has_ids:
        raise FileNotFoundError(
            f"raw log {data_root!r}: {F.RAW_VIDEO_FEATURES_FILE} and "
            f"{F.RAW_VIDEO_FEATURE_IDS_FILE} must both be present or both absent"
        )
    return RawLogPaths(interactions, feats if has_feats else None, ids if has_ids else None)


def fingerprint(data_root: str) -> str:
    """Size and modification time of every raw-log file, hashed: changes when the data does.

    Pipelines pass it to the example builder as a parameter so TFX's cache (which keys on
    parameters, not on file contents) reruns the builder when the raw log changes.
    """
    import hashlib

    from apache_beam.io.filesystems import FileSystems

    paths = raw_log_paths(data_root)
    digest = hashlib.sha256()
    for path in (paths.interactions, paths.video_features, paths.video_feature_ids):
        if path is None:
            continue
        meta = FileSystems.match([path])[0].metadata_list[0]
        digest.update(f"{path}|{meta.size_in_bytes}|{meta.last_updated_in_seconds}\n".encode())
    return digest.hexdigest()[:16]


def read_header(interactions_path: str) -> list[str]:
    """Reads and checks the CSV header (at pipeline construction, not inside a DoFn).

    Args:
      interactions_path: path of interactions.csv.

    Returns:
      The column names, in file order.

    Raises:
      ValueError: empty file, a required column missing, or a column named twice.
    """
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(interactions_path) as f:
        first_bytes = f.readline()  # bytes: a bad byte in a later row must not fail the header
    try:
        first = first_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{interactions_path}: header line is not UTF-8 ({err})") from None
    if not first.strip():
        raise ValueError(f"{interactions_path}: empty file (a header line is required)")
    header = [c.strip() for c in next(csv.reader([first]))]
    missing = [c for c in F.RAW_REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{interactions_path}: header {header} lacks required column(s) {missing}; "
            f"required: {list(F.RAW_REQUIRED_COLUMNS)}"
        )
    if len(set(header)) != len(header):
        raise ValueError(f"{interactions_path}: duplicate column in header {header}")
    return header


def parse_timestamp(text: str) -> int | None:
    """Integer timestamp from an int or finite float string; None when not numeric."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if math.isfinite(value) else None


def timestamp_kind(text: str) -> tuple[int | None, str | None]:
    """``(timestamp, None)`` for a usable timestamp, else ``(None, bad kind)``."""
    value = parse_timestamp(text)
    if value is None:
        return None, NON_NUMERIC_TIMESTAMP
    if not INT64_MIN <= value <= INT64_MAX:
        return None, TIMESTAMP_OUT_OF_RANGE
    return value, None


def parse_click(text: str) -> int | None:
    """0 or 1 from "0"/"1" (or "0.0"/"1.0"); None otherwise."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value in (0.0, 1.0) else None


def parse_raw_line(data: bytes, header: list[str]) -> tuple[Interaction | None, str | None]:
    """`parse_line` on the bytes of one line; bytes that are not UTF-8 are a NOT_UTF8 row."""
    try:
        line = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, NOT_UTF8
    return parse_line(line, header)


def parse_line(line: str, header: list[str]) -> tuple[Interaction | None, str | None]:
    """Parses one CSV data line of interactions.csv.

    Args:
      line: the raw text line (no trailing newline).
      header: column names from `read_header`.

    Returns:
      ``(interaction, None)`` for a good row, ``(None, kind)`` for a bad one, where kind is one
      of the interaction kinds up to BAD_SPLIT (`INTERACTION_KINDS`).
    """
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error as err:
        # The csv module's own size limit (128 KiB) is reported through its error text only.
        return None, FIELD_TOO_LONG if "field limit" in str(err) else MALFORMED_CSV
    if any(len(value) > MAX_FIELD_CHARS for value in fields):
        return None, FIELD_TOO_LONG
    if len(fields) != len(header):
        return None, MISSING_FIELD
    row = {name: value.strip() for name, value in zip(header, fields, strict=True)}
    if any(not row[c] for c in F.RAW_REQUIRED_COLUMNS):
        return None, MISSING_FIELD
    timestamp, kind = timestamp_kind(row[F.RAW_TIMESTAMP])
    if kind is not None:
        return None, kind
    click = parse_click(row[F.RAW_CLICK])
    if click is None:
        return None, BAD_CLICK
    split = row.get(F.RAW_SPLIT, "")
    if F.RAW_SPLIT in row and split not in SPLITS:
        return None, BAD_SPLIT
    return (
        Interaction(
            row[F.RAW_USER_ID],
            row[F.RAW_VIDEO_ID],
            timestamp,
            click,
            row.get(F.RAW_CATEGORY, ""),
            split,
        ),
        None,
    )


def feature_row_kind(vector: np.ndarray, width: int) -> str | None:
    """The bad kind of one feature-table row, or None when it is usable.

    Args:
      vector: the row (any shape; a (1, F) row from a per-video file counts as width F).
      width: the expected feature width.
    """
    flat = np.asarray(vector).reshape(-1) if np.ndim(vector) <= 2 else None
    if flat is None or (np.ndim(vector) == 2 and np.shape(vector)[0] != 1):
        return WRONG_FEATURE_WIDTH
    if flat.shape[0] != width:
        return WRONG_FEATURE_WIDTH
    if not np.all(np.isfinite(flat)):
        return NON_FINITE_FEATURE
    return None


def load_video_features(data_dir: str) -> tuple[list[str], np.ndarray] | None:
    """Loads the video-feature table of a raw-log directory, keeping only its valid rows.

    The same validity rules as the example builder: rows with NaN/inf and second rows of an id
    are dropped (the builder counts them and drops their interactions as unknown videos), so
    every video id in the examples has a row here when the table exists.

    Args:
      data_dir: the raw-log directory (local or any TF filesystem path).

    Returns:
      ``(ids, matrix)`` with ``matrix`` float32 [len(ids), F] row-aligned with ``ids``, or None
      when the directory has no feature table.

    Raises:
      ValueError: the matrix is not 2-D or its row count differs from the id list's.
    """
    import tensorflow as tf

    feats = os.path.join(data_dir, F.RAW_VIDEO_FEATURES_FILE)
    ids_path = os.path.join(data_dir, F.RAW_VIDEO_FEATURE_IDS_FILE)
    if not (tf.io.gfile.exists(feats) and tf.io.gfile.exists(ids_path)):
        return None
    if "://" in feats:  # remote filesystem: read through TF's gfile
        with tf.io.gfile.GFile(feats, "rb") as f:
            matrix = np.load(io.BytesIO(f.read()), allow_pickle=False)
    else:  # local: memory-map so only the kept rows are copied
        matrix = np.load(feats, mmap_mode="r", allow_pickle=False)
    with tf.io.gfile.GFile(ids_path, "r") as f:
        ids = f.read().splitlines()
    check_feature_table_shape(matrix.shape, len(ids), feats)
    keep = np.all(np.isfinite(matrix), axis=1)
    seen: set[str] = set()
    for i, vid in enumerate(ids):
        if vid in seen:
            keep[i] = False
        seen.add(vid)
    return [v for v, k in zip(ids, keep, strict=True) if k], matrix[keep].astype(np.float32)


def check_feature_table_shape(shape: tuple, n_ids: int, where: str) -> None:
    """Raises ValueError unless the matrix is 2-D with one row per id (a structural error)."""
    if len(shape) != 2:
        raise ValueError(f"{where}: feature matrix must be 2-D [videos, features], got {shape}")
    if shape[0] != n_ids:
        raise ValueError(
            f"{where}: {shape[0]} feature rows but {n_ids} ids in {F.RAW_VIDEO_FEATURE_IDS_FILE}"
        )
