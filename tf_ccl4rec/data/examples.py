"""The Beam example builder: raw log -> one ``tf.Example`` per exposure, split train/eval.

Pure Beam, runnable unchanged on DirectRunner, Flink, Spark or Dataflow: files are read through
Beam sources (``ReadFromText``) or ``FileSystems`` (the feature table), outputs go through Beam
sinks, and no DoFn writes local files. The raw log's header is read once at pipeline
construction.

Stages::

    interactions.csv -> parse (bad kinds) -> group by user -> de-duplicate
      -> [keep the feature table's valid ids] -> sort by time -> histories + split
      (+ user-activity bucket) -> one pyarrow RecordBatch per user and split
      -> + video-popularity bucket (training exposures per video) -> serialized tf.Example
         (tfx_bsl's RecordBatchToExamples: C++, not one Python proto per row)
    video_features.npy + ids -> per-row checks (NaN/inf, width, duplicate id) -> valid ids
    all counts -> one data-quality report dict (see `quality`)

Rows cross one shuffle (the group by user). The valid video ids and the popular videos' buckets
reach the per-user steps as side inputs: one entry per valid video and per video with at least
``POPULARITY_BUCKET_EDGES[0]`` training exposures, held in each worker's memory (about 100 bytes
an entry: ~0.2 GB per side input for MicroVideo-1.7M's 1.7 M videos).

History rule (dynamic, the default): the click / non-click history of an exposure at time t is
the user's exposures with timestamp STRICTLY less than t (ties at t are never in each other's
history), oldest -> newest, cut to the newest ``max_history``. A train example only sees train
exposures; an eval example sees train and eval exposures before t (what a server would know).
Static history (THACIL protocol): every example of a user gets the user's whole training
click / non-click history (newest ``max_history``); this includes the train targets themselves
and later exposures, as in THACIL, so it is not leak-free for train examples by design.
Split: the log's ``split`` column when present, else per user the last
``floor(n * eval_fraction)`` exposures in time order are eval.
"""

import dataclasses
import io
import math

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from tf_ccl4rec import features as F
from tf_ccl4rec.data import quality, raw_log
from tf_ccl4rec.data.raw_log import EVAL, TRAIN, BadRowError, Interaction

_BAD = "bad"  # tagged output of (kind, count)
_COUNT = "count"  # tagged output of (report counter name, count)
_TRAIN_VIDEOS = "train_videos"  # tagged output of (video id, training exposures of one user)
_INTER = quality.INTERACTIONS
_FEAT = quality.VIDEO_FEATURES
_FEATURE_CHUNK_ROWS = 4096
# One-value features of every example (category and the slice buckets are added separately).
_SCALAR_COLUMNS = (
    F.USER_ID, F.VIDEO_ID, F.LABEL, F.TIMESTAMP, *F.HISTORY_COUNT_FEATURES,
)  # fmt: skip


def _arrow_types():
    ints = (F.LABEL, F.TIMESTAMP, *F.HISTORY_COUNT_FEATURES)
    names = (*_SCALAR_COLUMNS, *F.HISTORY_FEATURES, F.CATEGORY, F.USER_ACTIVITY_BUCKET,
             F.VIDEO_POPULARITY_BUCKET, F.USER_IN_VIDEO_BUCKET)  # fmt: skip
    return {n: pa.large_list(pa.int64() if n in ints else pa.large_binary()) for n in names}


_ARROW_TYPES = _arrow_types()


@dataclasses.dataclass(frozen=True)
class ExampleOptions:
    """Options of the example builder.

    Attributes:
      max_history: newest clicks / non-clicks kept per history (>= 1).
      static_history: THACIL protocol (whole training history per user) instead of the
        leak-free dynamic history.
      eval_fraction: per-user time split when the log has no ``split`` column, in [0, 1).
      strict: a bad row fails the pipeline instead of being counted and skipped.
      feature_dim: expected width of the video-feature table; None accepts the file's width.
    """

    max_history: int = F.DEFAULT_MAX_HISTORY
    static_history: bool = False
    eval_fraction: float = 0.2
    strict: bool = False
    feature_dim: int | None = None

    def __post_init__(self):
        if self.max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {self.max_history}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.feature_dim is not None and self.feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {self.feature_dim}")


