"""What every study shares: the context (data, scale, seeds, protocol), running variants over
seeds with progress lines, the metric columns and the settings paragraph of each table."""

from __future__ import annotations

import dataclasses
import json
import os
import time

from tf_ccl4rec.config import PRESETS
from tf_ccl4rec.experiments import runs, tables


@dataclasses.dataclass
class StudyContext:
    """Shared settings of the studies of one `ccl4rec experiment` call.

    Attributes:
      prepared: `experiments.data.Prepared`.
      out: Output directory (each study writes `<out>/<study>/`).
      runs_dir: Cache of trained runs (shared by the studies).
      seeds: Seeds of the runs that are repeated.
      max_epochs: Most epochs per run (early stopping on the validation AUC ends most sooner).
      ks: Ranking cut-offs.
      protocol: Per-user ranking protocol.
      progress: callable(str).
      run_eagerly: Train and predict eagerly (no tracing: faster for a few steps).
    """

    prepared: object
    out: str
    runs_dir: str
    seeds: tuple = (0,)
    max_epochs: int = runs.TRAINER.max_epochs
    ks: tuple = (10, 50)
    protocol: str = "alpine"
    progress: object = print
    run_eagerly: bool = False

    def run_variants(self, study: str, variants: list[tuple], seeds=None, keep_model=False):
        """Trains every (label, model_type, overrides) variant for every seed.

        Returns:
          {label: [result per seed]} (and {label: [model per seed]} when keep_model).
        """
        seeds = tuple(self.seeds if seeds is None else seeds)
        results, models = {}, {}
        total = len(variants) * len(seeds)
        done = 0
        for label, model_type, overrides in variants:
            for seed in seeds:
                done += 1
                t0 = time.perf_counter()
                self.progress(f"[{study}] run {done}/{total}: {label}, seed {seed}")
                run = runs.spec(
                    label, model_type, seed=seed, max_epochs=self.max_epochs, **overrides
                )
                out = runs.train_and_evaluate(
                    run, self.prepared, self.runs_dir, self.ks, self.protocol,
                    progress=self.progress, keep_model=keep_model, run_eagerly=self.run_eagerly,
                )  # fmt: skip
                result, model = out if keep_model else (out, None)
                results.setdefault(label, []).append(result)
                models.setdefault(label, []).append(model)
                self.progress(
                    f"[{study}] run {done}/{total} done in {time.perf_counter() - t0:.0f} s"
                )
        return (results, models) if keep_model else results

    def settings_text(self, extra: str = "") -> str:
        """The paragraph under each table: model, data, scale, seeds and protocol."""
        s = self.prepared.stats
        k_text = ", ".join(f"K={k}" for k in self.ks)
        lines = [
            f"Full model = the {runs.FULL_PRESET!r} preset "
            f"({json.dumps(PRESETS[runs.FULL_PRESET], sort_keys=True)}), history "
            f'{self.prepared.max_history}; README "Model settings" says why it differs from the '
            "paper's.",
            f"Data: {s['train_rows']} train / {s['eval_rows']} eval exposures, {s['users']} users, "
            f"{s['vocab_size']} videos in the vocabulary ({os.path.relpath(self.prepared.data_dir)}).",
            f"Every run trained to convergence: up to {self.max_epochs} epochs, early stopping "
            f"after {runs.TRAINER.early_stopping_patience} epochs without a better AUC on each "
            f"user's latest {runs.TRAINER.validation_fraction:.0%} of training exposures (best "
            f"epoch restored); seeds {list(self.seeds)} (mean ± std over seeds where there are "
            "several).",
            f"Per-user ranking protocol: {self.protocol} ({k_text}); AUC is global over the eval "
            "exposures.",
        ]
        if extra:
            lines.append(extra)
        return "\n".join(f"- {line}" for line in lines)


def metric_header(ks) -> list[str]:
    header = ["AUC"]
    for k in ks:
        header += [f"P@{k}", f"R@{k}", f"F1@{k}"]
    return header


def metric_keys(ks) -> list[str]:
    keys = ["auc"]
    for k in ks:
        keys += [f"precision_at_{k}", f"recall_at_{k}", f"f1_at_{k}"]
    return keys


def metric_cells(results: list[dict], ks) -> list[str]:
    return [tables.fmt(tables.summarize(results, key)) for key in metric_keys(ks)]


def summaries(results: dict, keys) -> dict:
    """{label: {key: summary}} for the results of `run_variants`."""
    return {
        label: {key: tables.summarize(rs, key) for key in keys} for label, rs in results.items()
    }


def oracle_row(ctx: StudyContext, width: int, ks=None) -> list[str] | None:
    """The oracle (planted click probability) as a table row, or None without ground truth."""
    ks = tuple(ks or ctx.ks)
    oracle = runs.oracle(ctx.prepared, ks, ctx.protocol)
    if oracle is None:
        return None
    cells = [tables.fmt(oracle.get(key, float("nan"))) for key in metric_keys(ks)]
    return ["oracle (planted genuine click probability)"] + cells + ["—"] * (width - len(cells))
