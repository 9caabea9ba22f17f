"""The results page of `ccl4rec experiment all`: every study's table and figures, the command and
scale, and which of the paper's claims the numbers support (verdicts computed from the numbers
by the rule stated on the page, so a rerun rewrites them)."""

from __future__ import annotations

import math
import os
import platform
import re
import shutil

from tf_ccl4rec.config import PRESETS
from tf_ccl4rec.experiments import runs, tables
from tf_ccl4rec.metrics.ranking import protocol_description

# Differences of means count only when larger than the seeds' spread (std_a + std_b); with one
# seed, when larger than this many AUC points.
SINGLE_SEED_MARGIN = 0.005


def compare(a: dict, b: dict) -> int:
    """+1 if a's mean is above b's beyond the spread, -1 if below, 0 if within it."""
    if a["n"] == 0 or b["n"] == 0 or math.isnan(a["mean"]) or math.isnan(b["mean"]):
        return 0
    margin = a["std"] + b["std"] if min(a["n"], b["n"]) > 1 else SINGLE_SEED_MARGIN
    diff = a["mean"] - b["mean"]
    return 0 if abs(diff) <= margin else (1 if diff > 0 else -1)


def _all_beyond(comparisons: list[int]) -> bool | None:
    """True if every comparison is +1, None (contradicted) if any is -1, else False."""
    if comparisons and all(c > 0 for c in comparisons):
        return True
    return None if any(c < 0 for c in comparisons) else False


def _verdict(held: bool | None) -> str:
    return {True: "**held**", False: "**not shown**", None: "**contradicted**"}[held]


def _f(stat) -> str:
    return tables.fmt(stat)