def _counter(ledger: str, kind: str):
    return Metrics.counter(quality.METRICS_NAMESPACE, quality.counter_name(ledger, kind))


def _bad(kind: str, strict: bool, row: str, n: int = 1):
    if strict:
        raise BadRowError(kind, row)
    _counter(_INTER, kind).inc(n)
    return beam.pvalue.TaggedOutput(_BAD, (kind, n))


# --- pure per-user logic (unit-testable without Beam) -------------------------------------------


def _tail(items: list, n: int) -> list:
    return items[max(0, len(items) - n) :]


def eval_count(n: int, eval_fraction: float) -> int:
    """Number of a user's n exposures that go to eval under the time split."""
    return math.floor(n * eval_fraction + 1e-9)  # 1e-9: 0.57 * 100 must give 57, not 56


def build_user_examples(
    rows: list[Interaction], options: ExampleOptions, has_split: bool
) -> list[tuple[str, dict]]:
    """Builds the examples of one user.

    Args:
      rows: the user's kept interactions, any order.
      options: builder options.
      has_split: the log has a ``split`` column (use it instead of the time split).

    Returns:
      ``(split, features)`` per exposure in time order; ``features`` maps the EXAMPLE feature
      names of `tf_ccl4rec.features` to Python values (ids as bytes).
    """
    rows = sorted(rows, key=lambda r: (r.timestamp, r))  # the whole row breaks ties: deterministic
    n = len(rows)
    if has_split:
        splits = [r.split for r in rows]
    else:
        n_eval = eval_count(n, options.eval_fraction)
        splits = [TRAIN] * (n - n_eval) + [EVAL] * n_eval
    m = options.max_history

    def enc(v: str) -> bytes:
        return v.encode("utf-8")

    out = []

    def emit(row, split, clicks, nonclicks, num_clicks, num_nonclicks, recent_clicks):
        feats = {
            F.USER_ID: enc(row.user_id),
            F.VIDEO_ID: enc(row.video_id),
            F.LABEL: row.click,
            F.TIMESTAMP: row.timestamp,
            F.CLICK_HISTORY: clicks,
            F.NONCLICK_HISTORY: nonclicks,
            F.CLICK_COUNT: num_clicks,
            F.NONCLICK_COUNT: num_nonclicks,
            F.RECENT_CLICK_COUNT: recent_clicks,
        }
        if row.category:
            feats[F.CATEGORY] = enc(row.category)
        out.append((split, feats))

    if options.static_history:
        train = [r for r, s in zip(rows, splits, strict=True) if s == TRAIN]
        all_clicks = [enc(r.video_id) for r in train if r.click]
        all_nonclicks = [enc(r.video_id) for r in train if not r.click]
        clicks, nonclicks = _tail(all_clicks, m), _tail(all_nonclicks, m)
        recent = sum(r.click for r in _tail(train, F.RECENT_WINDOW))
        for row, split in zip(rows, splits, strict=True):
            emit(row, split, list(clicks), list(nonclicks), len(all_clicks), len(all_nonclicks),
                 recent)  # fmt: skip
        return out

    # Running histories: [clicks, nonclicks] from train exposures only, and from all exposures.
    seen_train: tuple[list, list] = ([], [])
    seen_all: tuple[list, list] = ([], [])
    # The latest RECENT_WINDOW clicks (0/1) in time order, of train exposures and of all.
    recent_train: list = []
    recent_all: list = []
    i = 0
    while i < n:
        j = i
        while j < n and rows[j].timestamp == rows[i].timestamp:
            j += 1
        # Exposures i..j-1 share a timestamp: emit all before appending any (strictly-before rule).
        for k in range(i, j):
            hist = seen_train if splits[k] == TRAIN else seen_all
            recent = recent_train if splits[k] == TRAIN else recent_all
            emit(rows[k], splits[k], _tail(hist[0], m), _tail(hist[1], m), *map(len, hist),
                 sum(recent))  # fmt: skip
        for k in range(i, j):
            vid = enc(rows[k].video_id)
            slot = 0 if rows[k].click else 1
            seen_all[slot].append(vid)
            recent_all[:] = (recent_all + [int(rows[k].click)])[-F.RECENT_WINDOW :]
            if splits[k] == TRAIN:
                seen_train[slot].append(vid)
                recent_train[:] = (recent_train + [int(rows[k].click)])[-F.RECENT_WINDOW :]
        i = j
    return out


