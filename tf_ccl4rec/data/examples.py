"""The Beam example builder: raw log -> one ``tf.Example`` per exposure, split train/eval.

Pure Beam, runnable unchanged on DirectRunner, Flink, Spark or Dataflow: files are read through
Beam sources (``ReadFromText``) or ``FileSystems`` (the feature table), outputs go through Beam
sinks, and no DoFn writes local files. The raw log's header is read once at pipeline
construction.

Stages::

    interactions.csv -> parse (bad kinds) -> de-duplicate -> [join the feature table's valid ids]
      -> group by user -> sort by time -> histories + split (+ user-activity bucket)
      -> join training exposures per video (video-popularity bucket) -> serialized tf.Example
    video_features.npy + ids -> per-row checks (NaN/inf, width, duplicate id) -> valid ids
    all counts -> one data-quality report dict (see `quality`)

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
import math

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from tf_ccl4rec import features as F
from tf_ccl4rec.data import quality, raw_log
from tf_ccl4rec.data.raw_log import EVAL, TRAIN, BadRowError, Interaction

_BAD = "bad"  # tagged output of (kind, count)
_INTER = quality.INTERACTIONS
_FEAT = quality.VIDEO_FEATURES
_FEATURE_CHUNK_ROWS = 4096


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
            yield tuple(row)  # plain tuples: deterministic coder for Count.PerElement / GBK
        elif self._strict:
            number = raw_log.find_line(self._path, line)
            raise BadRowError(kind, line, f"{self._path} line {number}")
        else:
            yield _bad(kind, False, "")


class _DedupFn(beam.DoFn):
    def __init__(self, strict: bool):
        self._strict = strict

    def process(self, row_and_count):
        row, count = row_and_count
        yield row
        if count > 1:
            yield _bad(raw_log.DUPLICATE_ROW, self._strict, repr(row), count - 1)


class _KnownVideoFn(beam.DoFn):
    def __init__(self, strict: bool):
        self._strict = strict

    def process(self, joined):
        video_id, grouped = joined
        rows = list(grouped["rows"])
        if not rows:
            return
        if list(grouped["ok"]):
            yield from rows
        else:
            yield _bad(raw_log.UNKNOWN_VIDEO, self._strict, repr(rows[0]), len(rows))


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


class _UserExamplesFn(beam.DoFn):
    def __init__(self, options: ExampleOptions, has_split: bool):
        self._options = options
        self._has_split = has_split
        self._kept = _counter(_INTER, "kept_rows")
        self._n = {s: _counter("examples", s) for s in raw_log.SPLITS}

    def process(self, user_rows):
        _, rows = user_rows
        rows = [Interaction(*r) for r in rows]
        self._kept.inc(len(rows))
        built = build_user_examples(rows, self._options, self._has_split)
        # Slice feature for the Evaluator: the user's number of training exposures.
        n_train = sum(1 for split, _ in built if split == TRAIN)
        activity = F.bucket_label(n_train, F.ACTIVITY_BUCKET_EDGES).encode("utf-8")
        for split, feats in built:
            self._n[split].inc()
            feats[F.USER_ACTIVITY_BUCKET] = activity
            yield beam.pvalue.TaggedOutput(split, feats)


def _with_popularity(joined):
    """Adds the video-popularity slice bucket (training exposures of the video) and encodes."""
    _, grouped = joined
    counts = list(grouped["train_count"])
    bucket = F.bucket_label(counts[0] if counts else 0, F.POPULARITY_BUCKET_EDGES)
    for feats in grouped["examples"]:
        feats[F.VIDEO_POPULARITY_BUCKET] = bucket.encode("utf-8")
        feats[F.USER_IN_VIDEO_BUCKET] = feats[F.USER_ID] + b"|" + bucket.encode("utf-8")
        yield encode_example(feats).SerializeToString()


# --- the PTransform ------------------------------------------------------------------------------


def _count_as(name: str):
    return beam.combiners.Count.Globally() | f"Name[{name}]" >> beam.Map(lambda n: (name, n))


class BuildExamples(beam.PTransform):
    """Raw-log directory -> serialized ``tf.Example`` per split, plus the data-quality report.

    Apply to a pipeline: ``outputs = pipeline | BuildExamples(data_root, options)``.

    Returns (from ``expand``):
      A dict: ``"train"`` and ``"eval"`` -> PCollection[bytes] (serialized tf.Example);
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
        deduped = (
            parsed.rows
            | "CountCopies" >> beam.combiners.Count.PerElement()
            | "Dedup" >> beam.ParDo(_DedupFn(opts.strict)).with_outputs(_BAD, main="rows")
        )
        bad = [parsed[_BAD], deduped[_BAD]]
        rows = deduped.rows
        counts = [lines | "CountInput" >> _count_as(f"{_INTER}.input_rows")]
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
            known = (
                {
                    "rows": rows | "KeyByVideo" >> beam.Map(lambda r: (r[1], r)),
                    "ok": feats.ids | "KeyId" >> beam.Map(lambda v: (v, None)),
                }
                | "JoinFeatures" >> beam.CoGroupByKey()
                | "KnownVideos"
                >> beam.ParDo(_KnownVideoFn(opts.strict)).with_outputs(_BAD, main="rows")
            )
            bad.append(known[_BAD])
            rows = known.rows
            counts += [
                feats.n_rows | "FeatInput" >> beam.Map(lambda n: (f"{_FEAT}.input_rows", n)),
                feats.ids | "CountFeatKept" >> _count_as(f"{_FEAT}.kept_rows"),
                feats[_BAD]
                | "FeatKind" >> beam.MapTuple(lambda k, n: (f"{_FEAT}.{k}", n))
                | "SumFeatBad" >> beam.CombinePerKey(sum),
            ]
        has_split = F.RAW_SPLIT in self._header
        per_user = (
            rows
            | "KeyByUser" >> beam.Map(lambda r: (r[0], r))
            | "GroupByUser" >> beam.GroupByKey()
            | "UserExamples"
            >> beam.ParDo(_UserExamplesFn(opts, has_split)).with_outputs(*raw_log.SPLITS)
        )
        # Video popularity needs every user's training exposures: a join by video id.
        train_counts = (
            per_user[TRAIN]
            | "TrainVideo" >> beam.Map(lambda f: f[F.VIDEO_ID])
            | "CountTrainVideo" >> beam.combiners.Count.PerElement()
        )
        examples = {
            split: (
                {
                    "examples": per_user[split]
                    | f"KeyByVideo[{split}]" >> beam.Map(lambda f: (f[F.VIDEO_ID], f)),
                    "train_count": train_counts,
                }
                | f"JoinPopularity[{split}]" >> beam.CoGroupByKey()
                | f"Encode[{split}]" >> beam.FlatMap(_with_popularity)
            )
            for split in raw_log.SPLITS
        }
        counts += [
            rows | "CountKept" >> _count_as(f"{_INTER}.kept_rows"),
            bad
            | "FlattenBad" >> beam.Flatten()
            | "InterKind" >> beam.MapTuple(lambda k, n: (f"{_INTER}.{k}", n))
            | "SumBad" >> beam.CombinePerKey(sum),
        ]
        counts += [
            examples[s] | f"CountExamples[{s}]" >> _count_as(f"examples.{s}")
            for s in raw_log.SPLITS
        ]
        options = dataclasses.asdict(opts)
        report = (
            counts
            | "FlattenCounts" >> beam.Flatten()
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
        for split in raw_log.SPLITS:
            _ = outputs[split] | f"Write[{split}]" >> beam.io.WriteToTFRecord(
                FileSystems.join(split_dir(self._output_dir, split), "data_tfrecord"),
                file_name_suffix=".gz",
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