def claims(summaries: dict) -> list[str]:
    """One line per claim of the paper, with the numbers and a verdict."""
    out = []
    if "ablation" in summaries:
        st = summaries["ablation"]["stats"]
        labels = summaries["ablation"]["variants"]
        steps = [
            compare(st[labels[i]]["auc"], st[labels[i + 1]]["auc"]) for i in range(len(labels) - 1)
        ]
        word = {1: "lower", 0: "within the spread", -1: "higher"}
        detail = "; ".join(
            f"{labels[i + 1]}: {_f(st[labels[i]]['auc'])} → {_f(st[labels[i + 1]]['auc'])} "
            f"({word[steps[i]]})"
            for i in range(len(labels) - 1)
        )
        held = True if all(s > 0 for s in steps) else (None if any(s < 0 for s in steps) else False)
        out.append(
            f"Table 5, each contrastive objective removed lowers AUC: {_verdict(held)} "
            f"({sum(s > 0 for s in steps)} of {len(steps)} removals lower AUC beyond the spread; "
            f"{detail})."
        )
        full, last = st[labels[0]]["auc"], st[labels[-1]]["auc"]
        c = compare(full, last)
        out.append(
            f"The full model beats L_ce alone (no augmentation, no contrast): "
            f"{_verdict(True if c > 0 else (False if c == 0 else None))} ({_f(full)} vs {_f(last)})."
        )
        alpha = st[labels[0]]["alpha_noise_auc"]
        chance = {"mean": 0.5, "std": 0.0, "n": 2}
        c = compare(alpha, {**chance, "n": alpha["n"]})
        out.append(
            "Learned importance α ranks planted false-positive clicks below genuine ones (what the "
            f"paper assumes, not measured there): {_verdict(True if c > 0 else (False if c == 0 else None))} "
            f"(α-noise AUC of the full model {_f(alpha)}, chance 0.5)."
        )
        ce_alpha = st[labels[-1]]["alpha_noise_auc"]
        c = compare(alpha, ce_alpha)
        out.append(
            "The contrastive objectives make α separate noise clicks better than L_ce alone (our "
            f"question, not the paper's): {_verdict(True if c > 0 else (False if c == 0 else None))} "
            f"({_f(alpha)} vs {_f(ce_alpha)})."
        )
    if "np-sweep" in summaries:
        st = summaries["np-sweep"]["stats"]
        labels = summaries["np-sweep"]["variants"]
        aucs = [st[label]["auc"] for label in labels]
        spread = max(a["mean"] for a in aucs) - min(a["mean"] for a in aucs)
        c = compare(aucs[2], aucs[0])
        out.append(
            "Table 4, performance is insensitive to Np = Nn: AUC range over {2,3,4,5} is "
            f"{spread:.4f} ({', '.join(_f(a) for a in aucs)}). Np = Nn 2 → 4 improves AUC: "
            f"{_verdict(True if c > 0 else (False if c == 0 else None))}."
        )
    if "strategies" in summaries:
        st = summaries["strategies"]["stats"]
        labels = summaries["strategies"]["variants"]
        var = {label: st[label]["loss_variance_second_half"] for label in labels}
        auc = {label: st[label]["auc"] for label in labels}
        others = [label for label in labels if label != "random"]
        random_most = _all_beyond([compare(var["random"], var[o]) for o in others])
        others = [label for label in labels if label != "easy2hard"]
        e2h_least = _all_beyond([-compare(var["easy2hard"], var[o]) for o in others])
        e2h_best = _all_beyond([compare(auc["easy2hard"], auc[o]) for o in others])
        out.append(
            f"Figure 3, random has the most jittery training loss: {_verdict(random_most)} "
            "(per-step loss variance, 2nd half: "
            + ", ".join(f"{label} {tables.fmt(var[label], 5)}" for label in labels)
            + ")."
        )
        out.append(
            f"Figure 3, easy2hard is the most stable strategy: {_verdict(e2h_least)}; and the "
            f"best: {_verdict(e2h_best)} (AUC "
            + ", ".join(f"{label} {_f(auc[label])}" for label in labels)
            + ")."
        )
    if "baselines" in summaries:
        st = summaries["baselines"]["stats"]
        labels = summaries["baselines"]["variants"]
        full = labels[0]
        rivals = [label for label in labels[1:] if label != "popularity"]  # the paper's list
        beats = [label for label in rivals if compare(st[full]["auc"], st[label]["auc"]) > 0]
        loses = [label for label in rivals if compare(st[full]["auc"], st[label]["auc"]) < 0]
        held = True if len(beats) == len(rivals) else (None if loses else False)
        out.append(
            f"Table 2, CCL4Rec beats BPR, LSTM, CNN, NCF and ATRank: {_verdict(held)} "
            f"(beats {', '.join(beats) or 'none'}; loses to {', '.join(loses) or 'none'}; AUC "
            + ", ".join(f"{label} {_f(st[label]['auc'])}" for label in labels)
            + ")."
        )
    if "case-study" in summaries:
        st = summaries["case-study"]["stats"]
        full, base = list(st)[:2]
        verdicts = {}
        for kind, sign in (("pos", -1), ("neg", 1)):
            ours, theirs = st[full][f"spearman_{kind}"], st[base][f"spearman_{kind}"]
            # Two standard errors of a rank correlation over n samples (~1/sqrt(n)).
            n = st[full].get(f"samples_{kind}") or st[full]["rows"]
            margin = 2 / math.sqrt(max(n, 1))
            if sign * ours > margin and sign * (ours - theirs) > margin:
                verdicts[kind] = True
            elif sign * ours < -margin:  # the full model shows the opposite direction
                verdicts[kind] = None
            else:
                verdicts[kind] = False
        out.append(
            "Figure 4, CCL4Rec pulls better positives closer and pushes harder negatives farther, "
            f"the baseline does not: positives {_verdict(verdicts['pos'])}, negatives "
            f"{_verdict(verdicts['neg'])} (Spearman(a⁺, d⁺) {st[full]['spearman_pos']:.3f} vs "
            f"baseline {st[base]['spearman_pos']:.3f}; Spearman(a⁻, d⁻) "
            f"{st[full]['spearman_neg']:.3f} vs {st[base]['spearman_neg']:.3f}; one seed; a "
            "correlation counts beyond two standard errors, 2/√n)."
        )
    return out


def _cutoff_note(ctx) -> str:
    """How many users have more eval exposures than each K (else top-K holds all of them)."""
    counts = ctx.prepared.eval_keys.groupby("user_id").size()
    parts = [f"{int((counts > k).sum())} of {len(counts)} users have more than {k}" for k in ctx.ks]
    return (
        f"Users have {counts.mean():.0f} eval exposures on average ({'; '.join(parts)}); where "
        "a user has at most K, top-K holds all of them and P@K / R@K equal the click rate / 1 for "
        "every model."
    )


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _digest(data_dir: str) -> str:
    import hashlib

    from tf_ccl4rec import features as F

    digest = hashlib.sha256()
    for name in (F.RAW_INTERACTIONS_FILE, F.RAW_VIDEO_FEATURES_FILE):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def _data_command(data_dir: str) -> str:
    """`ccl4rec data synth` for `data_dir` when it holds exactly the generator's default log."""
    import tempfile

    from tf_ccl4rec.data import synth

    with tempfile.TemporaryDirectory() as tmp:
        synth.synth(synth.SynthConfig(), tmp, progress=None)
        default = _digest(tmp) == _digest(data_dir)
    if default:
        return f"ccl4rec data synth --out {data_dir}   # generator defaults (identical files)"
    return f"# data: {data_dir} (not the `ccl4rec data synth` defaults)"


