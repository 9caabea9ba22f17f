"""Importers: real dataset layouts -> the raw-log layout (see docs/data.md).

Importers convert layout, not quality: a malformed row is written through (with its fields
blanked when it cannot be mapped) so the example builder counts it; nothing is dropped here
except feature vectors that cannot fit the output matrix (wrong width), which are counted in
``import_report.json`` (fatal under ``strict``) and whose interactions the builder then counts as
unknown videos.
"""

import csv
import glob
import json
import os

import numpy as np

from tf_ccl4rec import features as F
from tf_ccl4rec.data import raw_log

FORMATS = ("microvideo", "kuaishou", "csv")
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


def import_microvideo(src: str, out: str, progress=print) -> dict:
    """Imports MicroVideo-1.7M as THACIL distributes it.

    ``train_data.csv`` / ``test_data.csv`` (``user_id,item_id,cate_id,is_click,timestamp``) become
    one log with ``split`` train / eval; ``train_cover_image_feature.npy`` (row = train item id)
    and ``test_cover_image_feature.npy`` (row = test item id, restarting at 0) become one table.
    Test item ids are shifted by the number of train feature rows (or, without features, by
    1 + the largest train item id) so they cannot collide with train ids.

    Args:
      src: directory holding the THACIL files.
      out: raw-log directory to write.
      progress: callable(str) for progress lines.

    Returns:
      Summary: rows, feature_rows, test_item_offset.
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
        offset = 1 + max(
            (int(r["item_id"]) for r in _dict_rows(paths["train"]) if r["item_id"].isdigit()),
            default=-1,
        )
    columns = (F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_TIMESTAMP, F.RAW_CLICK, F.RAW_CATEGORY)
    writer = _LogWriter(out, (*columns, F.RAW_SPLIT), say)
    try:
        for source, split, shift in (("train", raw_log.TRAIN, 0), ("test", raw_log.EVAL, offset)):
            say(f"microvideo: reading {paths[source]}")
            for row in _dict_rows(paths[source], MICROVIDEO_COLUMNS):
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
    summary = {"rows": writer.rows, "feature_rows": feature_rows, "test_item_offset": offset}
    _write_report(out, {"format": "microvideo", **summary})
    return summary


def _dict_rows(path: str, required: tuple[str, ...] = ("item_id",)):
    """Rows of a headed CSV as dicts; None for a row whose field count differs from the header."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks column(s) {missing}")
        for fields in reader:
            yield dict(zip(header, fields, strict=True)) if len(fields) == len(header) else None


# --- Kuaishou ------------------------------------------------------------------------------------


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
      strict: a wrong-width vector raises instead of being counted and skipped.
      progress: callable(str) for progress lines.

    Returns:
      Summary: rows, feature_rows, and the per-photo feature ledger when a folder was read.
    """
    say = progress or _quiet
    log_path = os.path.join(src, "train_interaction.txt")
    if not os.path.exists(log_path):
        raise FileNotFoundError(f"kuaishou: {log_path} not found")
    columns = (F.RAW_USER_ID, F.RAW_VIDEO_ID, F.RAW_TIMESTAMP, F.RAW_CLICK)
    writer = _LogWriter(out, columns, say)
    idx = {c: i for i, c in enumerate(KUAISHOU_COLUMNS)}
    try:
        with open(log_path) as f:
            for line in f:
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
    summary: dict = {"rows": writer.rows, "feature_rows": 0}
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
    ids, bad = [], 0
    for i, path in enumerate(files):
        vector = np.load(path, allow_pickle=False)
        if raw_log.feature_row_kind(vector, width) == raw_log.WRONG_FEATURE_WIDTH:
            if strict:
                raise raw_log.BadRowError(raw_log.WRONG_FEATURE_WIDTH, f"{path} {vector.shape}")
            bad += 1
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
        "bad_rows": {raw_log.WRONG_FEATURE_WIDTH: bad},
        "reconciles": len(files) == len(ids) + bad,
    }


# --- generic CSV / Parquet ----------------------------------------------------------------------


def import_csv(
    src: str,
    out: str,
    columns: dict[str, str] | None = None,
    features: str | None = None,
    feature_ids: str | None = None,
    progress=print,
) -> dict:
    """Imports any headed CSV (or Parquet) interaction log, renaming columns to the raw layout.

    Args:
      src: a .csv / .parquet file, or a directory holding interactions.csv (or
        interactions.parquet) and optionally video_features.npy + video_feature_ids.txt.
      out: raw-log directory to write.
      columns: raw-layout name -> source column name, for sources with other names.
      features, feature_ids: a .npy matrix and its id list (default: the ones in src, if any).
      progress: callable(str) for progress lines.

    Returns:
      Summary: rows, feature_rows.
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
    if path.endswith(".parquet"):
        import pandas as pd

        frame = pd.read_parquet(path).astype(str)
        header = list(frame.columns)
        rows = (list(r) for r in frame.itertuples(index=False, name=None))
    else:
        f = open(path, newline="")
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        rows = reader
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
        if not path.endswith(".parquet"):
            f.close()
    summary = {"rows": writer.rows, "feature_rows": 0}
    if features is not None:
        if feature_ids is None:
            raise ValueError("csv: a feature matrix needs --feature-ids (one id per line)")
        summary["feature_rows"] = _copy_matrix_features(features, feature_ids, out)
    _write_report(out, {"format": "csv", **summary})
    return summary


def run_import(fmt: str, src: str, out: str, **kwargs) -> dict:
    """Dispatches to the importer of ``fmt`` (one of `FORMATS`)."""
    importers = {"microvideo": import_microvideo, "kuaishou": import_kuaishou, "csv": import_csv}
    if fmt not in importers:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    return importers[fmt](src, out, **kwargs)