def encode_example(feats: dict):
    """Encodes a feature dict from `build_user_examples` as a ``tf.train.Example``."""
    import tensorflow as tf

    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    feature = {
        F.USER_ID: b([feats[F.USER_ID]]),
        F.VIDEO_ID: b([feats[F.VIDEO_ID]]),
        F.LABEL: i([feats[F.LABEL]]),
        F.TIMESTAMP: i([feats[F.TIMESTAMP]]),
        F.CLICK_HISTORY: b(feats[F.CLICK_HISTORY]),
        F.NONCLICK_HISTORY: b(feats[F.NONCLICK_HISTORY]),
    }
    for name in F.HISTORY_COUNT_FEATURES:
        if name in feats:
            feature[name] = i([feats[name]])
    for name in (
        F.CATEGORY,
        F.USER_ACTIVITY_BUCKET,
        F.VIDEO_POPULARITY_BUCKET,
        F.USER_IN_VIDEO_BUCKET,
    ):
        if name in feats:
            feature[name] = b([feats[name]])
    return tf.train.Example(features=tf.train.Features(feature=feature))


def decode_example(serialized: bytes) -> dict:
    """Inverse of `encode_example` for tests and inspection: feature name -> list of values."""
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    out = {}
    for name, feat in ex.features.feature.items():
        kind = feat.WhichOneof("kind")
        out[name] = list(getattr(feat, kind).value)
    return out


# --- DoFns ---------------------------------------------------------------------------------------


class _ParseFn(beam.DoFn):
    """Parses the raw bytes of one line (decoding here, so a non-UTF-8 line is one bad row)."""

    def __init__(self, path: str, header: list[str], strict: bool):
        self._path = path
        self._header = header
        self._strict = strict
        self._input = _counter(_INTER, "input_rows")

    def process(self, line: bytes):
        self._input.inc()
        row, kind = raw_log.parse_raw_line(line, self._header)
        if kind is None:
            yield row[0], tuple(row)  # keyed by user; plain tuples: a deterministic coder
        elif self._strict:
            number = raw_log.find_line(self._path, line)
            raise BadRowError(kind, line, f"{self._path} line {number}")
        else:
            yield _bad(kind, False, "")


class _ReadFeatureTableFn(beam.DoFn):
    """Streams the .npy matrix through Beam's FileSystems and yields the valid video ids.

    Hand-written because Beam has no .npy source; reading by row chunks keeps a 2 GB table
    (MicroVideo-1.7M) out of worker memory.
    """

    def __init__(self, npy_path: str, ids_path: str, feature_dim: int | None, strict: bool):
        self._npy_path = npy_path
        self._ids_path = ids_path
        self._feature_dim = feature_dim
        self._strict = strict

    def _bad(self, kind, vid, n=1):
        if self._strict:
            raise BadRowError(kind, f"video {vid}")
        _counter(_FEAT, kind).inc(n)
        return beam.pvalue.TaggedOutput(_BAD, (kind, n))

    def process(self, _):
        with FileSystems.open(self._ids_path) as f:
            data = f.read()
        try:
            ids = [s.strip() for s in data.decode("utf-8").splitlines()]
        except UnicodeDecodeError as err:  # row-aligned with the matrix: cannot skip a line
            line = data[: err.start].count(b"\n") + 1
            raise ValueError(f"{self._ids_path} line {line} is not UTF-8") from None
        with FileSystems.open(self._npy_path) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            raw_log.check_feature_table_shape(shape, len(ids), self._npy_path)
            if fortran or dtype.hasobject:
                raise ValueError(f"{self._npy_path}: need a C-order numeric .npy matrix")
            _counter(_FEAT, "input_rows").inc(len(ids))
            yield beam.pvalue.TaggedOutput("n_rows", len(ids))
            width = shape[1]
            wrong_width = self._feature_dim is not None and width != self._feature_dim
            row_bytes = width * dtype.itemsize
            seen: set[str] = set()
            kept = 0
            for start in range(0, len(ids), _FEATURE_CHUNK_ROWS):
                chunk_ids = ids[start : start + _FEATURE_CHUNK_ROWS]
                buf = f.read(row_bytes * len(chunk_ids))
                chunk = np.frombuffer(buf, dtype=dtype).reshape(len(chunk_ids), width)
                finite = np.all(np.isfinite(chunk), axis=1)
                for vid, ok in zip(chunk_ids, finite, strict=True):
                    if wrong_width:
                        yield self._bad(raw_log.WRONG_FEATURE_WIDTH, vid)
                    elif not ok:
                        yield self._bad(raw_log.NON_FINITE_FEATURE, vid)
                    elif vid in seen:
                        yield self._bad(raw_log.DUPLICATE_FEATURE_ID, vid)
                    else:
                        seen.add(vid)
                        kept += 1
                        yield vid
            _counter(_FEAT, "kept_rows").inc(kept)