def write_page(ctx, summaries: dict, seconds: dict, page: str | None, command: str) -> str:
    """Writes the page (and copies the figures to `<page dir>/results/`); returns its path."""
    page = page or os.path.join(ctx.out, "results.md")
    page_dir = os.path.dirname(os.path.abspath(page))
    fig_dir = os.path.join(page_dir, "results")
    os.makedirs(fig_dir, exist_ok=True)
    sections = []
    for study in summaries:
        study_dir = os.path.join(ctx.out, study)
        with open(os.path.join(study_dir, "table.md")) as f:
            text = f.read()
        for name in sorted(os.listdir(study_dir)):
            if name.endswith(".png"):
                shutil.copy(os.path.join(study_dir, name), os.path.join(fig_dir, name))
        text = re.sub(r"\]\(([^)/]+\.png)\)", r"](results/\1)", text)
        sections.append(text.replace("### ", "## ", 1))
    s = ctx.prepared.stats
    total = sum(seconds.values())
    timing = ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
    trained = {
        r["key"]: r["wall_seconds"]
        for summary in summaries.values()
        for rs in summary.get("runs", {}).values()
        for r in rs
    }
    trained_minutes = sum(trained.values()) / 60
    epochs = [r["epochs"] for summary in summaries.values()
              for rs in summary.get("runs", {}).values() for r in rs if "epochs" in r]  # fmt: skip
    epoch_text = f"{min(epochs)}-{max(epochs)}" if epochs else "?"
    header = f"""# Results: the paper's studies on {os.path.basename(ctx.prepared.data_dir)}

Generated by `ccl4rec experiment all`; every number below comes from this command (rerun it to
regenerate the page and `results/*.png`):

```bash
{_data_command(os.path.relpath(ctx.prepared.data_dir))}
{command}
```

- Scale: {s["train_rows"]} train / {s["eval_rows"]} eval exposures, {s["users"]} users,
  {s["vocab_size"]} videos; every run trained to convergence (up to {ctx.max_epochs} epochs, early
  stopping on the validation AUC of each user's latest training exposures, best epoch restored;
  runs took {epoch_text} epochs); seeds {list(ctx.seeds)} (mean ± std where several; the case
  study uses seed {ctx.seeds[0]}).
- Full model: the {runs.FULL_PRESET!r} preset {PRESETS[runs.FULL_PRESET]}, history
  {ctx.prepared.max_history} (README "Model settings" lists each departure from the paper and its
  measured effect). Every ablation toggles loss terms from there: the contrastive terms enter
  Eq 16 multiplied by contrastive_weight = {PRESETS[runs.FULL_PRESET]["contrastive_weight"]}, so
  they measure small contrastive terms beside L_ce, not the paper's balance.
- Metrics: AUC global over eval exposures; per-user P/R/F1@K with the **{ctx.protocol}** protocol
  {protocol_description(ctx.protocol)} {_cutoff_note(ctx)} Oracle = the planted genuine click probability from `ground_truth.csv`
  scored the same way; α-noise AUC = how well Eq 2's importance ranks planted false-positive
  clicks below genuine clicks in users' histories (0.5 = chance).
- Run time: the {len(trained)} distinct trained runs took {trained_minutes:.1f} min of wall time
  when they were trained; this invocation took {total / 60:.1f} min ({timing}; runs already in
  `--out`'s cache are reused; the full model of the ablation is also the baselines' and the case study's). {platform.machine()},
  {os.cpu_count()} CPU cores shared with other work (load average at the end: {_load()}).

## Which of the paper's claims held here

Verdict rule: a difference of two rows' means counts when it is larger than the sum of their
standard deviations over seeds (with one seed: larger than {SINGLE_SEED_MARGIN} AUC). "not shown" = within
that spread; "contradicted" = the opposite direction beyond it.

""" + "\n".join(f"- {line}" for line in claims(summaries))
    with open(page, "w") as f:
        f.write(header + "\n\n" + "\n\n".join(sections).rstrip() + "\n")
    return page
