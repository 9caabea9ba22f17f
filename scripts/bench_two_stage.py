"""Two-stage vs exhaustive `recommend` of one trained export: top-k overlap and latency.

Trains CCL4Rec with the retrieval term (`retrieval_weight`) on a raw log by the experiments' loop
(`experiments.runs.train_and_evaluate`: the Trainer's early stopping and refit; cached under
--runs), exports it with a two-stage `recommend` for each N = fraction x catalogue, and prints:

- the eval AUC of that model (compare with the default preset's: retrieval_weight is off there);
- per N, the mean over the eval split's users (each user's latest eval exposure: its click and
  non-click histories as the request) of |two-stage top-k ∩ exhaustive top-k| / k, where
  "exhaustive" is the same export's `recommend_exhaustive` (Eq 13 over every video);
- `recommend` latency both ways: one user per call (B = 1, k), in-process calls of the loaded
  SavedModel (no gRPC), p50 / p99 over --requests calls after a warm-up.

  PYTHONPATH=. python scripts/bench_two_stage.py --data DATA --cache CACHE --runs RUNS --out OUT
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_ccl4rec._env import ensure_legacy_keras  # noqa: E402

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402

from tf_ccl4rec import features as F  # noqa: E402
from tf_ccl4rec.experiments import data as exp_data  # noqa: E402
from tf_ccl4rec.experiments import runs  # noqa: E402
from tf_ccl4rec.export import export_serving_model, scann_leaves  # noqa: E402
from tf_ccl4rec.testing import vocabulary  # noqa: E402


def user_requests(prepared, vocab):
    """Each eval user's latest eval exposure as (click history, non-click history) raw ids."""
    keys = prepared.eval_keys
    latest = keys.assign(row=np.arange(len(keys))).sort_values(F.RAW_TIMESTAMP)
    rows = latest.groupby(F.RAW_USER_ID)["row"].last().to_numpy()

    def raw(indices):
        return [vocab[i - 1] for i in indices if 0 < i <= len(vocab)]

    clicks = [raw(prepared.eval[F.MODEL_CLICK_HISTORY][r]) for r in rows]
    nonclicks = [raw(prepared.eval[F.MODEL_NONCLICK_HISTORY][r]) for r in rows]
    return clicks, nonclicks


def pad(lists):
    width = max([len(x) for x in lists] + [1])
    return tf.constant([list(x) + [""] * (width - len(x)) for x in lists])


def overlap(loaded, clicks, nonclicks, k, batch=64):
    shares = []
    for start in range(0, len(clicks), batch):
        c, n = pad(clicks[start : start + batch]), pad(nonclicks[start : start + batch])
        two = loaded.signatures["recommend"](click_history=c, nonclick_history=n, k=tf.constant(k))
        full = loaded.recommend_exhaustive(c, n, k)
        for a, b in zip(two["video_ids"].numpy(), full["video_ids"].numpy(), strict=True):
            want = {v for v in b if v}
            shares.append(len(want & {v for v in a if v}) / max(len(want), 1))
    return float(np.mean(shares))


def retrieval_ranks(loaded, clicks, nonclicks, k, catalogue, batch=64):
    """Per user, the largest position (1-based) in the full retrieval order of any video of the
    exhaustive top-k: the smallest N at which the two-stage top-k is the exhaustive one."""
    worst = []
    for start in range(0, len(clicks), batch):
        c, n = pad(clicks[start : start + batch]), pad(nonclicks[start : start + batch])
        order = loaded.retrieve(c, n, catalogue)["video_ids"].numpy()
        full = loaded.recommend_exhaustive(c, n, k)["video_ids"].numpy()
        for ranked, best in zip(order, full, strict=True):
            position = {v: i + 1 for i, v in enumerate(ranked) if v}
            worst.append(max([position[v] for v in best if v] or [0]))
    return np.asarray(worst)


