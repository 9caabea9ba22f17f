"""Importers: real dataset layouts -> the raw-log layout (see docs/data.md).

Importers convert layout, not quality: a row they can read is written through (with its fields
blanked when it cannot be mapped) so the example builder counts it. What they cannot read is
counted in ``import_report.json`` under ``interactions.bad_rows`` and skipped (fatal under
``strict``, naming the file and line): lines that are not UTF-8, or that the csv module cannot
parse. Feature vectors that cannot fit the output matrix (wrong width) are counted the same way,
and the builder then counts their interactions as unknown videos. RecBole's label rule and
timestamps are computed here, so its rows that fail them are counted here too.

Every importer writes through `staging.staged_directory`: an output overlapping an input or
not empty (unless ``overwrite``) is refused, and the output appears only when complete.
"""

import collections
import csv
import functools
import glob
import inspect
import json
import math
import operator
import os
import re
from typing import NamedTuple

import numpy as np

from tf_ccl4rec import features as F
from tf_ccl4rec.data import quality, raw_log, staging

FORMATS = ("microvideo", "kuaishou", "csv", "recbole")
IMPORT_REPORT_FILE = "import_report.json"
KUAISHOU_FEATURE_DIM = 2048
KUAISHOU_COLUMNS = (
    "user_id",
    "photo_id",
    "click",
    "like",
    "follow",
    "time",
    "playing_time",
    "duration_time",
)
MICROVIDEO_COLUMNS = ("user_id", "item_id", "cate_id", "is_click", "timestamp")
_PROGRESS_EVERY = 1_000_000
UNREADABLE_FEATURE_FILE = "unreadable_feature_file"  # kuaishou: a per-photo .npy np.load rejects


class _LogWriter:
    """Writes interactions.csv with the canonical column order, reporting progress."""

    def __init__(self, out_dir: str, columns: tuple[str, ...], progress):
        os.makedirs(out_dir, exist_ok=True)
        self._f = open(os.path.join(out_dir, F.RAW_INTERACTIONS_FILE), "w", newline="")
        self._w = csv.writer(self._f)
        self._w.writerow(columns)
        self._say = progress
        self.rows = 0

    def write(self, row):
        self._w.writerow(row)
        self.rows += 1
        if self.rows % _PROGRESS_EVERY == 0:
            self._say(f"import: {self.rows:,} rows")

    def close(self):
        self._f.close()


def _quiet(_msg):
    pass


class _Ledger:
    """Rows read by an importer: written, or counted under the reason they were skipped."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.input_rows = 0
        self.kept_rows = 0
        self.bad_rows: collections.Counter = collections.Counter()

    def bad(self, kind: str, path: str, line: int | None, row: str | bytes = "") -> None:
        """Counts one skipped row; under ``strict`` raises naming the file and line instead."""
        if self.strict:
            raise raw_log.BadRowError(kind, row, f"{path} line {line}")
        self.bad_rows[kind] += 1

    def as_dict(self) -> dict:
        bad = dict(sorted(self.bad_rows.items()))
        return {
            "input_rows": self.input_rows,
            "kept_rows": self.kept_rows,
            "bad_rows": bad,
            "reconciles": self.input_rows == self.kept_rows + sum(bad.values()),
        }


def _decoded_lines(path: str, ledger: _Ledger, headed: bool = True):
    """``(line_number, text)`` of a text file, newline kept; a non-UTF-8 line is a bad row.

    Line 1 of a headed file must decode (a header is structure, not a row).
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                if headed and number == 1:
                    raise ValueError(f"{path}: line 1 is not UTF-8") from None
                ledger.input_rows += 1
                ledger.bad(raw_log.NOT_UTF8, path, number, raw.rstrip(b"\r\n"))


