"""`ccl4rec data synth|import|examples`.

``examples`` runs the Beam example builder standalone (DirectRunner by default; any Beam
pipeline flag after ``--`` is passed through) to inspect what the TFX component will produce.
``--runner portable --job-endpoint HOST:PORT [--worker-pool HOST:PORT]`` submits it to a Beam
job service (`tf_ccl4rec.beam_runner`).
"""

import argparse
import json
import sys
import time

from tf_ccl4rec import beam_runner
from tf_ccl4rec import features as F


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="{synth,import,examples}")
    sub.required = True

    s = sub.add_parser("synth", help="generate a planted-noise synthetic raw log")
    s.add_argument("--out", required=True, help="raw-log directory to write")
    s.add_argument("--users", type=int, default=300)
    s.add_argument("--videos", type=int, default=2000)
    s.add_argument("--topics", type=int, default=20)
    s.add_argument("--feature-dim", type=int, default=32)
    s.add_argument("--exposures-per-user", type=float, default=130.0)
    s.add_argument("--noise-rate", type=float, default=0.2, help="share of clicks that are noise")
    s.add_argument("--interest-mix", type=float, default=0.5)
    s.add_argument("--popularity-alpha", type=float, default=1.0)
    s.add_argument("--feature-noise", type=float, default=0.5)
    s.add_argument("--days", type=int, default=30)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--cover-videos",
        action="store_true",
        help="expose every video at least once (a vocabulary of the whole catalogue; needs "
        "users x exposures-per-user >= videos)",
    )

    i = sub.add_parser("import", help="convert a real dataset to the raw-log layout")
    i.add_argument("--format", required=True, choices=("microvideo", "kuaishou", "csv", "recbole"))
    i.add_argument("--src", required=True, help="source directory (or file for csv)")
    i.add_argument("--out", required=True, help="raw-log directory to write")
    i.add_argument("--features", help="kuaishou/csv: per-photo .npy folder or a .npy matrix")
    i.add_argument("--feature-ids", help="id list (one per line) of a --features matrix")
    i.add_argument(
        "--feature-dim", type=int, default=None, help="kuaishou: per-photo width (default 2048)"
    )
    i.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="RAW=SOURCE",
        help="csv: map a raw-layout column to a source column, e.g. video_id=item_id",
    )
    i.add_argument(
        "--label",
        default=None,
        help="recbole: click rule COLUMN OP NUMBER (OP: >=, >, <=, <, ==) or a 0/1 label "
        "column name (default: rating>=4)",
    )
    i.add_argument(
        "--strict",
        action="store_true",
        help="the first bad row or feature vector is fatal (file and line named)",
    )
    i.add_argument(
        "--overwrite", action="store_true", help="replace an existing non-empty --out whole"
    )

    e = sub.add_parser(
        "examples", help="run the Beam example builder (DirectRunner, or --runner portable ...)"
    )
    e.add_argument("--data-root", required=True, help="raw-log directory")
    e.add_argument("--out", required=True, help="output dir: Split-train/, Split-eval/, report")
    e.add_argument("--max-history", type=int, default=F.DEFAULT_MAX_HISTORY)
    e.add_argument("--static-history", action="store_true", help="THACIL static history")
    e.add_argument("--eval-fraction", type=float, default=0.2)
    e.add_argument("--feature-dim", type=int, default=None)
    e.add_argument(
        "--strict", action="store_true", help="the first bad row is fatal (file and line named)"
    )
    e.add_argument(
        "--overwrite", action="store_true", help="replace an existing non-empty --out whole"
    )
    beam_runner.add_arguments(e)
    e.add_argument("beam_args", nargs=argparse.REMAINDER, help="-- then Beam pipeline flags")


def _synth(args) -> int:
    from tf_ccl4rec.data import synth

    config = synth.SynthConfig(
        users=args.users,
        videos=args.videos,
        topics=args.topics,
        feature_dim=args.feature_dim,
        exposures_per_user=args.exposures_per_user,
        noise_rate=args.noise_rate,
        interest_mix=args.interest_mix,
        popularity_alpha=args.popularity_alpha,
        feature_noise=args.feature_noise,
        days=args.days,
        seed=args.seed,
        cover_videos=args.cover_videos,
    )
    summary = synth.synth(config, args.out)
    print(json.dumps(summary))
    return 0


