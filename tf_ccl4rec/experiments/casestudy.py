"""Figure 4: t-SNE of query / augmented positive / augmented negative user vectors, full model vs
the contrastive baseline without contrast over contrast, with the hardness of each sample.

Besides the picture (a few users), the same augmentation is scored for every user's last eval
history: Spearman correlation between a sample's hardness and its distance to the query vector.
The paper's claim is that CCL4Rec pulls high-quality positives (high a⁺, Eq 5) closer and pushes
hard negatives (high a⁻, Eq 4) farther, and the baseline does not: a negative correlation for
positives and a positive one for negatives.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from scipy.stats import spearmanr
from sklearn.manifold import TSNE

from tf_ccl4rec import augmentation as aug
from tf_ccl4rec import features as F
from tf_ccl4rec import losses
from tf_ccl4rec.experiments import tables
from tf_ccl4rec.experiments.runs import CONTRASTIVE
from tf_ccl4rec.experiments.study import StudyContext

FULL = "CCL4Rec (full)"
# The paper's contrastive baseline: L_ce + L_ccl "without adaptive pulling/pushing strengths", so
# no L_ccl⁺/⁻ and a fixed margin (δl = δu); no L_cui and no augmented cross-entropy either.
BASELINE = "contrastive baseline (L_ce + L_ccl, fixed margin)"
VARIANTS = [
    (FULL, "ccl4rec", CONTRASTIVE),
    (
        BASELINE,
        "ccl4rec",
        {"use_ccl": True, "use_ccl_pos": False, "use_ccl_neg": False, "use_cui": False,
         "use_ce_pos": False, "margin_lower": 1.0, "margin_upper": 1.0},
    ),
]  # fmt: skip
USERS_IN_FIGURE = 3


def augmented_vectors(model, columns: dict, seed: int = 0) -> dict:
    """Query, positive and negative user vectors and hardness, as in training at progress 1.

    Args:
      model: A trained CCL4RecModel.
      columns: Eval columns of the histories to augment.
      seed: Sampling seed.

    Returns:
      Dict: query [B, u], pos [B, Np, u], neg [B, Nn, u], a_pos / a_neg [B, S] (Eq 5 / Eq 4),
      d_pos / d_neg [B, S] (the model's distance to the query), valid [B].
    """
    cfg = model.config
    tf.random.set_seed(seed)
    ids = tf.constant(columns[F.MODEL_CLICK_HISTORY])
    mask = tf.not_equal(ids, F.PAD_ID)
    seq = model.video(ids)
    alpha_ij, alpha_t = model.scorer(seq, mask)
    query = model.encoder(seq, alpha_ij, alpha_t, mask)
    sub_emb = model.video(aug.sample_substitute_ids(cfg.vocab_size, cfg.effective_num_substitutes))
    beta = model.scorer.relatedness(seq, sub_emb)
    t = aug.strategy_hard_weight(cfg.strategy, 1.0)
    distance = losses.DISTANCES[cfg.distance]
    out = {"query": query.numpy()}
    for name, positive, count in (
        ("pos", True, cfg.num_positives),
        ("neg", False, cfg.num_negatives),
    ):
        samples = aug.augment(
            seq, mask, alpha_t, substitute_embeddings=sub_emb,
            draws=aug.draw_substitutes(beta, t, count), num_samples=count, positive=positive,
            hard_weight=t, config=cfg,
        )  # fmt: skip
        shape = tf.shape(samples.sequences)
        flat = tf.reshape(samples.sequences, [-1, shape[2], shape[3]])
        flat_mask = tf.reshape(tf.tile(mask[:, None, :], [1, shape[1], 1]), [-1, shape[2]])
        flat_ij, flat_t = model.scorer(flat, flat_mask)
        vectors = tf.reshape(
            model.encoder(flat, flat_ij, flat_t, flat_mask), [shape[0], shape[1], -1]
        )
        out[name] = vectors.numpy()
        out[f"a_{name}"] = samples.hardness.numpy()
        out[f"d_{name}"] = distance(query[:, None, :], vectors).numpy()
        out["valid"] = samples.row_valid.numpy()
    return out


def margin_spread(vectors: dict, config) -> dict:
    """How adaptive Eq 9's margin clip(δs·(a⁺ + a⁻), δl, δu) is on these samples.

    Returns:
      Dict: median a⁺ and a⁻, and the share of (positive, negative) pairs whose margin falls
      strictly between δl and δu (a clipped margin is the same for every pair).
    """
    valid = vectors["valid"]
    a_pos, a_neg = vectors["a_pos"][valid], vectors["a_neg"][valid]
    margin = config.margin_scale * (a_pos[:, :, None] + a_neg[:, None, :])
    inside = (margin > config.margin_lower) & (margin < config.margin_upper)
    return {
        "median_a_pos": float(np.median(a_pos)) if a_pos.size else float("nan"),
        "median_a_neg": float(np.median(a_neg)) if a_neg.size else float("nan"),
        "margin_unclipped": float(inside.mean()) if inside.size else float("nan"),
    }


def hardness_distance(vectors: dict) -> dict:
    """Spearman(hardness, distance to the query) for positives and negatives, pooled over users,
    plus the mean distances (valid rows only)."""
    valid = vectors["valid"]
    out = {}
    for name in ("pos", "neg"):
        a = vectors[f"a_{name}"][valid].reshape(-1)
        d = vectors[f"d_{name}"][valid].reshape(-1)
        out[f"spearman_{name}"] = float(spearmanr(a, d).statistic) if a.size > 2 else float("nan")
        out[f"mean_distance_{name}"] = float(d.mean()) if d.size else float("nan")
        out[f"samples_{name}"] = int(d.size)
    return out


def _tsne_panel(ax, vectors, users, title, seed):
    points = [vectors["query"][users]]
    points += [vectors["pos"][users].reshape(-1, vectors["pos"].shape[-1])]
    points += [vectors["neg"][users].reshape(-1, vectors["neg"].shape[-1])]
    stacked = np.concatenate(points)
    perplexity = max(1.0, min(5.0, (len(stacked) - 1) / 3))
    xy = TSNE(2, perplexity=perplexity, random_state=seed, init="random").fit_transform(stacked)
    n_u, n_p = len(users), vectors["pos"].shape[1]
    n_n = vectors["neg"].shape[1]
    q_xy, p_xy, n_xy = xy[:n_u], xy[n_u : n_u + n_u * n_p], xy[n_u + n_u * n_p :]
    ax.scatter(*q_xy.T, c="black", s=60, marker="*", label="query")
    ax.scatter(*p_xy.T, c="red", s=25, label="positive (a⁺)")
    ax.scatter(*n_xy.T, c="blue", s=25, label="negative (a⁻)")
    a_pos = vectors["a_pos"][users].reshape(-1)
    a_neg = vectors["a_neg"][users].reshape(-1)
    for (x, y), a in zip(p_xy, a_pos, strict=True):
        ax.annotate(f"{a:.2g}", (x, y), fontsize=6, color="red")
    for (x, y), a in zip(n_xy, a_neg, strict=True):
        ax.annotate(f"{a:.2g}", (x, y), fontsize=6, color="blue")
    for i in range(n_u):
        for j in range(n_p):
            ax.plot(*np.stack([q_xy[i], p_xy[i * n_p + j]]).T, c="red", lw=0.3, alpha=0.5)
        for j in range(n_n):
            ax.plot(*np.stack([q_xy[i], n_xy[i * n_n + j]]).T, c="blue", lw=0.3, alpha=0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def run(ctx: StudyContext) -> dict:
    out = os.path.join(ctx.out, "case-study")
    os.makedirs(out, exist_ok=True)
    p = ctx.prepared
    if p.alpha_rows is not None and len(p.alpha_rows):
        rows = p.alpha_rows
    else:  # no ground truth: each user's last eval exposure
        keys = p.eval_keys.reset_index().sort_values(F.RAW_TIMESTAMP)
        rows = keys.groupby(F.RAW_USER_ID).tail(1)["index"].to_numpy()
    columns = {k: v[rows] for k, v in p.eval.items()}
    lengths = (columns[F.MODEL_CLICK_HISTORY] != F.PAD_ID).sum(1)
    seed = int(ctx.seeds[0])
    results, models = ctx.run_variants("case-study", VARIANTS, seeds=(seed,), keep_model=True)
    rng = np.random.default_rng(seed)
    eligible = np.flatnonzero(lengths >= 10)
    if eligible.size == 0:
        eligible = np.flatnonzero(lengths >= 2)
    users = np.sort(rng.choice(eligible, min(USERS_IN_FIGURE, eligible.size), replace=False))
    stats, vectors = {}, {}
    for label, _, _ in VARIANTS:
        vectors[label] = augmented_vectors(models[label][0], columns, seed)
        stats[label] = hardness_distance(vectors[label])
        stats[label].update(margin_spread(vectors[label], models[label][0].config))
        stats[label]["auc"] = results[label][0]["auc"]
        stats[label]["rows"] = int(vectors[label]["valid"].sum())
    plt = tables.figure()
    # One t-SNE per user and model: with several users in one map, the users' clusters dominate
    # and each user's positives / negatives collapse to a dot.
    fig, axes = plt.subplots(2, len(users), figsize=(4 * len(users), 7.6), squeeze=False)
    for row, (label, _, _) in enumerate(VARIANTS):
        for col, user in enumerate(users):
            title = f"{label}\nuser {col + 1}" if col == 0 else f"user {col + 1}"
            _tsne_panel(axes[row][col], vectors[label], np.asarray([user]), title, seed)
    axes[0][0].legend(fontsize=7, loc="best")
    tables.save(fig, os.path.join(out, "case_study_tsne.png"))
    header = ["model", "eval AUC", "Spearman(a⁺, d⁺)", "Spearman(a⁻, d⁻)", "mean d⁺",
              "mean d⁻", "median a⁺", "median a⁻", "Eq 9 margins not clipped", "histories"]  # fmt: skip
    table_rows = [
        [label, tables.fmt(stats[label]["auc"]), tables.fmt(stats[label]["spearman_pos"], 3),
         tables.fmt(stats[label]["spearman_neg"], 3), tables.fmt(stats[label]["mean_distance_pos"]),
         tables.fmt(stats[label]["mean_distance_neg"]),
         f"{stats[label]['median_a_pos']:.2g}", f"{stats[label]['median_a_neg']:.2g}",
         f"{stats[label]['margin_unclipped']:.1%}", str(stats[label]["rows"])]
        for label, _, _ in VARIANTS
    ]  # fmt: skip
    md = "\n\n".join(
        [
            "### Case study: user vectors of augmented samples (paper Figure 4)",
            tables.markdown_table(header, table_rows),
            ctx.settings_text(
                f"Seed {seed} only. Augmented samples are drawn as in training at the end of the "
                f"schedule ({models[FULL][0].config.strategy}, progress 1) for each user's last eval "
                "history; d = the model's distance (1 − cosine) to the query user vector; a⁺ = Eq 5 "
                "(quality of a positive), a⁻ = Eq 4 (hardness of a negative); Eq 9's margin is "
                "clip(δs·(a⁺ + a⁻), δl, δu), so a clipped margin does not adapt. The paper expects, "
                "for CCL4Rec only, Spearman(a⁺, d⁺) < 0 (better positives closer) and "
                "Spearman(a⁻, d⁻) > 0 (harder negatives farther). The figure shows "
                f"{len(users)} users (one t-SNE per user and model; labels = hardness; lines join "
                "each sample to its query)."
            ),
            "![t-SNE](case_study_tsne.png)",
        ]
    )
    summary = {"stats": stats, "figure_rows": users.tolist(), "runs": tables.slim_runs(results)}
    tables.write_study(out, md, summary)
    return summary