def _examples_batch(built: list[dict], activity: bytes):
    """Columns of one split of one user's examples as ``pyarrow.RecordBatch``es for tfx_bsl.

    Rows without a category go into their own batch: a null list would encode as an empty
    ``Feature`` (no kind) where the per-row encoder leaves the feature out.
    """
    parts = [[f for f in built if F.CATEGORY in f], [f for f in built if F.CATEGORY not in f]]
    out = []
    for part, with_category in zip(parts, (True, False), strict=True):
        if not part:
            continue
        cols = {name: [[f[name]] for f in part] for name in _SCALAR_COLUMNS}
        cols.update({name: [f[name] for f in part] for name in F.HISTORY_FEATURES})
        cols[F.USER_ACTIVITY_BUCKET] = [[activity]] * len(part)
        if with_category:
            cols[F.CATEGORY] = [[f[F.CATEGORY]] for f in part]
        out.append(
            pa.RecordBatch.from_arrays(
                [pa.array(v, _ARROW_TYPES[name]) for name, v in cols.items()], list(cols)
            )
        )
    return out


class _UserExamplesFn(beam.DoFn):
    """One user's rows -> de-duplicated, known-video rows -> examples, as RecordBatches per split.

    De-duplication and the feature-table filter run here, after the group by user (identical
    rows share the user), in the builder's order: a copy of a duplicated row counts as
    duplicate_row even when its video is unknown, and the kept copy as unknown_video_id.
    """

    def __init__(self, options: ExampleOptions, has_split: bool, check_videos: bool):
        self._options = options
        self._has_split = has_split
        self._check_videos = check_videos
        self._kept = _counter(_INTER, "kept_rows")
        self._n = {s: _counter("examples", s) for s in raw_log.SPLITS}

    def process(self, user_rows, known_videos=None):
        _, rows = user_rows
        strict = self._options.strict
        copies: dict[tuple, int] = {}
        for r in rows:
            copies[r] = copies.get(r, 0) + 1
        n_dup = sum(c - 1 for c in copies.values())
        if n_dup:
            dup = next(r for r, c in copies.items() if c > 1)
            yield _bad(raw_log.DUPLICATE_ROW, strict, repr(dup), n_dup)
        unique = list(copies)
        if self._check_videos:
            unknown = [r for r in unique if r[1] not in known_videos]
            if unknown:
                yield _bad(raw_log.UNKNOWN_VIDEO, strict, repr(unknown[0]), len(unknown))
                unique = [r for r in unique if r[1] in known_videos]
        if not unique:
            return
        self._kept.inc(len(unique))
        yield beam.pvalue.TaggedOutput(_COUNT, (f"{_INTER}.kept_rows", len(unique)))
        built = build_user_examples([Interaction(*r) for r in unique], self._options,
                                    self._has_split)  # fmt: skip
        by_split = {s: [f for split, f in built if split == s] for s in raw_log.SPLITS}
        # Slice feature for the Evaluator: the user's number of training exposures.
        activity = F.bucket_label(len(by_split[TRAIN]), F.ACTIVITY_BUCKET_EDGES).encode("utf-8")
        train_videos: dict[bytes, int] = {}
        for f in by_split[TRAIN]:
            train_videos[f[F.VIDEO_ID]] = train_videos.get(f[F.VIDEO_ID], 0) + 1
        yield from (beam.pvalue.TaggedOutput(_TRAIN_VIDEOS, kv) for kv in train_videos.items())
        for split, part in by_split.items():
            if part:
                self._n[split].inc(len(part))
                yield beam.pvalue.TaggedOutput(_COUNT, (f"examples.{split}", len(part)))
                for batch in _examples_batch(part, activity):
                    yield beam.pvalue.TaggedOutput(split, batch)


