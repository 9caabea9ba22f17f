"""`ccl4rec bench pipeline`: the example builder + Transform on 1x, 2x, 4x generated logs.

For each scale: `ccl4rec data synth` with scale x the base number of users (same per-user
activity, so rows grow linearly), the Beam example builder (BuildExamples + WriteExamples on the
DirectRunner, via `tf_ccl4rec.data.cli.run_examples`), then TFT analyze + transform of the train
examples with the pipeline's `preprocessing_fn`, read and written as TFX's Transform does
(TFXIO RecordBatches in and out, `transform_examples`). Prints rows, seconds and rows/s per stage, the growth of each stage's time against 1x, and whether it grows no
worse than linearly. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import tempfile
import time

from tf_ccl4rec.bench import write_output

# A stage is "no worse than linear" when its time grows with an exponent <= 1 + this slack
# (log(t_kx / t_1x) / log(k) over the largest scale; timing noise on a shared machine).
LINEAR_SLACK = 0.10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-users", type=int, default=100, help="users of the 1x log")
    parser.add_argument("--scales", default="1,2,4", help="comma-separated multiples of the base")
    parser.add_argument("--max-history", type=int, default=50)
    parser.add_argument("--workdir", help="keep the generated data here (default: a temp dir)")
    parser.add_argument("--out", help="write the results as JSON here")


def _row_lines(batch_and_extra):
    """One text line per transformed row (sorted feature: values), to compare runners' outputs."""
    return [repr(sorted(row.items())) for row in batch_and_extra[0].to_pylist()]


def transform_examples(
    examples_dir: str,
    transform_dir: str,
    max_history: int,
    beam_args: list[str] | None = None,
    rows_prefix: str | None = None,
) -> int:
    """TFT analyze + transform of the train split as TFX's Transform component runs it.

    The examples are read by tfx_bsl's TFXIO (C++ decoding into RecordBatches, with the pipeline's
    schema) and transformed into RecordBatches; no Python dict per row on either side.
    `beam_args` picks the runner (default DirectRunner; `tf_ccl4rec.beam_runner`); with
    `rows_prefix`, every transformed row is also written as one text line (`_row_lines`) to
    `<rows_prefix>-*` (what the portable-runner test compares with DirectRunner's).

    Returns:
      The number of transformed rows.
    """
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils
    from tfx_bsl.public import tfxio

    from tf_ccl4rec.data.examples import split_dir
    from tf_ccl4rec.preprocessing import preprocessing_fn
    from tf_ccl4rec.testing import SCHEMA_PATH

    pattern = os.path.join(split_dir(examples_dir, "train"), "*.gz")
    if not glob.glob(pattern):
        raise FileNotFoundError(f"no train examples under {examples_dir}")
    schema = io_utils.parse_pbtxt_file(SCHEMA_PATH, schema_pb2.Schema())
    source = tfxio.TFExampleRecord(file_pattern=pattern, schema=schema)
    settings = {"max_history": max_history}
    from apache_beam.options.pipeline_options import PipelineOptions

    from tf_ccl4rec.beam_overhead import trim_beam_overhead

    trim_beam_overhead()  # as `ccl4rec pipeline run` does
    # (A portable runner's workers must reach the temp dir: here they share this host's /tmp.)
    with tempfile.TemporaryDirectory() as tmp, tft_beam.Context(temp_dir=tmp):
        with beam.Pipeline(options=PipelineOptions(beam_args or [])) as pipeline:
            (transformed, _), transform_fn = (
                pipeline | "Read" >> source.BeamSource(),
                source.TensorAdapterConfig(),
            ) | tft_beam.AnalyzeAndTransformDataset(
                lambda inputs: preprocessing_fn(inputs, settings), output_record_batches=True
            )
            _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
            _ = (
                transformed
                | "Rows" >> beam.Map(lambda batch_and_extra: batch_and_extra[0].num_rows)
                | "Sum" >> beam.CombineGlobally(sum)
                | "Out"
                >> beam.io.WriteToText(
                    os.path.join(transform_dir, "rows"), num_shards=1, shard_name_template=""
                )  # fmt: skip
            )
            if rows_prefix:
                _ = (
                    transformed
                    | "RowLines" >> beam.FlatMap(_row_lines)
                    | "WriteRows" >> beam.io.WriteToText(rows_prefix)
                )
    with open(os.path.join(transform_dir, "rows")) as f:
        return int(f.read())


