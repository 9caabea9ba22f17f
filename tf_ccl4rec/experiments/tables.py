"""Output of a study: mean ± std over seeds, Markdown tables, results.json and PNG figures."""

from __future__ import annotations

import json
import math
import os

import numpy as np


def summarize(results: list[dict], key: str) -> dict:
    """Mean, std (ddof=1; 0 for one seed) and count of a numeric result over seeds (NaNs dropped)."""
    values = [r.get(key) for r in results]
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not values:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "n": len(values)}


def fmt(stat: dict | float | None, digits: int = 4) -> str:
    """Formats a summary: 0.6612 ± 0.0040 (several seeds), 0.6612 (one seed), n/a (none)."""
    if stat is None:
        return "n/a"
    if not isinstance(stat, dict):
        return "n/a" if math.isnan(float(stat)) else f"{float(stat):.{digits}f}"
    if stat["n"] == 0 or math.isnan(stat["mean"]):
        return "n/a"
    if stat["n"] == 1:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_study(out_dir: str, markdown: str, results: dict) -> None:
    """Writes table.md and results.json (NaN written as null)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(markdown.rstrip() + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(_jsonable(results), f, indent=1, sort_keys=True)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def figure():
    """A matplotlib (Agg) pyplot module."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    figure().close(fig)
    return path


def bar_chart(path: str, labels: list[str], series: dict[str, list[dict]], title: str) -> str:
    """Grouped bars (one group per label, one bar per series) with std error bars."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(labels) + 2), 3.8))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for i, (name, stats) in enumerate(series.items()):
        means = [s["mean"] for s in stats]
        stds = [s["std"] for s in stats]
        ax.bar(x + i * width, means, width, yerr=stds, capsize=3, label=name)
    ax.set_xticks(x + width * (len(series) - 1) / 2)
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    finite = [s["mean"] for st in series.values() for s in st if not math.isnan(s["mean"])]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 0.05), min(1.0, max(finite) + 0.05))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)


def slim_runs(results: dict) -> dict:
    """Per-run results without the per-step arrays and configs (those stay in the runs cache)."""
    drop = ("step_loss", "config")
    return {label: [{k: v for k, v in r.items() if k not in drop} for r in rs]
            for label, rs in results.items()}  # fmt: skip
