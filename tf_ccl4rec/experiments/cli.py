"""`ccl4rec experiment {ablation,strategies,np-sweep,baselines,case-study,all}`.

Each study writes `<out>/<study>/table.md`, `results.json` and PNG figures; `all` runs the five and
assembles one results page (`--page`, default `<out>/results.md`, figures beside it in
`results/`). Data are prepared once per raw-log directory (`<out>/data-cache/`) and trained runs
are cached (`<out>/runs/`), so a model shared by several studies trains once and an interrupted
`all` resumes. A run's cache key covers its settings and the model/training/metric code
(`runs.code_version`), so changed code retrains instead of reusing stale results.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time

STUDIES = ("ablation", "strategies", "np-sweep", "baselines", "case-study")
QUICK = {"max_epochs": 1, "eager": True}


def _module(study: str):
    from tf_ccl4rec.experiments import ablation, baselines_study, casestudy, npsweep, strategies

    return {"ablation": ablation, "strategies": strategies, "np-sweep": npsweep,
            "baselines": baselines_study, "case-study": casestudy}[study]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=STUDIES + ("all",), help="which study to run")
    parser.add_argument("--data", required=True,
                        help="raw-log directory (e.g. from `ccl4rec data synth`; its "
                             "ground_truth.csv gives the oracle and α-noise AUCs)")  # fmt: skip
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per run (0..N-1)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="most epochs per run; early stopping usually ends sooner (20)")  # fmt: skip
    parser.add_argument("--top-k", type=int, nargs="+", default=[10, 50], help="ranking cut-offs")
    parser.add_argument("--protocol", choices=("alpine", "thacil"), default="alpine",
                        help="per-user P/R@K protocol (README 'Metrics')")  # fmt: skip
    parser.add_argument("--max-history", type=int, default=50, help="history length (demo: 50)")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny scale for smoke tests ({QUICK}) unless given explicitly")  # fmt: skip
    parser.add_argument("--page", default=None,
                        help="`all` only: where to write the results page (figures go to "
                             "<page dir>/results/); default <out>/results.md")  # fmt: skip


def _check(args) -> None:
    problems = []
    if not os.path.isdir(args.data):
        problems.append(f"--data {args.data!r} is not a directory")
    if args.seeds < 1:
        problems.append(f"--seeds must be >= 1, got {args.seeds}")
    if args.max_epochs is not None and args.max_epochs < 1:
        problems.append(f"--max-epochs must be >= 1, got {args.max_epochs}")
    if any(k < 1 for k in args.top_k):
        problems.append(f"--top-k values must be >= 1, got {args.top_k}")
    if args.max_history < 1:
        problems.append(f"--max-history must be >= 1, got {args.max_history}")
    if args.page and args.study != "all":
        problems.append("--page is only for `all`")
    if problems:
        raise SystemExit("ccl4rec experiment: " + "; ".join(problems))


def _command(args, max_epochs: int) -> str:
    """The command that regenerates this run (explicit values, not defaults)."""
    parts = ["ccl4rec", "experiment", "all", "--data", args.data, "--out", args.out,
             "--seeds", str(args.seeds), "--max-epochs", str(max_epochs),
             "--top-k", *map(str, args.top_k), "--protocol", args.protocol,
             "--max-history", str(args.max_history)]  # fmt: skip
    if args.page:
        parts += ["--page", args.page]
    return " ".join(shlex.quote(p) for p in parts)


def run(args) -> int:
    _check(args)
    from tf_ccl4rec.experiments.data import prepare
    from tf_ccl4rec.experiments.study import StudyContext
    from tf_ccl4rec.training_settings import TrainerSettings

    t0 = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {message}", flush=True)

    max_epochs = args.max_epochs or (QUICK["max_epochs"] if args.quick else None)
    max_epochs = max_epochs or TrainerSettings.max_epochs
    prepared = prepare(args.data, os.path.join(args.out, "data-cache"), args.max_history, say)
    ctx = StudyContext(
        prepared=prepared,
        out=args.out,
        runs_dir=os.path.join(args.out, "runs"),
        seeds=tuple(range(args.seeds)),
        max_epochs=max_epochs,
        ks=tuple(dict.fromkeys(args.top_k)),
        protocol=args.protocol,
        progress=say,
        run_eagerly=args.quick,  # a few steps: tracing would cost more than it saves
    )
    studies = STUDIES if args.study == "all" else (args.study,)
    summaries, seconds = {}, {}
    for study in studies:
        start = time.perf_counter()
        say(f"=== {study}")
        summaries[study] = _module(study).run(ctx)
        seconds[study] = time.perf_counter() - start
        say(f"=== {study} done in {seconds[study]:.0f} s -> {os.path.join(args.out, study)}/")
    if args.study == "all":
        from tf_ccl4rec.experiments import page

        command = _command(args, max_epochs)
        path = page.write_page(ctx, summaries, seconds, args.page, command)
        say(f"results page: {path}")
    say(f"done in {time.perf_counter() - t0:.0f} s")
    return 0