def _csv_records(path: str, ledger: _Ledger):
    """``(header, records)`` of a headed CSV; records the csv module cannot parse are bad rows.

    Records are parsed across lines (quoted newlines allowed); each record read counts as an
    input row.
    """
    numbered = _decoded_lines(path, ledger)
    state = {"line": 0}

    def texts():
        for number, text in numbered:
            state["line"] = number
            yield text

    reader = csv.reader(texts())
    header = [h.strip() for h in next(reader, [])]

    def records():
        try:
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as err:  # the reader resumes at the next line
                    ledger.input_rows += 1
                    too_long = "field limit" in str(err)
                    kind = raw_log.FIELD_TOO_LONG if too_long else raw_log.MALFORMED_CSV
                    ledger.bad(kind, path, state["line"], str(err))
                    continue
                ledger.input_rows += 1
                yield fields
        finally:
            numbered.close()  # closes the file

    return header, records()


def _raise_empty(name: str, src: str, ledger: dict) -> None:
    bad = ", ".join(f"{k}={v}" for k, v in ledger["bad_rows"].items()) or "none"
    why = "it has no data rows" if not ledger["input_rows"] else f"none was kept; bad rows: {bad}"
    raise quality.EmptyDataError(
        f"{name}: nothing imported from {src}: {ledger['input_rows']} input rows; {why}"
    )


def _staged(importer):
    """Runs ``importer(src, out, ...)`` into a staged ``out`` (see `staging`).

    Adds the keyword ``overwrite`` (replace a non-empty ``out`` whole); ``src`` and any
    ``features`` / ``feature_ids`` paths are the inputs ``out`` must not overlap.
    """
    signature = inspect.signature(importer)

    @functools.wraps(importer)
    def wrapper(*args, overwrite: bool = False, **kwargs):
        bound = signature.bind(*args, **kwargs)
        given = bound.arguments
        inputs = [given.get(name) for name in ("src", "features", "feature_ids")]
        with staging.staged_directory(given["out"], inputs, overwrite) as build_dir:
            given["out"] = build_dir
            summary = importer(*bound.args, **bound.kwargs)
            if summary["rows"] == 0:  # raised inside: the empty output is discarded
                _raise_empty(importer.__name__, given["src"], summary["interactions"])
            return summary

    return wrapper


def _write_ids(out_dir: str, ids) -> None:
    with open(os.path.join(out_dir, F.RAW_VIDEO_FEATURE_IDS_FILE), "w") as f:
        for vid in ids:
            f.write(f"{vid}\n")


def _copy_rows(dst: np.ndarray, dst_start: int, src: np.ndarray, chunk: int = 65536) -> None:
    for i in range(0, src.shape[0], chunk):
        part = src[i : i + chunk]
        dst[dst_start + i : dst_start + i + part.shape[0]] = part


def _copy_matrix_features(matrix_path: str, ids_path: str, out_dir: str) -> int:
    """Copies a feature matrix + id list into the layout (float32); returns rows."""
    matrix = np.load(matrix_path, mmap_mode="r")
    with open(ids_path) as f:
        ids = [line.strip() for line in f if line.strip()]
    raw_log.check_feature_table_shape(matrix.shape, len(ids), matrix_path)
    out = np.lib.format.open_memmap(
        os.path.join(out_dir, F.RAW_VIDEO_FEATURES_FILE), "w+", np.float32, matrix.shape
    )
    _copy_rows(out, 0, matrix)
    out.flush()
    _write_ids(out_dir, ids)
    return len(ids)


