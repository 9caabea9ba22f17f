"""The example builder as it was before the columnar encoder (main at 6faeb13), kept verbatim
as the reference that `test_data_examples_columnar.py` compares the columnar builder against:
per-row Python ``tf.train.Example`` encoding, de-duplication by Count.PerElement, the feature
table joined by video id, the popularity bucket joined by video id per example.
"""

import dataclasses

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from tf_ccl4rec import features as F
from tf_ccl4rec.data import quality, raw_log
from tf_ccl4rec.data.examples import (
    _BAD,
    _FEAT,
    _INTER,
    ExampleOptions,
    _bad,
    _counter,
    _ReadFeatureTableFn,
    build_user_examples,
    encode_example,
    split_dir,
)
from tf_ccl4rec.data.raw_log import EVAL, TRAIN, BadRowError, Interaction


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


def _count_as(name: str):
    return beam.combiners.Count.Globally() | f"Name[{name}]" >> beam.Map(lambda n: (name, n))


class PerRowBuildExamples(beam.PTransform):
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


class PerRowWriteExamples(beam.PTransform):
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
