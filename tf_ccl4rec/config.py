"""CCL4RecConfig: every hyper-parameter of the model, with the paper's defaults (§4.1).

The config is a plain dataclass so it round-trips through JSON (`to_dict` / `from_dict`): the TFX
Trainer receives it inside `TrainerSettings`. The frozen content-feature table is NOT part of the
config; it is a numpy array passed to `CCL4RecModel(config, content_features=...)`.

NOTE: where this implementation departs from the paper (every departure is a field, off in the
"paper" preset; README "Model settings" has each one's measured effect):
- Choices the paper leaves open: Nz is clamped to the vocabulary (substitutes are drawn without
  replacement, so Nz > catalogue would repeat items); the CTR MLP sizes (§4.1 gives none); the
  content features' scale (`normalize_content_features` scales rows to unit norm).
- `scaled_attention_scores`: Eq 1-2 scores divided by sqrt(d) (and sqrt(d)·n) before the softmaxes
  of Eq 6-7, which otherwise saturate.
- `contrastive_weight`: a weight on L_ccl, L_ccl⁺, L_ccl⁻ in Eq 16 (the paper's plain sum is 1.0).
- `use_ce_neg=False`: L_ce⁻ asks for "no click" on targets the user clicked, against L_ce.
- `item_bias` and `history_statistics` (`layers/wide.py`): a per-video bias and the user's click
  statistics (lifetime and over the latest 10 exposures) added to the Eq 13 logit; Eq 13 sees the
  history only through attention averages, which lose both rates.
- `category_statistics`: the user's click rate in the candidate's category (from the raw log's
  category column) joins the wide statistics; Eq 13 could learn it from the attention-pooled
  history only on average over the user's categories.
- `warm_start_from_counts`: the wide logit starts at the count's video logits with the statistics'
  weights fitted to the training rows (logistic regression), the Eq 13 head at 0.
- The default preset trains L_ce + L_cui only (`use_ccl*`, `use_ce_pos` off): on MovieLens the
  contrastive terms and augmentation measured no better (0.7747 vs 0.7775 eval AUC, one seed)
  at about 8x the training time; the `paper` preset and `--model use_ccl=true ...` keep them.
- `video_representation="auto"`: content features when the data has a feature table (as §4.1),
  trainable ids when it has none (the paper has no id-only setting).
- `retrieval_weight`: an auxiliary in-batch softmax retrieval term (`losses.in_batch_retrieval_loss`)
  that trains a dot product between a projection of the Eq 7 user vector and the video vector
  (plus the wide logit's per-video part, exact), so `recommend` can retrieve
  `retrieval_candidates` videos by it and re-rank only those with Eq 13 (two-stage serving for
  large catalogues). Off in both presets. With `retrieval_trains_encoder` off (the default) only
  the projection learns from it, so Eq 13's training is unchanged.
- `learning_rate` 0.001 in the default preset (paper 0.003): at 0.003 the id embeddings overfit
  within the first epoch on MovieLens (eval AUC 0.762 vs 0.770 at the best epoch).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tf_ccl4rec.features import DEFAULT_MAX_HISTORY

STRATEGIES = ("random", "harder", "easier", "easy2hard", "hard2easy")
VIDEO_REPRESENTATIONS = ("id", "content", "both")
# "auto" (a preset value): "content" when the raw log has a video-feature table, else "id"; the
# Trainer resolves it before building the model.
AUTO_REPRESENTATION = "auto"
DISTANCES = ("cosine", "euclidean")
# How the click probability combines several sequences (non-click history, interest vectors):
# the mean of one shared Eq 13 head's probabilities (our reading of §4.1), or one head per
# sequence whose logits are summed (not in the paper; a head then knows which sequence it reads).
SEQUENCE_COMBINATIONS = ("mean_probability", "sum_logits")
RETRIEVAL_INDEXES = ("brute_force", "scann")  # tfrs.layers.factorized_top_k.BruteForce / ScaNN
AUGMENTATION_XLA = ("auto", "on", "off")
# "auto" compiles the augmented sequences' XLA clusters from this many elements of one batch's
# [B, Np + Nn, N, N] scores. Compiling costs 0.5-2.5 CPU s per model and shape; below ~1M
# elements the clusters saved nothing measurable per step (2026-12-07: B 32 / N 50 and
# B 128 / N 20 steps within noise of plain TF); at the paper's 6.6M they took ~50 ms to ~23
# (tf_ccl4rec/model.py).
AUGMENTATION_XLA_MIN_SCORES = 2**20
LOSS_TERMS = ("ccl", "ccl_pos", "ccl_neg", "ce", "ce_pos", "ce_neg", "cui")
# Terms that need augmented sequences (the others work on the original batch only).
AUGMENTATION_TERMS = ("ccl", "ccl_pos", "ccl_neg", "ce_pos", "ce_neg")


def layer_sizes(value, name: str = "mlp_units") -> tuple[int, ...]:
    """Hidden-layer sizes as a tuple of ints: a list (`[200, 80]`) or one int (`16`, what
    `--model mlp_units=16` gives) for a single layer. Anything else raises a ValueError that
    names the setting (a bare int used to fail deep in the Trainer with a TypeError)."""
    values = [value] if isinstance(value, int) else value
    try:
        sizes = tuple(int(u) for u in values)
        exact = all(
            not isinstance(u, (bool, str)) and u == n for u, n in zip(values, sizes, strict=True)
        )
    except (TypeError, ValueError):
        exact = False
    if not exact:
        raise ValueError(f"{name} must be a list of layer sizes, e.g. [200, 80], got {value!r}")
    return sizes


@dataclasses.dataclass
class CCL4RecConfig:
    """Hyper-parameters of CCL4Rec.

    Attributes:
      vocab_size: Number of real videos; model indices 1..vocab_size (0 is `PAD_ID`).
      num_oov_buckets: Extra indices vocab_size+1..vocab_size+num_oov_buckets for unknown videos.
        The embedding table has `1 + vocab_size + num_oov_buckets` rows.
      embedding_dim: d, the video representation size (paper: 128).
      max_history: N, the padded history length (paper: 160).
      units: Output size of W1..W4, i.e. of the user vector u (defaults to d).
      mlp_units: Hidden layer sizes of the CTR MLP (Eq 13); the paper does not give them.
      num_positives / num_negatives: Np / Nn augmented samples per user (paper: 4).
      num_substitutes: Nz substitutes sampled per batch from the whole vocabulary (paper: 10,000);
        clamped to `vocab_size` when the vocabulary is smaller (see `effective_num_substitutes`).
      filter_fraction: Share of a user's real items kept as replacement candidates (the half with
        the largest importance for negatives, the smallest for positives; §3.5).
      replace_fraction: Share of the candidates actually replaced (Nr; "half of the half", §3.5).
      min_augment_history: Rows with fewer real history items are not augmented.
      strategy: Controllable-augmentation strategy (§3.5, §4.3.1), one of `STRATEGIES`.
      margin_scale / margin_lower / margin_upper: δs, δl, δu of Eq 9/11. The paper does not give
        δs; hardness scores are products of two softmax probabilities, so the useful δs depends
        on N and Nz (tune it so most scores land in [δl, δu], as §4.1 says).
      learning_rate: Adam learning rate (paper: 0.003).
      batch_size: Paper: 32.
      l2: L2 rate on the dense weights and the looked-up embeddings (paper: 1e-7).
      video_representation: "id" (trainable embedding), "content" (trainable projection of the
        frozen content table) or "both" (their sum).
      content_feature_dim: F, the width of the content table (required unless mode is "id").
      use_<term>: Switch each loss term of Eq 16 (Table 5 ablations).
      scaled_attention_scores: Not in the paper. Divide alpha_ij by sqrt(d) and alpha_t by
        sqrt(d) * n_real before the softmaxes of Eq 6-7, which the raw scores saturate. Off (the
        paper's Eq 6-7) by default.
      contrastive_weight: Multiplies L_ccl, L_ccl⁺ and L_ccl⁻ in Eq 16. 1.0 is the paper's
        naive sum; not a paper hyper-parameter (the cosine-distance gradients scale with
        1/||u|| and can dwarf L_ce early in training, see tests/model/test_model.py).
      distance: d(.,.) of Eq 8-12. "cosine" (default): 1 - cos(a, b), i.e. half the squared
        euclidean distance between the vectors projected onto the unit hypersphere, in [0, 2].
        "euclidean": L2 distance between the unit-normalised vectors, in [0, 2].
      use_nonclick_sequence: Also encode the exposed-not-clicked history (§4.1) with its own
        scorer/encoder weights; no augmentation on it; CTR averaged over sequences.
      num_interest_vectors: K pre-computed user-interest vectors (§4.1), fed as
        `features.MODEL_INTEREST_VECTORS` float32 [B, K, interest_vector_dim]; 0 disables them.
      interest_vector_dim: Width of those vectors (defaults to embedding_dim).
      combine_sequences: "mean_probability" (one shared Eq 13 head, probabilities averaged over
        the sequences) or "sum_logits" (not in the paper: a head per sequence, logits summed).
      item_bias: Not in the paper. A learned per-video bias added to the logit of Eq 13.
      history_statistics: Not in the paper. The user's click / non-click counts before the
        exposure (`layers/wide.py`) as a linear term of the logit; reads the non-click history.
      category_statistics: Not in the paper. With `history_statistics` (ignored without it, so
        `history_statistics=false` switches the whole statistics term off), also the user's clicks
        and non-clicks in the candidate video's category, counted over the id histories
        (`layers/wide.category_statistics`); the category of each video comes from the raw log's
        `category` column (the trainer's `video_categories`); off when the log has none.
      normalize_content_features: Scale the content table's rows to unit L2 norm.
      warm_start_from_counts: Not in the paper. Start the wide logit at the user + video count
        of the training rows and the Eq 13 head at logit 0 (`CCL4RecModel.warm_start`), so
        training starts from the count's ranking instead of from noise.
      retrieval_weight: Not in the paper. Weight of an auxiliary retrieval term in Eq 16: an
        in-batch softmax over the clicked rows (`losses.in_batch_retrieval_loss`) between a
        linear projection of the Eq 7 user vector (to d) and the video representation. 0 (off)
        adds no weights; > 0 adds the projection `retrieval_query`. The retrieval dot product
        also holds the wide logit's per-video part exactly (`CCL4RecModel.retrieval_queries`).
      retrieval_trains_encoder: Not in the paper. Let the retrieval term's gradients reach the
        encoder and the video representation it shares with Eq 13 (off: only the projection
        learns from it; on MovieLens, a first version of the term without the wide part cost
        0.003 eval AUC with it on: 0.7849 vs 0.7878, one seed).
      retrieval_candidates: Not in the paper; an export choice. N > 0: the exported `recommend`
        first retrieves the N unseen videos with the largest dot product (needs
        `retrieval_weight` > 0), then ranks only those with Eq 13 (`tf_ccl4rec/export.py`). 0:
        Eq 13 over the whole vocabulary.
      retrieval_index: Index of that first stage: "brute_force" (exact, pure TF, any TF Serving)
        or "scann" (approximate; needs the scann package to export and ScaNN's ops to serve).
      retrieval_leaves_searched: Share of ScaNN's tree leaves (about sqrt(catalogue) of them)
        searched per query; only with retrieval_index "scann". More is slower and closer to exact.
        Never fewer leaves than hold 4x the videos fetched (`export.scann_leaves`): small
        catalogues search more than this share.
      augmentation_xla: Not in the paper; how the training step runs, not what it computes
        (same results within float tolerance). "on": the elementwise passes over the augmented
        sequences' scores (Eq 2, Eq 6-7) run as XLA clusters; "off": as TF ops; "auto" (default):
        on when one batch's scores hold >= `AUGMENTATION_XLA_MIN_SCORES` elements
        (`uses_augmentation_xla`).
      seed: Seed for the initialisers (sampling uses TensorFlow's global seed).
    """

    vocab_size: int = 1000
    num_oov_buckets: int = 1
    embedding_dim: int = 128
    max_history: int = DEFAULT_MAX_HISTORY
    units: int | None = None
    mlp_units: tuple[int, ...] = (200, 80)
    num_positives: int = 4
    num_negatives: int = 4
    num_substitutes: int = 10_000
    filter_fraction: float = 0.5
    replace_fraction: float = 0.5
    min_augment_history: int = 2
    strategy: str = "easy2hard"
    margin_scale: float = 1.0
    margin_lower: float = 0.5
    margin_upper: float = 1.5
    learning_rate: float = 0.003
    batch_size: int = 32
    l2: float = 1e-7
    video_representation: str = "id"
    content_feature_dim: int = 0
    use_ccl: bool = True
    use_ccl_pos: bool = True
    use_ccl_neg: bool = True
    use_ce: bool = True
    use_ce_pos: bool = True
    use_ce_neg: bool = True
    use_cui: bool = True
    contrastive_weight: float = 1.0
    scaled_attention_scores: bool = False
    distance: str = "cosine"
    use_nonclick_sequence: bool = False
    num_interest_vectors: int = 0
    interest_vector_dim: int | None = None
    combine_sequences: str = "mean_probability"
    item_bias: bool = False
    history_statistics: bool = False
    category_statistics: bool = False
    normalize_content_features: bool = False
    warm_start_from_counts: bool = False
    retrieval_weight: float = 0.0
    retrieval_trains_encoder: bool = False
    retrieval_candidates: int = 0
    retrieval_index: str = "brute_force"
    retrieval_leaves_searched: float = 0.05
    augmentation_xla: str = "auto"
    seed: int = 0

    def __post_init__(self):
        self.mlp_units = layer_sizes(self.mlp_units)
        self.validate()

    # --- derived values -----------------------------------------------------------------------
    @property
    def num_embeddings(self) -> int:
        """Rows of the video table: padding + vocabulary + OOV buckets."""
        return 1 + self.vocab_size + self.num_oov_buckets

    @property
    def effective_units(self) -> int:
        return self.units if self.units else self.embedding_dim

    @property
    def effective_num_substitutes(self) -> int:
        """Nz clamped to the vocabulary (substitutes are sampled without replacement)."""
        return min(self.num_substitutes, self.vocab_size)

    @property
    def effective_interest_vector_dim(self) -> int:
        return self.interest_vector_dim if self.interest_vector_dim else self.embedding_dim

    @property
    def reads_nonclick_history(self) -> bool:
        return self.use_nonclick_sequence or self.history_statistics

    @property
    def uses_augmentation_xla(self) -> bool:
        """Whether training compiles the augmented sequences' XLA clusters (`augmentation_xla`)."""
        if self.augmentation_xla != "auto":
            return self.augmentation_xla == "on"
        samples = self.num_positives + self.num_negatives
        return self.batch_size * samples * self.max_history**2 >= AUGMENTATION_XLA_MIN_SCORES

    def loss_enabled(self, term: str) -> bool:
        return bool(getattr(self, f"use_{term}"))

    @property
    def needs_augmentation(self) -> bool:
        return any(self.loss_enabled(t) for t in AUGMENTATION_TERMS)

    # --- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raises ValueError with a clear message on an inconsistent config."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"CCL4RecConfig: {msg}")

        need(self.vocab_size >= 1, f"vocab_size must be >= 1, got {self.vocab_size}")
        need(self.num_oov_buckets >= 0, "num_oov_buckets must be >= 0")
        need(self.embedding_dim >= 1, "embedding_dim must be >= 1")
        need(self.max_history >= 1, "max_history must be >= 1")
        need(self.units is None or self.units >= 1, "units must be >= 1 (or None for d)")
        need(all(u >= 1 for u in self.mlp_units), "mlp_units must be positive")
        need(self.num_positives >= 0 and self.num_negatives >= 0, "Np/Nn must be >= 0")
        need(self.num_substitutes >= 1, "num_substitutes must be >= 1")
        need(0.0 < self.filter_fraction <= 1.0, "filter_fraction must be in (0, 1]")
        need(0.0 < self.replace_fraction <= 1.0, "replace_fraction must be in (0, 1]")
        need(self.min_augment_history >= 2, "min_augment_history must be >= 2 (keep 1 item)")
        need(self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}")
        need(self.margin_scale > 0, "margin_scale must be > 0")
        need(
            0 <= self.margin_lower <= self.margin_upper,
            "need 0 <= margin_lower <= margin_upper",
        )
        need(self.learning_rate > 0 and self.batch_size >= 1, "learning_rate/batch_size invalid")
        need(self.l2 >= 0, "l2 must be >= 0")
        need(self.contrastive_weight >= 0, "contrastive_weight must be >= 0")
        need(
            self.video_representation in VIDEO_REPRESENTATIONS,
            f"video_representation must be one of {VIDEO_REPRESENTATIONS}",
        )
        need(
            self.video_representation == "id" or self.content_feature_dim >= 1,
            "content_feature_dim must be >= 1 when video_representation uses content",
        )
        need(self.distance in DISTANCES, f"distance must be one of {DISTANCES}")
        need(self.retrieval_weight >= 0, "retrieval_weight must be >= 0")
        need(self.retrieval_candidates >= 0, "retrieval_candidates must be >= 0 (0 = off)")
        need(
            self.retrieval_candidates == 0 or self.retrieval_weight > 0,
            "retrieval_candidates needs a trained retrieval vector: set retrieval_weight > 0",
        )
        need(
            self.retrieval_index in RETRIEVAL_INDEXES,
            f"retrieval_index must be one of {RETRIEVAL_INDEXES}",
        )
        need(
            0 < self.retrieval_leaves_searched <= 1,
            "retrieval_leaves_searched must be in (0, 1]",
        )
        need(
            self.augmentation_xla in AUGMENTATION_XLA,
            f"augmentation_xla must be one of {AUGMENTATION_XLA}",
        )
        need(self.num_interest_vectors >= 0, "num_interest_vectors must be >= 0")
        need(
            self.combine_sequences in SEQUENCE_COMBINATIONS,
            f"combine_sequences must be one of {SEQUENCE_COMBINATIONS}",
        )
        need(
            not (self.use_ccl_pos and self.num_positives == 1)
            and not (self.use_ccl_neg and self.num_negatives == 1),
            "contrast over positives/negatives needs num_positives/num_negatives >= 2",
        )
        need(
            not ((self.use_ccl or self.use_ccl_pos or self.use_ce_pos) and self.num_positives == 0),
            "ccl / ccl_pos / ce_pos need num_positives >= 1",
        )
        need(
            not ((self.use_ccl or self.use_ccl_neg or self.use_ce_neg) and self.num_negatives == 0),
            "ccl / ccl_neg / ce_neg need num_negatives >= 1",
        )

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides) -> CCL4RecConfig:
        """`PRESETS[preset]` with `overrides` on top (unknown keys raise)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESETS)}")
        return cls.from_dict({**PRESETS[preset], **overrides})

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["mlp_units"] = list(self.mlp_units)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any] | str | None) -> CCL4RecConfig:
        """Builds a config from `to_dict()` output (or its JSON string); unknown keys raise."""
        if values is None:
            return cls()
        if isinstance(values, str):
            values = json.loads(values)
        unknown = sorted(set(values) - cls.field_names())
        if unknown:
            raise ValueError(
                f"CCL4RecConfig: unknown keys {unknown}; known: {sorted(cls.field_names())}"
            )
        return cls(**values)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """Every settable key (what `from_dict` and `--model` accept)."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# Two named settings, chosen with `--preset`. "paper": §4.1 literally (the dataclass defaults).
# "default": what learned best on MovieLens-100k and the synthetic log (README "Model settings",
# measured over 3 seeds); each key is one of the departures listed in the NOTE at the top.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "default": {
        "learning_rate": 0.001,
        "batch_size": 128,
        "embedding_dim": 32,
        "num_substitutes": 500,
        "scaled_attention_scores": True,
        "contrastive_weight": 0.001,
        "use_ccl": False,
        "use_ccl_pos": False,
        "use_ccl_neg": False,
        "use_ce_pos": False,
        "use_ce_neg": False,
        "item_bias": True,
        "history_statistics": True,
        "category_statistics": True,
        "video_representation": AUTO_REPRESENTATION,
        "normalize_content_features": True,
        "warm_start_from_counts": True,
    },
}
# History length (a Transform setting) per preset: the paper's 160, or 50 for the default.
PRESET_MAX_HISTORY = {"paper": DEFAULT_MAX_HISTORY, "default": 50}