def run_scale(users: int, workdir: str, max_history: int, progress=print) -> dict:
    """Generates one log and times the example builder and Transform on it."""
    from tf_ccl4rec.data import examples, synth
    from tf_ccl4rec.data.cli import run_examples

    data_dir = os.path.join(workdir, "data")
    t0 = time.perf_counter()
    stats = synth.synth(synth.SynthConfig(users=users), data_dir, progress=lambda s: None)
    synth_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = run_examples(
        data_dir,
        os.path.join(workdir, "examples"),
        examples.ExampleOptions(max_history=max_history),
        progress=lambda s: None,
        overwrite=True,  # a kept --workdir is rebuilt whole on the next run
    )
    examples_s = time.perf_counter() - t0
    rows = report["interactions"]["input_rows"]
    progress(f"  examples: {rows:,} raw rows in {examples_s:.1f} s")
    n_train = report["examples"]["train"]
    t0 = time.perf_counter()
    n_transformed = transform_examples(
        os.path.join(workdir, "examples"), os.path.join(workdir, "transform"), max_history
    )
    transform_s = time.perf_counter() - t0
    if n_transformed != n_train:
        raise RuntimeError(f"Transform returned {n_transformed} rows for {n_train}")
    progress(f"  transform: {n_train:,} train examples in {transform_s:.1f} s")
    return {
        "users": users,
        "raw_rows": rows,
        "train_examples": n_train,
        "synth_s": synth_s,
        "stages": {
            "examples (BuildExamples + WriteExamples)": {"rows": rows, "seconds": examples_s},
            "transform (TFT analyze + transform)": {"rows": n_train, "seconds": transform_s},
        },
        "synth_stats": stats,
    }


def run_benchmark(base_users: int, scales, max_history: int, workdir: str, progress=print):
    """Runs every scale; returns the result dict with growth ratios and linearity verdicts."""
    if base_users < 1 or not scales or min(scales) < 1:
        raise ValueError("need base_users >= 1 and positive scales")
    scales = sorted(set(scales))
    out = {"base_users": base_users, "max_history": max_history, "scales": {}}
    for k in scales:
        progress(f"[bench pipeline] {k}x: {k * base_users} users ...")
        t0 = time.time()
        result = run_scale(k * base_users, os.path.join(workdir, f"{k}x"), max_history, progress)
        for stage in result["stages"].values():
            stage["rows_per_s"] = stage["rows"] / stage["seconds"]
        out["scales"][str(k)] = result
        progress(f"[bench pipeline] {k}x done ({time.time() - t0:.0f} s)")
    out["growth"] = growth(out["scales"])
    return out


def growth(by_scale: dict) -> dict:
    """Per stage: time and row ratios against the smallest scale, the exponent, the verdict."""
    keys = sorted(by_scale, key=float)
    base = by_scale[keys[0]]
    out = {}
    for stage in base["stages"]:
        t1 = base["stages"][stage]["seconds"]
        r1 = base["stages"][stage]["rows"]
        entries = {}
        for k in keys[1:]:
            s = by_scale[k]["stages"][stage]
            row_ratio = s["rows"] / r1
            time_ratio = s["seconds"] / t1
            entries[k] = {
                "row_ratio": row_ratio,
                "time_ratio": time_ratio,
                "exponent": math.log(time_ratio) / math.log(row_ratio) if row_ratio > 1 else None,
            }
        last = entries[keys[-1]] if len(keys) > 1 else None
        exponent = last["exponent"] if last else None
        out[stage] = {
            "vs_smallest": entries,
            "exponent": exponent,
            "no_worse_than_linear": None if exponent is None else exponent <= 1 + LINEAR_SLACK,
        }
    return out


def format_report(result: dict) -> str:
    lines = [f"{'scale':>5} {'stage':42} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'x time':>7}"]
    keys = sorted(result["scales"], key=float)
    for k in keys:
        for stage, s in result["scales"][k]["stages"].items():
            g = result["growth"][stage]["vs_smallest"].get(k)
            ratio = f"{g['time_ratio']:.2f}" if g else "1.00"
            lines.append(
                f"{k + 'x':>5} {stage:42} {s['rows']:9,} {s['seconds']:8.1f} "
                f"{s['rows_per_s']:9.0f} {ratio:>7}"
            )
    for stage, g in result["growth"].items():
        if g["exponent"] is None:
            lines.append(f"growth {stage}: needs two scales")
            continue
        verdict = "yes" if g["no_worse_than_linear"] else "NO"
        lines.append(
            f"growth {stage}: time ~ rows^{g['exponent']:.2f} from {keys[0]}x to {keys[-1]}x; "
            f"no worse than linear (exponent <= {1 + LINEAR_SLACK:.2f}): {verdict}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        scales = [int(x) for x in args.scales.split(",") if x.strip()]
    except ValueError:
        print(f"ccl4rec bench pipeline: --scales must be integers, got {args.scales!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.base_users < 1 or not scales or min(scales) < 1:
        print("ccl4rec bench pipeline: need --base-users >= 1 and scales >= 1", file=sys.stderr)
        return 2
    start = time.time()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        workdir = args.workdir or tmp
        result = run_benchmark(args.base_users, scales, args.max_history, workdir,
                               progress=lambda s: print(s, flush=True))  # fmt: skip
    result["load_avg_at_start"] = load
    result["wall_s"] = time.time() - start
    print(format_report(result))
    if args.out:
        write_output(args.out, result)
    return 0