def _import(args) -> int:
    from tf_ccl4rec.data import importers

    only = {
        "--features": ("features", ("kuaishou", "csv")),
        "--feature-ids": ("feature_ids", ("kuaishou", "csv")),
        "--feature-dim": ("feature_dim", ("kuaishou",)),
        "--column": ("column", ("csv",)),
        "--label": ("label", ("recbole",)),
    }
    for flag, (attr, formats) in only.items():
        if getattr(args, attr) and args.format not in formats:
            print(f"{flag} applies to --format {'/'.join(formats)} only", file=sys.stderr)
            return 2
    kwargs: dict = {"strict": args.strict, "overwrite": args.overwrite}
    if args.format in ("kuaishou", "csv"):
        kwargs.update(features=args.features, feature_ids=args.feature_ids)
    if args.format == "kuaishou" and args.feature_dim is not None:
        kwargs["feature_dim"] = args.feature_dim
    if args.format == "recbole" and args.label is not None:
        kwargs["label"] = args.label
    if args.format == "csv" and args.column:
        pairs = [c.split("=", 1) for c in args.column]
        if any(len(p) != 2 for p in pairs):
            print("--column takes RAW=SOURCE", file=sys.stderr)
            return 2
        kwargs["columns"] = dict(pairs)
    summary = importers.run_import(args.format, args.src, args.out, **kwargs)
    print(json.dumps(summary))
    return 0


def run_examples(
    data_root: str,
    out: str,
    options,
    beam_args: list[str] | None = None,
    progress=print,
    overwrite: bool = False,
) -> dict:
    """Runs `BuildExamples` + `WriteExamples` as a standalone Beam pipeline.

    The output is built beside ``out`` and renamed into place when complete (`staging`).

    Args:
      data_root: raw-log directory.
      out: output directory (TFX Examples layout + data_quality.json).
      options: `examples.ExampleOptions`.
      beam_args: Beam pipeline flags (default: DirectRunner).
      progress: callable(str) for progress lines.
      overwrite: replace an existing non-empty ``out`` whole (otherwise it is refused).

    Returns:
      The data-quality report, with ``seconds``, ``rows_per_s`` and the Beam ``counters``
      added.

    Raises:
      staging.OutputError: ``out`` overlaps ``data_root`` or is non-empty without overwrite.
      raw_log.BadRowError: a bad row under ``options.strict`` (file and line named).
      quality.EmptyDataError: no training example was built (the message says why).
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    from tf_ccl4rec.beam_overhead import trim_beam_overhead
    from tf_ccl4rec.data import examples, quality, raw_log, staging

    trim_beam_overhead()

    progress(f"examples: building from {data_root} -> {out}")
    t0 = time.perf_counter()
    build = examples.BuildExamples(data_root, options)  # input errors first: they say more
    with staging.staged_directory(out, [data_root], overwrite) as build_dir:
        pipeline = beam.Pipeline(options=PipelineOptions(beam_args or []))
        _ = pipeline | build | examples.WriteExamples(build_dir)
        try:
            result = pipeline.run()
            result.wait_until_finish()
        except Exception as err:  # runners wrap a DoFn's error in their own type
            message = raw_log.strict_error_message(str(err))
            if message is None:
                raise
            raise raw_log.BadRowError.from_message(message) from err
        secs = time.perf_counter() - t0
        counters = {
            r.key.metric.name: r.committed
            for r in result.metrics()
            .query(MetricsFilter().with_namespace(quality.METRICS_NAMESPACE))
            .get("counters", [])
        }
        with FileSystems.open(FileSystems.join(build_dir, quality.REPORT_FILE)) as f:
            report = json.load(f)
        quality.check_not_empty(report, data_root)
    rows = report[quality.INTERACTIONS]["input_rows"]
    report["seconds"] = round(secs, 2)
    report["rows_per_s"] = round(rows / secs)
    report["counters"] = dict(sorted(counters.items()))
    return report


def _examples(args) -> int:
    from tf_ccl4rec.data import examples, quality

    extra = [a for a in args.beam_args if a != "--"]
    beam_args = extra  # DirectRunner's defaults unless a runner is chosen
    if args.runner != "direct" or args.job_endpoint or args.worker_pool:
        beam_args = beam_runner.pipeline_args(
            args.runner, args.job_endpoint, args.worker_pool, extra=extra
        )
    options = examples.ExampleOptions(
        max_history=args.max_history,
        static_history=args.static_history,
        eval_fraction=args.eval_fraction,
        strict=args.strict,
        feature_dim=args.feature_dim,
    )
    report = run_examples(args.data_root, args.out, options, beam_args, overwrite=args.overwrite)
    print(quality.summary(report))
    print(f"{report['rows_per_s']} input rows/s ({report['seconds']} s)")
    return 0


def run(args) -> int:
    handlers = {"synth": _synth, "import": _import, "examples": _examples}
    try:
        return handlers[args.data_command](args)
    except (FileNotFoundError, ValueError) as err:
        print(f"ccl4rec data {args.data_command}: {err}", file=sys.stderr)
        return 1