_UNPOPULAR = F.bucket_label(0, F.POPULARITY_BUCKET_EDGES)


def _popular_bucket(video_count):
    """(video, bucket) for videos above the lowest bucket; the others default to `_UNPOPULAR`."""
    video, count = video_count
    if count >= F.POPULARITY_BUCKET_EDGES[0]:
        yield video, F.bucket_label(count, F.POPULARITY_BUCKET_EDGES).encode("utf-8")


def _encode_batch(batch, buckets: dict):
    """Adds the video-popularity slice buckets to a RecordBatch and encodes it (tfx_bsl, C++)."""
    from tfx_bsl.coders import example_coder

    unpopular = _UNPOPULAR.encode("utf-8")
    videos = batch.column(batch.schema.get_field_index(F.VIDEO_ID)).flatten().to_pylist()
    users = batch.column(batch.schema.get_field_index(F.USER_ID)).flatten().to_pylist()
    bucket = [buckets.get(v, unpopular) for v in videos]
    columns = {
        F.VIDEO_POPULARITY_BUCKET: [[b] for b in bucket],
        F.USER_IN_VIDEO_BUCKET: [[u + b"|" + b] for u, b in zip(users, bucket, strict=True)],
    }
    batch = pa.RecordBatch.from_arrays(
        batch.columns + [pa.array(v, _ARROW_TYPES[name]) for name, v in columns.items()],
        batch.schema.names + list(columns),
    )
    return example_coder.RecordBatchToExamples(batch)


def _tfrecords(serialized: list[bytes]) -> bytes:
    """A batch of records framed as TFRecords, with the framing of Beam's own TFRecord sink."""
    from apache_beam.io.tfrecordio import _TFRecordUtil

    out = io.BytesIO()
    for record in serialized:
        _TFRecordUtil.write_record(out, record)
    return out.getvalue()


# --- the PTransform ------------------------------------------------------------------------------


def _count_as(name: str):
    return beam.combiners.Count.Globally() | f"Name[{name}]" >> beam.Map(lambda n: (name, n))


