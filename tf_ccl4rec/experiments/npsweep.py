"""Table 4: the number of augmented positives / negatives, Np = Nn in {2, 3, 4, 5}."""

from __future__ import annotations

import os

from tf_ccl4rec.experiments import tables
from tf_ccl4rec.experiments.runs import CONTRASTIVE
from tf_ccl4rec.experiments.study import StudyContext, metric_cells, metric_header, summaries

COUNTS = (2, 3, 4, 5)
VARIANTS = [
    (f"Np = Nn = {n}", "ccl4rec", {**CONTRASTIVE, "num_positives": n, "num_negatives": n})
    for n in COUNTS
]


def run(ctx: StudyContext) -> dict:
    out = os.path.join(ctx.out, "np-sweep")
    os.makedirs(out, exist_ok=True)
    results = ctx.run_variants("np-sweep", VARIANTS)
    stats = summaries(results, ["auc", f"precision_at_{ctx.ks[0]}", "alpha_noise_auc",
                                "train_seconds_per_epoch"])  # fmt: skip
    header = ["Np, Nn"] + metric_header(ctx.ks) + ["α-noise AUC", "train s/epoch"]
    rows = [
        [str(n)] + metric_cells(results[label], ctx.ks)
        + [tables.fmt(stats[label]["alpha_noise_auc"]),
           tables.fmt(stats[label]["train_seconds_per_epoch"], 1)]
        for n, (label, _, _) in zip(COUNTS, VARIANTS, strict=True)
    ]  # fmt: skip
    plt = tables.figure()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for key, name in (("auc", "eval AUC"), ("alpha_noise_auc", "α-noise AUC")):
        means = [stats[v[0]][key]["mean"] for v in VARIANTS]
        stds = [stats[v[0]][key]["std"] for v in VARIANTS]
        ax.errorbar(COUNTS, means, yerr=stds, marker="o", capsize=3, label=name)
    ax.set_xlabel("Np = Nn")
    ax.set_xticks(COUNTS)
    ax.set_title("Number of augmented positives / negatives", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    tables.save(fig, os.path.join(out, "np_sweep.png"))
    md = "\n\n".join(
        [
            "### Number of augmented positives / negatives (paper Table 4)",
            tables.markdown_table(header, rows),
            ctx.settings_text("Np = Nn = 4 is the full model."),
            "![Np sweep](np_sweep.png)",
        ]
    )
    summary = {"stats": stats, "runs": tables.slim_runs(results),
               "variants": [v[0] for v in VARIANTS]}  # fmt: skip
    tables.write_study(out, md, summary)
    return summary
