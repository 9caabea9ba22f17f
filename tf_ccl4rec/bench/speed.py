"""`ccl4rec bench train` / `ccl4rec bench infer`: CCL4Rec vs its CE-only ablation vs baselines.

Runs every (setting, model) in its own subprocess (tf_ccl4rec.bench.workload), measures the
machine's float32 matmul peak several times in the same run (before, between and after the model
runs; the best sample is the denominator, so one sample taken while another job ran cannot inflate
the percentages), prints a table, the CCL4Rec/ATRank speed ratios and the speed goals (the paper's
Table 3 claims) judged from the measured numbers, and writes everything as JSON. The load average
is recorded before and after; a run with the 1-minute load above the core count says that its
figures are unreliable.
Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

from tf_ccl4rec.bench import workload, write_output

# Speed and size goals: the paper's Table 3 claims, restated for this port.
FLOP_BOUND_FRACTION = 0.30
TRAIN_SPEEDUP = 10.0
INFER_SPEEDUP = 20.0
PAPER_PARAMETERS = 758_341
STEP_MS = 250.0  # issue 15: the training step at paper settings (it was 406-499 ms)
PEAK_SAMPLES = 3  # before, between and after the model runs


def add_arguments(parser: argparse.ArgumentParser, mode: str) -> None:
    """Flags of `bench train` (mode "train") or `bench infer` (mode "infer")."""
    steps, warmup = (20, 3) if mode == "train" else (200, 20)
    parser.add_argument("--models", default=",".join(workload.MODELS), help="comma-separated")
    # paper-users differs from paper in training only (Eq 3 on the distinct history items).
    settings = "paper,paper-users,demo" if mode == "train" else "paper,demo"
    parser.add_argument(
        "--settings", default=settings, help=f"comma-separated: {', '.join(workload.SETTINGS)}"
    )
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--peak-size", type=int, default=2048, help="matrix size of the matmul-peak loop"
    )
    parser.add_argument(
        "--peak-samples",
        type=int,
        default=PEAK_SAMPLES,
        help="matmul-peak measurements spread over the run (>= 2: first before, last after)",
    )
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--markdown", help="also write the table as Markdown here (README)")


def _loadavg():
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def machine(loadavg=_loadavg) -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_at_start": loadavg()}


def peak_positions(runs: int, samples: int) -> list[int]:
    """Before which model run (0..runs; ``runs`` = after the last) each peak sample is taken.

    Evenly spread: the first before every run, the last after all of them, the others between.
    """
    if samples < 2:
        raise ValueError(f"need >= 2 peak samples (before and after), got {samples}")
    return [round(j * runs / (samples - 1)) for j in range(samples)]


def unreliable_loads(machine_: dict, peak_samples=()) -> list[tuple[str, float]]:
    """(when, 1-minute load) of each recorded load above the core count: at start, at each peak
    sample, at end."""
    cores = machine_["cores"]
    loads = [("start", machine_.get("load_avg_at_start"))]
    loads += [(f"peak sample {i + 1}", p.get("load_avg")) for i, p in enumerate(peak_samples)]
    loads.append(("end", machine_.get("load_avg_at_end")))
    return [(when, load[0]) for when, load in loads if load and cores and load[0] > cores]


def _parse_list(text: str, allowed, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if not items or bad:
        raise ValueError(f"--{what}: unknown {bad or 'empty list'}; choose from {list(allowed)}")
    return items


def run_benchmark(
    mode: str,
    models,
    settings,
    steps: int,
    warmup: int,
    batch_size: int = 32,
    progress=print,
    peak_size: int = 2048,
    peak_samples: int = PEAK_SAMPLES,
    worker=None,
    loadavg=_loadavg,
) -> dict:
    """Measures every (setting, model) and the matmul peak; returns the result dict.

    Args:
      mode: "train" or "infer".
      models: Model names from workload.MODELS.
      settings: Setting names from workload.SETTINGS.
      steps: Timed steps (train) or calls (infer) per model.
      warmup: Untimed steps before them (the first one traces the tf.function).
      batch_size: Impressions per batch.
      progress: Callable for one line per stage.
      peak_size: Matrix size of the matmul-peak loop (large enough to saturate the cores).
      peak_samples: Peak measurements spread over the run (see `peak_positions`); the best is
        the denominator of every "% of peak".
      worker: ``worker(mode, **kwargs) -> dict`` running one measurement (default: a
        subprocess, `workload.run_in_subprocess`); tests inject fakes.
      loadavg: ``() -> (1, 5, 15-minute load)`` (default ``os.getloadavg``).

    Returns:
      Dict with "machine" (load at start and end), "matmul_peak" (best "gflops" and every
      sample), "results" (setting -> model -> figures), "ratios", "goals" and "unreliable"
      (the loads above the core count).
    """
    if mode not in ("train", "infer"):
        raise ValueError(f"mode must be 'train' or 'infer', got {mode!r}")
    if steps < 1 or warmup < 0 or batch_size < 1:
        raise ValueError("need steps >= 1, warmup >= 0 and batch_size >= 1")
    worker = worker or workload.run_in_subprocess
    out = {"mode": mode, "machine": machine(loadavg), "batch_size": batch_size, "results": {}}
    progress(
        f"[bench {mode}] load average at start {_load_text(out['machine']['load_avg_at_start'])}"
    )
    start = time.time()
    runs = [(setting, model) for setting in settings for model in models]
    positions = peak_positions(len(runs), peak_samples)
    samples = []

    def sample_peak(before_run):
        progress(f"[bench {mode}] float32 matmul peak ({peak_size}^3 tf.function loop) ...")
        peak = worker("peak", peak_size=peak_size)
        peak["before_run"] = before_run  # index into the model runs; len(runs) = after the last
        peak["load_avg"] = loadavg()
        samples.append(peak)
        progress(f"[bench {mode}] matmul peak sample {len(samples)}/{peak_samples}: "
                 f"{peak['gflops']:.1f} GFLOP/s")  # fmt: skip

    for i, (setting, model) in enumerate(runs):
        for _ in range(positions.count(i)):
            sample_peak(i)
        t0 = time.time()
        progress(f"[bench {mode}] {setting}/{model}: {warmup} warm-up + {steps} timed ...")
        result = worker(
            mode, setting=setting, model=model, steps=steps, warmup=warmup,
            batch_size=batch_size,
        )  # fmt: skip
        out["results"].setdefault(setting, {})[model] = result
        progress(f"[bench {mode}] {setting}/{model}: {_headline(mode, result)} "
                 f"({time.time() - t0:.0f} s)")  # fmt: skip
    for _ in range(positions.count(len(runs))):
        sample_peak(len(runs))
    best = max(samples, key=lambda p: p["gflops"])
    out["matmul_peak"] = {"gflops": best["gflops"], "size": peak_size, "samples": samples}
    for cells in out["results"].values():
        for result in cells.values():
            result["fraction_of_peak"] = result["achieved_gflops"] / best["gflops"]
    out["machine"]["load_avg_at_end"] = loadavg()
    out["unreliable"] = unreliable_loads(out["machine"], samples)
    progress(f"[bench {mode}] load average at end {_load_text(out['machine']['load_avg_at_end'])}")
    out["ratios"] = ratios(mode, out["results"])
    out["goals"] = goals(mode, out["results"], out["ratios"])
    out["wall_s"] = time.time() - start
    return out


def _load_text(load) -> str:
    return "unknown" if not load else ", ".join(f"{x:.2f}" for x in load)


def _peak_text(result: dict) -> str:
    peak = result["matmul_peak"]
    shown = ", ".join(f"{p['gflops']:.1f}" for p in peak.get("samples", []))
    return f"{peak['gflops']:.1f} GFLOP/s (float32; best of the samples {shown})"


def unreliable_text(result: dict) -> str | None:
    """The warning a loaded run prints, or None."""
    bad = result.get("unreliable") or []
    if not bad:
        return None
    loads = ", ".join(f"{load:.2f} at {when}" for when, load in bad)
    return (
        f"UNRELIABLE: 1-minute load average {loads} is above the {result['machine']['cores']} "
        "cores; other jobs shared the CPU, so the times and the % of peak figures are unreliable"
    )


def _headline(mode, r) -> str:
    if mode == "train":
        return f"{r['ms_per_step']:.1f} ms/step, {r['impressions_per_s']:.0f} impressions/s"
    return f"p50 {r['infer_ms_p50']:.2f} ms, p99 {r['infer_ms_p99']:.2f} ms per batch"


def ratios(mode: str, results: dict) -> dict:
    """CCL4Rec's speed over ATRank's (and over the other models) per setting, from the figures."""
    out = {}
    for setting, cells in results.items():
        if "ccl4rec" not in cells:
            continue
        mine = _speed(mode, cells["ccl4rec"])
        out[setting] = {
            f"ccl4rec_vs_{model}": mine / _speed(mode, r)
            for model, r in cells.items()
            if model != "ccl4rec"
        }
    return out


def _speed(mode, r) -> float:
    # Train: impressions/s; infer: 1 / p50 latency (same batch size for every model).
    return r["impressions_per_s"] if mode == "train" else 1.0 / r["infer_ms_p50"]


def goals(mode: str, results: dict, ratio: dict) -> list[dict]:
    """The speed and size goals at paper settings, each judged from the measured numbers."""
    paper = results.get("paper", {})
    out = []

    def goal(name, measured, target, higher_is_better=True):
        if measured is None:
            out.append({"goal": name, "target": target, "measured": None, "met": None})
            return
        met = measured >= target if higher_is_better else measured <= target
        out.append({"goal": name, "target": target, "measured": measured, "met": bool(met)})

    ccl = paper.get("ccl4rec")
    if ccl is not None:
        goal("non-embedding parameters <=", ccl["parameters"]["non_embedding"], PAPER_PARAMETERS,
             higher_is_better=False)  # fmt: skip
    if mode == "train":
        goal(
            "training fraction of the matmul (FLOP) bound >=",
            ccl["fraction_of_peak"] if ccl else None,
            FLOP_BOUND_FRACTION,
        )
        goal(
            "training speed CCL4Rec / ATRank >=",
            ratio.get("paper", {}).get("ccl4rec_vs_atrank"),
            TRAIN_SPEEDUP,
        )
        for setting in ("paper", "paper-users"):
            cell = results.get(setting, {}).get("ccl4rec")
            goal(
                f"training ms/step at {setting} settings <=",
                cell["ms_per_step"] if cell else None,
                STEP_MS,
                higher_is_better=False,
            )
    else:
        goal(
            "inference speed CCL4Rec / ATRank >=",
            ratio.get("paper", {}).get("ccl4rec_vs_atrank"),
            INFER_SPEEDUP,
        )
    return out


def relatedness_rows_text(result: dict) -> str | None:
    """The rows of Eq 3 per batch (distinct click-history items) of each CCL4Rec train cell."""
    shown = [
        f"{setting} {r['relatedness_rows']:,.0f}"
        for setting, cells in result["results"].items()
        for model, r in cells.items()
        if model == "ccl4rec" and "relatedness_rows" in r
    ]
    if not shown:
        return None
    return (
        "Eq 3 rows per batch (the distinct items of its click histories, mean of the batches): "
        + ", ".join(shown)
    )


def format_report(result: dict) -> str:
    """The table, ratios and goal verdicts as text."""
    mode = result["mode"]
    m = result["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, load average at start "
        f"{_load_text(m['load_avg_at_start'])}, at end {_load_text(m.get('load_avg_at_end'))}; "
        f"matmul peak {_peak_text(result)}",
        f"batch {result['batch_size']}",
    ]
    warning = unreliable_text(result)
    if warning:
        lines.append(warning)
    if mode == "train":
        head = (f"{'setting':11} {'model':11} {'ms/step':>9} {'impr/s':>8} {'GFLOP/step':>10} "
                f"{'GFLOP/s':>8} {'%peak':>6} {'params emb':>11} {'non-emb':>9} {'peak MB':>8}")  # fmt: skip
    else:
        head = (f"{'setting':11} {'model':11} {'p50 ms':>8} {'p99 ms':>8} {'impr/s':>8} "
                f"{'GFLOP/batch':>11} {'GFLOP/s':>8} {'%peak':>6} {'params emb':>11} "
                f"{'non-emb':>9} {'peak MB':>8}")  # fmt: skip
    lines.append(head)
    for setting, cells in result["results"].items():
        for model, r in cells.items():
            p = r["parameters"]
            if mode == "train":
                lines.append(
                    f"{setting:11} {model:11} {r['ms_per_step']:9.1f} "
                    f"{r['impressions_per_s']:8.0f} {r['gflop_per_step']:10.2f} "
                    f"{r['achieved_gflops']:8.1f} {100 * r['fraction_of_peak']:6.1f} "
                    f"{p['embedding']:11,} {p['non_embedding']:9,} {r['peak_rss_mb']:8.0f}"
                )
            else:
                lines.append(
                    f"{setting:11} {model:11} {r['infer_ms_p50']:8.2f} {r['infer_ms_p99']:8.2f} "
                    f"{r['impressions_per_s']:8.0f} {r['gflop_per_batch']:11.3f} "
                    f"{r['achieved_gflops']:8.1f} {100 * r['fraction_of_peak']:6.1f} "
                    f"{p['embedding']:11,} {p['non_embedding']:9,} {r['peak_rss_mb']:8.0f}"
                )
    rows = relatedness_rows_text(result)
    if rows:
        lines.append(rows)
    what = "training impressions/s" if mode == "train" else "1 / p50 inference latency"
    for setting, rs in result["ratios"].items():
        if rs:  # a setting run with CCL4Rec alone has nothing to compare
            text = ", ".join(f"{k} {v:.2f}x" for k, v in rs.items())
            lines.append(f"speed ratios ({what}), {setting}: {text}")
    for g in result["goals"]:
        if g["met"] is None:
            verdict = "NOT MEASURED (run the paper settings with ccl4rec and atrank)"
        else:
            verdict = "MET" if g["met"] else "MISSED"
        value = g["measured"]
        shown = (
            "-" if value is None else (f"{value:,}" if isinstance(value, int) else f"{value:.3f}")
        )
        lines.append(f"goal: {g['goal']} {g['target']:,}: measured {shown} -> {verdict}")
    return "\n".join(lines)


def markdown_table(result: dict) -> str:
    """The measured table as Markdown, headed by the machine, load and matmul peak."""
    mode = result["mode"]
    m = result["machine"]
    samples = ", ".join(f"{p['gflops']:.1f}" for p in result["matmul_peak"].get("samples", []))
    lines = [
        f"`ccl4rec bench {mode}`: {m['cpu']}, {m['cores']} cores, load average at start "
        f"{_load_text(m['load_avg_at_start'])}, at end {_load_text(m.get('load_avg_at_end'))}; "
        f"float32 matmul peak measured in the same run {result['matmul_peak']['gflops']:.1f} "
        f"GFLOP/s (best of the samples {samples}); batch {result['batch_size']}.",
        "",
    ]
    warning = unreliable_text(result)
    if warning:
        lines[-1:-1] = ["", f"**{warning}.**"]
    if mode == "train":
        lines += [
            "| setting | model | ms/step | impressions/s | GFLOP/step | GFLOP/s | % of peak "
            "| params embedding / non-embedding | peak RSS MB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines += [
            "| setting | model | p50 ms | p99 ms | impressions/s | GFLOP/batch | % of peak "
            "| params embedding / non-embedding | peak RSS MB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for setting, cells in result["results"].items():
        for model, r in cells.items():
            p = r["parameters"]
            params = f"{p['embedding']:,} / {p['non_embedding']:,}"
            pct = f"{100 * r['fraction_of_peak']:.1f}"
            if mode == "train":
                cols = [f"{r['ms_per_step']:.1f}", f"{r['impressions_per_s']:.0f}",
                        f"{r['gflop_per_step']:.2f}", f"{r['achieved_gflops']:.1f}", pct]  # fmt: skip
            else:
                cols = [f"{r['infer_ms_p50']:.2f}", f"{r['infer_ms_p99']:.2f}",
                        f"{r['impressions_per_s']:.0f}", f"{r['gflop_per_batch']:.3f}", pct]  # fmt: skip
            row = [setting, model, *cols, params, f"{r['peak_rss_mb']:.0f}"]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    rows = relatedness_rows_text(result)
    if rows:
        lines.append(f"- {rows}")
    for setting, rs in result["ratios"].items():
        if rs:
            text = ", ".join(f"{k.removeprefix('ccl4rec_vs_')} {v:.2f}×" for k, v in rs.items())
            lines.append(f"- CCL4Rec speed over, {setting}: {text}")
    for g in result["goals"]:
        verdict = "not measured" if g["met"] is None else ("**met**" if g["met"] else "**missed**")
        value = g["measured"]
        shown = (
            "-" if value is None else (f"{value:,}" if isinstance(value, int) else f"{value:.3f}")
        )
        lines.append(f"- goal {g['goal']} {g['target']:,}: measured {shown}, {verdict}")
    return "\n".join(lines) + "\n"


def _check_finite(result: dict) -> None:
    for cells in result["results"].values():
        for model, r in cells.items():
            for key, value in r.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise RuntimeError(f"{model}: {key} is {value}")


def run(args: argparse.Namespace, mode: str) -> int:
    try:
        models = _parse_list(args.models, workload.MODELS, "models")
        settings = _parse_list(args.settings, workload.SETTINGS, "settings")
    except ValueError as err:
        print(f"ccl4rec bench {mode}: {err}", file=sys.stderr)
        return 2
    if args.peak_samples < 2:
        print(f"ccl4rec bench {mode}: --peak-samples must be >= 2", file=sys.stderr)
        return 2
    result = run_benchmark(mode, models, settings, args.steps, args.warmup, args.batch_size,
                           progress=lambda s: print(s, flush=True), peak_size=args.peak_size,
                           peak_samples=args.peak_samples)  # fmt: skip
    _check_finite(result)
    print(format_report(result))
    if args.out:
        write_output(args.out, result)
    if args.markdown:
        write_output(args.markdown, markdown_table(result))
    return 0