def _write_report(out_dir: str, report: dict) -> None:
    with open(os.path.join(out_dir, IMPORT_REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)


# --- MicroVideo-1.7M ---------------------------------------------------------------------------


def _offset_id(text: str, offset: int) -> str:
    try:
        return str(int(text) + offset)
    except ValueError:
        return text  # not an integer id: left for the builder (unknown video if features exist)


@_staged
def import_microvideo(src: str, out: str, strict: bool = False, progress=print) -> dict:
    """Imports MicroVideo-1.7M as THACIL distributes it.

    ``train_data.csv`` / ``test_data.csv`` (``user_id,item_id,cate_id,is_click,timestamp``) become
    one log with ``split`` train / eval; ``train_cover_image_feature.npy`` (row = train item id)
    and ``test_cover_image_feature.npy`` (row = test item id, restarting at 0) become one table.
    Test item ids are shifted by the number of train feature rows (or, without features, by
    1 + the largest train item id) so they cannot collide with train ids.

    Args:
      src: directory holding the THACIL files.
      out: raw-log directory to write.
      strict: an unreadable row raises (naming file and line) instead of being counted.
      progress: callable(str) for progress lines.
      overwrite: (keyword) replace a non-empty ``out`` whole.

    Returns:
      Summary: rows, feature_rows, test_item_offset, and the ``interactions`` ledger.
    """
    say = progress or _quiet
    paths = {s: os.path.join(src, f"{s}_data.csv") for s in ("train", "test")}
    for p in paths.values():
        if not os.path.exists(p):
            raise FileNotFoundError(f"microvideo: {p} not found")
    feat_paths = {s: os.path.join(src, f"{s}_cover_image_feature.npy") for s in ("train", "test")}
    has_feats = [os.path.exists(p) for p in feat_paths.values()]
    if any(has_feats) and not all(has_feats):
        raise FileNotFoundError(f"microvideo: need both of {list(feat_paths.values())} or neither")
    mats = {s: np.load(p, mmap_mode="r") for s, p in feat_paths.items()} if all(has_feats) else {}
    for s, m in mats.items():
        if m.ndim != 2:
            raise ValueError(f"microvideo: {feat_paths[s]} must be 2-D, got shape {m.shape}")
    if mats and mats["train"].shape[1] != mats["test"].shape[1]:
        raise ValueError(
            f"microvideo: train/test feature widths differ: {mats['train'].shape[1]} vs "
            f"{mats['test'].shape[1]}"
        )
    if mats:
        offset = mats["train"].shape[0]
    else:
        first_pass = _dict_rows(paths["train"], ("item_id",), _Ledger(strict=False))
        offset = 1 + max(
            (int(r["item_id"]) for r in first_pass if r and r["item_id"].isdigit()), default=-1
        )
    columns = (F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_TIMESTAMP, F.RAW_CLICK, F.RAW_CATEGORY)
    writer = _LogWriter(out, (*columns, F.RAW_SPLIT), say)
    ledger = _Ledger(strict)
    try:
        for source, split, shift in (("train", raw_log.TRAIN, 0), ("test", raw_log.EVAL, offset)):
            say(f"microvideo: reading {paths[source]}")
            for row in _dict_rows(paths[source], MICROVIDEO_COLUMNS, ledger):
                if row is None:  # wrong field count: blank row, counted by the builder
                    writer.write(("",) * len(columns) + (split,))
                    continue
                writer.write(
                    (
                        row["user_id"],
                        _offset_id(row["item_id"], shift),
                        row["timestamp"],
                        row["is_click"],
                        row["cate_id"],
                        split,
                    )
                )
    finally:
        writer.close()
    feature_rows = 0
    if mats:
        n_train, n_test = mats["train"].shape[0], mats["test"].shape[0]
        shape = (n_train + n_test, mats["train"].shape[1])
        say(f"microvideo: writing feature table {shape}")
        table = np.lib.format.open_memmap(
            os.path.join(out, F.RAW_VIDEO_FEATURES_FILE), "w+", np.float32, shape
        )
        _copy_rows(table, 0, mats["train"])
        _copy_rows(table, n_train, mats["test"])
        table.flush()
        _write_ids(out, [*range(n_train), *range(offset, offset + n_test)])
        feature_rows = shape[0]
    ledger.kept_rows = writer.rows
    summary = {
        "rows": writer.rows,
        "feature_rows": feature_rows,
        "test_item_offset": offset,
        "interactions": ledger.as_dict(),
    }
    _write_report(out, {"format": "microvideo", **summary})
    return summary


def _dict_rows(path: str, required: tuple[str, ...], ledger: _Ledger):
    """Rows of a headed CSV as dicts; None for a row whose field count differs from the header."""
    header, records = _csv_records(path, ledger)
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{path}: header {header} lacks column(s) {missing}")
    for fields in records:
        yield dict(zip(header, fields, strict=True)) if len(fields) == len(header) else None


# --- Kuaishou ------------------------------------------------------------------------------------


@_staged
def import_kuaishou(
    src: str,
    out: str,
    features: str | None = None,
    feature_ids: str | None = None,
    feature_dim: int = KUAISHOU_FEATURE_DIM,
    strict: bool = False,
    progress=print,
) -> dict:
    """Imports the Kuaishou competition layout.

    ``train_interaction.txt`` (tab-separated, no header: user_id, photo_id, click, like, follow,
    time, playing_time, duration_time) becomes the log (no split column: the builder splits per
    user by time). Visual features, optional: a folder of ``<photo_id>.npy`` files of shape
    (1, feature_dim) (default: ``final_visual_train/`` and ``final_visual_test/`` under src when
    present), or one ``.npy`` matrix with an id list (``feature_ids``, one id per line).

    Args:
      src: directory holding train_interaction.txt.
      out: raw-log directory to write.
      features: a folder of per-photo .npy files, or a .npy matrix.
      feature_ids: id list of a matrix ``features``.
      feature_dim: expected width of per-photo vectors; others are counted as wrong width.
      strict: a wrong-width vector or an unreadable row raises (naming the file and line)
        instead of being counted and skipped.
      progress: callable(str) for progress lines.
      overwrite: (keyword) replace a non-empty ``out`` whole.

    Returns:
      Summary: rows, feature_rows, the ``interactions`` ledger, and the per-photo feature
      ledger when a folder was read.
    """
    say = progress or _quiet
    log_path = os.path.join(src, "train_interaction.txt")
    if not os.path.exists(log_path):
        raise FileNotFoundError(f"kuaishou: {log_path} not found")
    columns = (F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_TIMESTAMP, F.RAW_CLICK)
    writer = _LogWriter(out, columns, say)
    ledger = _Ledger(strict)
    idx = {c: i for i, c in enumerate(KUAISHOU_COLUMNS)}
    try:
        for _, line in _decoded_lines(log_path, ledger, headed=False):
            ledger.input_rows += 1
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(KUAISHOU_COLUMNS):
                writer.write(("",) * len(columns))  # counted as missing_field by the builder
                continue
            writer.write(
                (
                    fields[idx["user_id"]],
                    fields[idx["photo_id"]],
                    fields[idx["time"]],
                    fields[idx["click"]],
                )
            )
    finally:
        writer.close()
    ledger.kept_rows = writer.rows
    summary: dict = {"rows": writer.rows, "feature_rows": 0, "interactions": ledger.as_dict()}
    folders = []
    if features is None:
        folders = [
            d
            for d in (os.path.join(src, n) for n in ("final_visual_train", "final_visual_test"))
            if os.path.isdir(d)
        ]
    elif os.path.isdir(features):
        folders = [features]
    elif features is not None:
        if feature_ids is None:
            raise ValueError("kuaishou: a feature matrix needs --feature-ids (one id per line)")
        summary["feature_rows"] = _copy_matrix_features(features, feature_ids, out)
    if folders:
        ledger = _import_per_photo_features(folders, out, feature_dim, strict, say)
        summary["feature_rows"] = ledger["kept_rows"]
        summary["video_features"] = ledger
    _write_report(out, {"format": "kuaishou", **summary})
    return summary


def _import_per_photo_features(folders, out, width, strict, say) -> dict:
    files = sorted(p for d in folders for p in glob.glob(os.path.join(d, "*.npy")))
    say(f"kuaishou: reading {len(files):,} per-photo feature files")
    table = np.lib.format.open_memmap(
        os.path.join(out, F.RAW_VIDEO_FEATURES_FILE), "w+", np.float32, (max(len(files), 1), width)
    )
    ids, bad = [], collections.Counter()
    for i, path in enumerate(files):
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:  # truncated, not .npy, pickled objects
            if strict:
                raise raw_log.BadRowError(UNREADABLE_FEATURE_FILE, f"{path}: {err}") from err
            bad[UNREADABLE_FEATURE_FILE] += 1
            continue
        if raw_log.feature_row_kind(vector, width) == raw_log.WRONG_FEATURE_WIDTH:
            if strict:
                raise raw_log.BadRowError(raw_log.WRONG_FEATURE_WIDTH, f"{path} {vector.shape}")
            bad[raw_log.WRONG_FEATURE_WIDTH] += 1
            continue
        table[len(ids)] = np.asarray(vector, dtype=np.float32).reshape(
            -1
        )  # NaN kept: counted later
        ids.append(os.path.splitext(os.path.basename(path))[0])
        if (i + 1) % 100_000 == 0:
            say(f"kuaishou: {i + 1:,} feature files")
    table.flush()
    del table
    # Rewrite at the exact row count (open_memmap cannot shrink).
    full = np.load(os.path.join(out, F.RAW_VIDEO_FEATURES_FILE), mmap_mode="r")[: len(ids)]
    np.save(os.path.join(out, F.RAW_VIDEO_FEATURES_FILE), np.array(full))
    _write_ids(out, ids)
    return {
        "input_rows": len(files),
        "kept_rows": len(ids),
        "bad_rows": {raw_log.WRONG_FEATURE_WIDTH: bad[raw_log.WRONG_FEATURE_WIDTH], **bad},
        "reconciles": len(files) == len(ids) + sum(bad.values()),
    }


# --- generic CSV / Parquet ----------------------------------------------------------------------


@_staged
def import_csv(
    src: str,
    out: str,
    columns: dict[str, str] | None = None,
    features: str | None = None,
    feature_ids: str | None = None,
    strict: bool = False,
    progress=print,
) -> dict:
    """Imports any headed CSV (or Parquet) interaction log, renaming columns to the raw layout.

    Args:
      src: a .csv / .parquet file, or a directory holding interactions.csv (or
        interactions.parquet) and optionally video_features.npy + video_feature_ids.txt.
      out: raw-log directory to write.
      columns: raw-layout name -> source column name, for sources with other names.
      features, feature_ids: a .npy matrix and its id list (default: the ones in src, if any).
      strict: an unreadable row raises (naming the file and line) instead of being counted.
      progress: callable(str) for progress lines.
      overwrite: (keyword) replace a non-empty ``out`` whole.

    Returns:
      Summary: rows, feature_rows, and the ``interactions`` ledger.
    """
    say = progress or _quiet
    path = src
    if os.path.isdir(src):
        candidates = [os.path.join(src, f"interactions.{ext}") for ext in ("csv", "parquet")]
        found = [p for p in candidates if os.path.exists(p)]
        if not found:
            raise FileNotFoundError(f"csv: no interactions.csv or interactions.parquet in {src}")
        path = found[0]
        if features is None and os.path.exists(os.path.join(src, F.RAW_VIDEO_FEATURES_FILE)):
            features = os.path.join(src, F.RAW_VIDEO_FEATURES_FILE)
            feature_ids = os.path.join(src, F.RAW_VIDEO_FEATURE_IDS_FILE)
    mapping = {c: c for c in (*F.RAW_REQUIRED_COLUMNS, *F.RAW_OPTIONAL_COLUMNS)}
    mapping.update(columns or {})
    ledger = _Ledger(strict)
    if path.endswith(".parquet"):
        import pandas as pd

        frame = pd.read_parquet(path).astype(str)
        header = list(frame.columns)
        ledger.input_rows = len(frame)
        rows = (list(r) for r in frame.itertuples(index=False, name=None))
    else:
        header, rows = _csv_records(path, ledger)
    missing = [mapping[c] for c in F.RAW_REQUIRED_COLUMNS if mapping[c] not in header]
    if missing:
        raise ValueError(f"csv: {path} header {header} lacks column(s) {missing}")
    optional = [c for c in F.RAW_OPTIONAL_COLUMNS if mapping[c] in header]
    out_cols = (*F.RAW_REQUIRED_COLUMNS, *optional)
    pos = [header.index(mapping[c]) for c in out_cols]
    writer = _LogWriter(out, out_cols, say)
    try:
        for fields in rows:
            if len(fields) != len(header):
                writer.write(("",) * len(out_cols))  # counted as missing_field by the builder
            else:
                writer.write(tuple(fields[i] for i in pos))
    finally:
        writer.close()
        rows.close()  # a generator over an open file: close it on an early error too
    ledger.kept_rows = writer.rows
    summary = {"rows": writer.rows, "feature_rows": 0, "interactions": ledger.as_dict()}
    if features is not None:
        if feature_ids is None:
            raise ValueError("csv: a feature matrix needs --feature-ids (one id per line)")
        summary["feature_rows"] = _copy_matrix_features(features, feature_ids, out)
    _write_report(out, {"format": "csv", **summary})
    return summary


# --- RecBole atomic files ------------------------------------------------------------------------

RECBOLE_DEFAULT_LABEL = "rating>=4"
RECBOLE_USER, RECBOLE_ITEM, RECBOLE_TIME = "user_id", "item_id", "timestamp"
RECBOLE_CATEGORY_COLUMNS = ("class", "genre")  # the first one present in the .item file is used
# Bad-row kinds only the RecBole importer has (it computes the click; counted in its report).
MISSING_LABEL = "missing_label"
NON_NUMERIC_LABEL = "non_numeric_label"
LABEL_NOT_0_1 = "label_not_0_1"  # a label column given directly must hold 0 or 1
DUPLICATE_ITEM_ID = "duplicate_item_id"  # .item: a second row for an id; the first is kept
_COMPARISONS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
_NAME = r"[A-Za-z_]\w*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(rf"\s*({_NAME})\s*(>=|<=|==|>|<)\s*({_NUMBER})\s*")


class LabelRule(NamedTuple):
    """How a click is read from a row: ``column op threshold``, or the column itself (op None)."""

    column: str
    op: str | None = None
    threshold: float | None = None

    def __str__(self) -> str:
        return self.column if self.op is None else f"{self.column}{self.op}{self.threshold:g}"

    def click(self, text: str) -> tuple[int | None, str | None]:
        """``(click, None)``, or ``(None, bad kind)`` for a missing / non-numeric value."""
        text = text.strip()
        if not text:
            return None, MISSING_LABEL
        try:
            value = float(text)
        except ValueError:
            return None, NON_NUMERIC_LABEL
        if not math.isfinite(value):
            return None, NON_NUMERIC_LABEL
        if self.op is None:
            return (int(value), None) if value in (0.0, 1.0) else (None, LABEL_NOT_0_1)
        return int(_COMPARISONS[self.op](value, self.threshold)), None


def parse_label_rule(text: str) -> LabelRule:
    """``"rating>=4"`` -> LabelRule("rating", ">=", 4.0); ``"label"`` -> LabelRule("label").

    Raises:
      ValueError: neither ``COLUMN OP NUMBER`` (OP one of >=, >, <=, <, ==) nor a column name.
    """
    match = _RULE.fullmatch(text)
    if match:
        return LabelRule(match[1], match[2], float(match[3]))
    if re.fullmatch(rf"\s*{_NAME}\s*", text):
        return LabelRule(text.strip())
    raise ValueError(
        f"label rule {text!r}: expected COLUMN OP NUMBER with OP one of "
        f"{', '.join(_COMPARISONS)} (e.g. 'rating>=4'), or the name of a 0/1 label column"
    )


def _recbole_header(path: str, line: str) -> list[str]:
    """Column names of a RecBole header (``name:type`` fields, tab-separated)."""
    names = [field.split(":", 1)[0].strip() for field in line.rstrip("\r\n").split("\t")]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate column in header {names}")
    return names


def _recbole_rows(path: str, needed: tuple[str, ...], ledger: _Ledger):
    """``(line_number, raw_line, {column: text})`` of the ``needed`` columns of an atomic file.

    Rows are split on tabs as bytes and only the needed fields are decoded, so a non-UTF-8 byte
    in a column that is not imported (e.g. a movie title) does not lose the row. A row with the
    wrong number of fields is MISSING_FIELD; a needed field that is not UTF-8 is NOT_UTF8.
    """
    with open(path, "rb") as f:
        try:
            header = _recbole_header(path, f.readline().decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{path}: header line is not UTF-8") from None
        missing = [c for c in needed if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks column(s) {missing}")
        positions = [header.index(c) for c in needed]
        for number, raw in enumerate(f, start=2):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue  # blank lines (e.g. a trailing one) are not rows
            ledger.input_rows += 1
            fields = raw.split(b"\t")
            if len(fields) != len(header):
                ledger.bad(raw_log.MISSING_FIELD, path, number, raw)
                continue
            try:
                row = {
                    c: fields[i].decode("utf-8").strip()
                    for c, i in zip(needed, positions, strict=True)
                }
            except UnicodeDecodeError:
                ledger.bad(raw_log.NOT_UTF8, path, number, raw)
                continue
            yield number, raw, row


def _recbole_categories(path: str, strict: bool, say) -> tuple[dict[str, str], dict]:
    """item id -> category (first token of ``class`` or ``genre``) from a ``.item`` file."""
    with open(path, "rb") as f:
        try:
            header = _recbole_header(path, f.readline().decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{path}: header line is not UTF-8") from None
    column = next((c for c in RECBOLE_CATEGORY_COLUMNS if c in header), None)
    ledger = _Ledger(strict)
    if column is None:
        say(f"recbole: {path} has no {' or '.join(RECBOLE_CATEGORY_COLUMNS)} column: no category")
        return {}, {"category_column": None}
    categories: dict[str, str] = {}
    for number, raw, row in _recbole_rows(path, (RECBOLE_ITEM, column), ledger):
        item = row[RECBOLE_ITEM]
        if not item:
            ledger.bad(raw_log.MISSING_FIELD, path, number, raw)
        elif item in categories:
            ledger.bad(DUPLICATE_ITEM_ID, path, number, raw)
        else:
            tokens = row[column].split()  # token_seq: space-separated
            categories[item] = tokens[0] if tokens else ""
            ledger.kept_rows += 1
    return categories, {"category_column": column, **ledger.as_dict()}


@_staged
def import_recbole(
    src: str,
    out: str,
    label: str = RECBOLE_DEFAULT_LABEL,
    strict: bool = False,
    progress=print,
) -> dict:
    """Imports RecBole atomic files: ``<name>.inter`` (+ optional ``<name>.item``).

    ``.inter`` is tab-separated with a typed header (``user_id:token item_id:token
    rating:float timestamp:float``): user_id -> user_id, item_id -> video_id, timestamp ->
    timestamp (floats such as 881171488.0 become integers), click from ``label``. With a
    ``.item`` file holding ``class`` or ``genre`` (a token_seq), its first token becomes the
    row's ``category`` (empty for items the file does not list). Every exposure is a rated row;
    no split column (the builder splits per user by time).

    Rows that cannot be converted are counted in ``import_report.json`` and skipped:
    missing_field (wrong field count, empty user/item/timestamp), not_utf8 (in a field that is
    imported), non_numeric_timestamp, timestamp_out_of_range, missing_label, non_numeric_label,
    label_not_0_1 (a direct label column); .item rows: missing_field, not_utf8,
    duplicate_item_id.

    Args:
      src: directory holding exactly one ``.inter`` file.
      out: raw-log directory to write.
      label: ``COLUMN OP NUMBER`` (OP one of >=, >, <=, <, ==) on a numeric column, e.g.
        ``rating>=4``; or the name of a column that holds the 0/1 click, e.g. ``label``.
      strict: a bad row raises (naming the file and line) instead of being counted.
      progress: callable(str) for progress lines.
      overwrite: (keyword) replace a non-empty ``out`` whole.

    Returns:
      Summary: rows, clicks, click_rate, label_rule, feature_rows (0), the ``interactions``
      ledger and, with a ``.item`` file, the ``items`` ledger.
    """
    say = progress or _quiet
    rule = parse_label_rule(label)
    if not os.path.isdir(src):
        raise FileNotFoundError(f"recbole: {src} is not a directory (it must hold one .inter file)")
    inters = sorted(glob.glob(os.path.join(glob.escape(src), "*.inter")))
    if len(inters) != 1:
        found = [os.path.basename(p) for p in inters] or "none"
        raise ValueError(f"recbole: {src} must hold exactly one .inter file, found {found}")
    inter_path = inters[0]
    item_path = inter_path[: -len(".inter")] + ".item"
    categories, items = {}, None
    if os.path.exists(item_path):
        say(f"recbole: reading {item_path}")
        categories, items = _recbole_categories(item_path, strict, say)
    with_category = bool(items and items["category_column"])
    columns = (F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_TIMESTAMP, F.RAW_CLICK)
    if with_category:
        columns += (F.RAW_CATEGORY,)
    needed = tuple(dict.fromkeys((RECBOLE_USER, RECBOLE_ITEM, RECBOLE_TIME, rule.column)))
    say(f"recbole: reading {inter_path} (click: {rule})")
    writer = _LogWriter(out, columns, say)
    ledger = _Ledger(strict)
    clicks = 0
    try:
        for number, raw, row in _recbole_rows(inter_path, needed, ledger):
            if not (row[RECBOLE_USER] and row[RECBOLE_ITEM] and row[RECBOLE_TIME]):
                ledger.bad(raw_log.MISSING_FIELD, inter_path, number, raw)
                continue
            timestamp, kind = raw_log.timestamp_kind(row[RECBOLE_TIME])
            if kind is None:
                click, kind = rule.click(row[rule.column])
            if kind is not None:
                ledger.bad(kind, inter_path, number, raw)
                continue
            clicks += click
            values = (row[RECBOLE_USER], row[RECBOLE_ITEM], timestamp, click)
            if with_category:
                values += (categories.get(row[RECBOLE_ITEM], ""),)
            writer.write(values)
    finally:
        writer.close()
    ledger.kept_rows = writer.rows
    summary = {
        "rows": writer.rows,
        "clicks": clicks,
        "click_rate": round(clicks / writer.rows, 4) if writer.rows else None,
        "label_rule": str(rule),
        "feature_rows": 0,
        "interactions": ledger.as_dict(),
    }
    if items is not None:
        summary["items"] = items
    _write_report(out, {"format": "recbole", "source": os.path.basename(inter_path), **summary})
    return summary


def run_import(fmt: str, src: str, out: str, **kwargs) -> dict:
    """Dispatches to the importer of ``fmt`` (one of `FORMATS`)."""
    importers = {
        "microvideo": import_microvideo,
        "kuaishou": import_kuaishou,
        "csv": import_csv,
        "recbole": import_recbole,
    }
    if fmt not in importers:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    return importers[fmt](src, out, **kwargs)