def latency_ms(call, clicks, nonclicks, requests, warmup=20):
    times = []
    for i in range(requests + warmup):
        u = i % len(clicks)
        c, n = pad([clicks[u]]), pad([nonclicks[u]])
        t0 = time.perf_counter()
        call(c, n)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="raw-log directory")
    parser.add_argument("--cache", required=True, help="prepared-data cache directory")
    parser.add_argument("--runs", required=True, help="runs cache directory")
    parser.add_argument("--out", required=True, help="where the exports are written")
    parser.add_argument("--max-history", type=int, default=50)
    parser.add_argument("--retrieval-weight", type=float, default=1.0)
    parser.add_argument("--fractions", default="0.1", help="N as shares of the catalogue")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-epochs", type=int, default=runs.TRAINER.max_epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--index", choices=("brute_force", "scann"), default="brute_force",
        help="stage 1's index (scann needs the [scann] extra)",
    )  # fmt: skip
    parser.add_argument(
        "--leaves-searched", type=float, default=None,
        help="scann: share of the tree's leaves searched (default: the config's)",
    )  # fmt: skip
    parser.add_argument(
        "--zero-projection",
        action="store_true",
        help="ablation: retrieve by the wide logit's per-video part alone (W = 0)",
    )
    args = parser.parse_args(argv)

    prepared = exp_data.prepare(args.data, args.cache, args.max_history)
    run = runs.spec(
        "retrieval", seed=args.seed, max_epochs=args.max_epochs,
        retrieval_weight=args.retrieval_weight,
    )  # fmt: skip
    t0 = time.perf_counter()
    result, model = runs.train_and_evaluate(run, prepared, args.runs, keep_model=True)
    print(f"trained (or loaded) in {time.perf_counter() - t0:.0f} s: eval AUC {result['auc']:.4f}")
    if args.zero_projection:
        model.retrieval_query.kernel.assign(tf.zeros_like(model.retrieval_query.kernel))
        print("ablation: retrieval projection W = 0 (the wide logit's per-video part alone)")
    if args.leaves_searched is not None:
        model.config.retrieval_leaves_searched = args.leaves_searched
    tft_output = prepared.tft_output()
    vocab = vocabulary(tft_output)
    clicks, nonclicks = user_requests(prepared, vocab)
    report = {"auc": result["auc"], "catalogue": len(vocab), "users": len(clicks), "k": args.k,
              "index": args.index,
              "leaves_searched": model.config.retrieval_leaves_searched}  # fmt: skip
    print(f"catalogue {len(vocab)} videos, {len(clicks)} eval users, k = {args.k}")
    k = tf.constant(args.k)
    for fraction in (float(f) for f in args.fractions.split(",")):
        n = max(args.k, math.ceil(fraction * len(vocab)))
        path = export_serving_model(
            model, tft_output, os.path.join(args.out, f"{args.index}_n{n}"), n, args.index
        )
        loaded = tf.saved_model.load(path)
        share = overlap(loaded, clicks, nonclicks, args.k)
        two = latency_ms(
            lambda c, h, m=loaded: m.signatures["recommend"](
                click_history=c, nonclick_history=h, k=k
            ),
            clicks, nonclicks, args.requests,
        )  # fmt: skip
        full = latency_ms(
            lambda c, h, m=loaded: m.recommend_exhaustive(c, h, k),
            clicks, nonclicks, args.requests,
        )  # fmt: skip
        report[f"n{n}"] = {"overlap": share, "two_stage_ms": two, "exhaustive_ms": full}
        if args.index == "scann":  # the export fetches N + history (recommend drops the seen)
            leaves, searched = scann_leaves(
                len(vocab), n + args.max_history, model.config.retrieval_leaves_searched
            )
            report[f"n{n}"]["leaves"] = [searched, leaves]
            print(f"ScaNN: {searched} of {leaves} leaves searched")
        print(
            f"N = {n} ({fraction:.0%}): top-{args.k} overlap {share:.3f}; recommend B=1 "
            f"two-stage p50 {two['p50']:.2f} / p99 {two['p99']:.2f} ms, exhaustive p50 "
            f"{full['p50']:.2f} / p99 {full['p99']:.2f} ms"
        )
    worst = retrieval_ranks(loaded, clicks, nonclicks, args.k, len(vocab))
    report["n_for_exact_top_k"] = {
        "median": float(np.median(worst)),
        "p90": float(np.percentile(worst, 90)),
        "max": int(worst.max()),
    }
    print(
        f"smallest N giving each user the exhaustive top-{args.k}: median {np.median(worst):.0f}, "
        f"p90 {np.percentile(worst, 90):.0f}, max {worst.max()} (of {len(vocab)})"
    )
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
