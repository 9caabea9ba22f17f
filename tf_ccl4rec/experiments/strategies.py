"""Figure 3: the five controllable-augmentation strategies' training loss and eval precision."""

from __future__ import annotations

import os

import numpy as np

from tf_ccl4rec.config import STRATEGIES
from tf_ccl4rec.experiments import tables
from tf_ccl4rec.experiments.runs import CONTRASTIVE
from tf_ccl4rec.experiments.study import StudyContext, summaries

VARIANTS = [(s, "ccl4rec", {**CONTRASTIVE, "strategy": s}) for s in STRATEGIES]


def curve_jitter(values) -> float:
    """Mean absolute change between consecutive points of the second half of a curve."""
    values = np.asarray(values, dtype=np.float64)
    half = values[len(values) // 2 :]
    return float(np.mean(np.abs(np.diff(half)))) if half.size > 1 else float("nan")


def moving_average(values, window: int) -> np.ndarray:
    """Trailing mean over `window` points (shorter at the start)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def _plot_step_loss(path, results):
    plt = tables.figure()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, rs in results.items():
        n = min(len(r["step_loss"]) for r in rs)
        window = max(1, n // 50)
        for i, r in enumerate(rs):
            ax.plot(
                np.arange(1, n + 1),
                moving_average(r["step_loss"][:n], window),
                lw=0.8,
                color=f"C{list(results).index(label)}",
                alpha=1.0 if i == 0 else 0.5,
                label=label if i == 0 else None,
            )
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (Eq 16)")
    ax.set_title(f"Per-step training loss (moving mean over {window} steps; one line per seed)",
                 fontsize=10)  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return tables.save(fig, path)


def _mean_curve(results, key):
    curves = [np.asarray(r["curves"][key], dtype=np.float64) for r in results]
    n = min(len(c) for c in curves)
    stacked = np.stack([c[:n] for c in curves])
    return np.asarray(results[0]["curves"]["step"][:n]), stacked.mean(0), stacked.std(0)


def _plot(path, results, key, ylabel, title):
    plt = tables.figure()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, rs in results.items():
        steps, mean, std = _mean_curve(rs, key)
        ax.plot(steps, mean, marker="o", markersize=3, label=label)
        if len(rs) > 1:
            ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return tables.save(fig, path)


def run(ctx: StudyContext) -> dict:
    out = os.path.join(ctx.out, "strategies")
    os.makedirs(out, exist_ok=True)
    results = ctx.run_variants("strategies", VARIANTS)
    k = ctx.ks[0]
    for rs in results.values():
        for r in rs:
            r["precision_jitter"] = curve_jitter(r["curves"][f"eval_precision_at_{k}"])
            r["loss_jitter"] = curve_jitter(r["curves"]["train_loss"])
    keys = ["auc", f"precision_at_{k}", "loss_variance_second_half", "loss_jitter",
            "precision_jitter"]  # fmt: skip
    stats = summaries(results, keys)
    header = ["strategy", "AUC", f"P@{k}", "train-loss variance (per step, 2nd half)",
              "train-loss jitter", f"eval P@{k} jitter"]  # fmt: skip
    rows = [
        [label] + [tables.fmt(stats[label][key], 5 if "loss" in key else 4) for key in keys]
        for label, _, _ in VARIANTS
    ]
    _plot_step_loss(os.path.join(out, "strategies_loss.png"), results)
    _plot(os.path.join(out, "strategies_precision.png"), results, f"eval_precision_at_{k}",
          f"eval P@{k}", f"Eval precision@{k} during training")  # fmt: skip
    _plot(os.path.join(out, "strategies_auc.png"), results, "eval_auc", "eval AUC",
          "Eval AUC during training")  # fmt: skip
    md = "\n\n".join(
        [
            "### Controllable augmentation strategies (paper Figure 3)",
            tables.markdown_table(header, rows),
            ctx.settings_text(
                "Loss variance: variance of the per-step training loss (Eq 16 as trained, "
                "contrastive terms weighted by the full model's contrastive_weight) over the second "
                "half of training. Jitter: mean absolute change between consecutive curve points "
                "(one per epoch) over the second half. The curves evaluate the whole eval split "
                "after each epoch."
            ),
            "![training loss](strategies_loss.png)\n![eval precision](strategies_precision.png)\n"
            "![eval AUC](strategies_auc.png)",
        ]
    )
    summary = {"stats": stats, "runs": tables.slim_runs(results),
               "variants": [v[0] for v in VARIANTS]}  # fmt: skip
    tables.write_study(out, md, summary)
    return summary