class BuildExamples(beam.PTransform):
    """Raw-log directory -> serialized ``tf.Example`` per split, plus the data-quality report.

    Apply to a pipeline: ``outputs = pipeline | BuildExamples(data_root, options)``.

    Returns (from ``expand``):
      A dict: ``"train"`` and ``"eval"`` -> PCollection[list[bytes]] (batches of serialized
      tf.Examples, one batch per user, split and category presence);
      ``"report"`` -> PCollection holding one report dict (see `quality.build_report`).
    """

    def __init__(self, data_root: str, options: ExampleOptions | None = None):
        super().__init__()
        self._data_root = data_root
        self._options = options or ExampleOptions()
        self._paths = raw_log.raw_log_paths(data_root)
        self._header = raw_log.read_header(self._paths.interactions)

    def expand(self, pbegin):
        opts, paths = self._options, self._paths
        lines = pbegin | "ReadInteractions" >> beam.io.ReadFromText(
            paths.interactions, skip_header_lines=1, coder=beam.coders.BytesCoder()
        )
        parsed = lines | "Parse" >> beam.ParDo(
            _ParseFn(paths.interactions, self._header, opts.strict)
        ).with_outputs(_BAD, main="rows")
        bad = [parsed[_BAD]]
        # Zeros so that every count is in the report even when nothing produces it.
        zeros = [f"{_INTER}.kept_rows"] + [f"examples.{s}" for s in raw_log.SPLITS]
        counts = [
            lines | "CountInput" >> _count_as(f"{_INTER}.input_rows"),
            pbegin | "Zeros" >> beam.Create([(name, 0) for name in zeros]),
        ]
        known_videos = []
        if paths.video_features is not None:
            feats = (
                pbegin
                | "FeatureTable" >> beam.Create([None])
                | "ReadFeatures"
                >> beam.ParDo(
                    _ReadFeatureTableFn(
                        paths.video_features, paths.video_feature_ids, opts.feature_dim, opts.strict
                    )
                ).with_outputs(_BAD, "n_rows", main="ids")
            )
            # A side input (one id per valid video) instead of a join by video: no shuffle of rows.
            known_videos = [
                beam.pvalue.AsSingleton(feats.ids | "KnownVideos" >> beam.combiners.ToSet())
            ]
            counts += [
                feats.n_rows | "FeatInput" >> beam.Map(lambda n: (f"{_FEAT}.input_rows", n)),
                feats.ids | "CountFeatKept" >> _count_as(f"{_FEAT}.kept_rows"),
                feats[_BAD]
                | "FeatKind" >> beam.MapTuple(lambda k, n: (f"{_FEAT}.{k}", n))
                | "SumFeatBad" >> beam.CombinePerKey(sum),
            ]
        has_split = F.RAW_SPLIT in self._header
        check_videos = paths.video_features is not None
        per_user = (
            parsed.rows
            # A list combiner rather than GroupByKey: runners lift it, so rows cross the shuffle
            # as per-user lists built within each bundle instead of one element per row.
            | "GroupByUser" >> beam.CombinePerKey(beam.combiners.ToListCombineFn())
            | "UserExamples"
            >> beam.ParDo(
                _UserExamplesFn(opts, has_split, check_videos), *known_videos
            ).with_outputs(_BAD, _COUNT, _TRAIN_VIDEOS, *raw_log.SPLITS)
        )
        bad.append(per_user[_BAD])
        # Video popularity needs every user's training exposures: a side input of the videos
        # above the lowest bucket (a long-tail catalogue's rare videos are left out of it).
        buckets = beam.pvalue.AsDict(
            per_user[_TRAIN_VIDEOS]
            | "SumTrainVideo" >> beam.CombinePerKey(sum)
            | "PopularVideos" >> beam.FlatMap(_popular_bucket)
        )
        examples = {
            split: per_user[split] | f"Encode[{split}]" >> beam.Map(_encode_batch, buckets)
            for split in raw_log.SPLITS
        }
        counts += [
            per_user[_COUNT],
            bad
            | "FlattenBad" >> beam.Flatten()
            | "InterKind" >> beam.MapTuple(lambda k, n: (f"{_INTER}.{k}", n)),
        ]
        options = dataclasses.asdict(opts)
        report = (
            counts
            | "FlattenCounts" >> beam.Flatten()
            | "SumCounts" >> beam.CombinePerKey(sum)
            | "ToDict" >> beam.combiners.ToDict()
            | "Report" >> beam.Map(quality.build_report, options)
        )
        return {TRAIN: examples[TRAIN], EVAL: examples[EVAL], "report": report}


def split_dir(output_dir: str, split: str) -> str:
    """The TFX layout of one split: ``<output_dir>/Split-<split>``."""
    return FileSystems.join(output_dir, f"Split-{split}")


class WriteExamples(beam.PTransform):
    """Writes `BuildExamples` outputs in the TFX Examples layout.

    ``<output_dir>/Split-{train,eval}/data_tfrecord-*.gz`` (gzipped TFRecords of tf.Example, as
    TFX's ExampleGen writes them) and ``<output_dir>/data_quality.json``.
    """

    def __init__(self, output_dir: str):
        super().__init__()
        self._output_dir = output_dir

    def expand(self, outputs):
        # Batches of examples are framed as TFRecords and written as raw bytes (a text sink
        # without newlines): the same files as WriteToTFRecord's, without one sink call per row.
        for split in raw_log.SPLITS:
            _ = (
                outputs[split]
                | f"Frame[{split}]" >> beam.Map(_tfrecords)
                | f"Write[{split}]"
                >> beam.io.WriteToText(
                    FileSystems.join(split_dir(self._output_dir, split), "data_tfrecord"),
                    file_name_suffix=".gz",
                    append_trailing_newlines=False,
                    coder=beam.coders.BytesCoder(),
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP,
                )
            )
        stem = quality.REPORT_FILE.rsplit(".", 1)[0]
        return (
            outputs["report"]
            | "ReportJson" >> beam.Map(quality.to_json)
            | "WriteReport"
            >> beam.io.WriteToText(
                FileSystems.join(self._output_dir, stem),
                file_name_suffix=".json",
                num_shards=1,
                shard_name_template="",
            )
        )
