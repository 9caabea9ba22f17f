"""The serving artifact: Transform graph + CCL4Rec model + the four TF Serving signatures.

Saved with ``tf.saved_model.save`` on a ``tf.Module`` (not ``model.save``) so TF Serving, TFMA and our
server all see a plain TF2 SavedModel whose signatures are the whole interface. The contract
(names, dtypes, shapes) lives in ``tf_ccl4rec/serving_contract.py``; raw ids are strings, ``""`` pads.
Unknown ids map to the OOV bucket(s); an empty click history is a cold-start user (u = 0).

Every id -> index mapping goes through the exported Transform layer, so serving uses exactly the
vocabulary, OOV buckets and history cut of training.
"""

import contextlib
import math
import os
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tf_ccl4rec import features as F
from tf_ccl4rec import serving_contract as sig
from tf_ccl4rec.preprocessing import VIDEO_VOCAB_NAME
from tf_ccl4rec.serving_contract import PREDICT, RECOMMEND, SERVING_DEFAULT, USER_EMBEDDING

# Candidates scored per step of `recommend`: bounds its memory at B * chunk for any catalogue size.
RECOMMEND_CHUNK = 4096


# ScaNN returns at most the points of the leaves it searches, and the k best of those by the
# quantised score: with about k points searched the fetch fills with whatever those leaves hold
# (MovieLens, 2 of 40 leaves for k 81-206: top-10 overlap 0.34-0.60). Searching at least this
# many points per point fetched gave the exhaustive top-10 there (docs/scaling.md).
SCANN_POINTS_SEARCHED_PER_FETCHED = 4


def scann_tree_leaves(num_videos: int) -> int:
    """About sqrt(num_videos) leaves, ScaNN's rule of thumb; at least 2 (one returns nothing)."""
    return min(max(2, round(math.sqrt(num_videos))), num_videos)


def scann_leaves(num_videos: int, k: int, leaves_searched: float) -> tuple:
    """(tree leaves, leaves searched per query) of the ScaNN index over `num_videos` vectors.

    `scann_tree_leaves` leaves. Searched: the share `leaves_searched` of them, but never fewer
    than hold `SCANN_POINTS_SEARCHED_PER_FETCHED * k` points at the mean leaf size — on small
    catalogues the share alone searches too few. E.g. 1,562 videos, k 81: 40 leaves,
    max(2, 9) = 9 searched; 1.7 M videos, k 1,050: 1,304 leaves, max(66, 4) = 66 searched.
    """
    leaves = scann_tree_leaves(num_videos)
    by_share = math.ceil(leaves * leaves_searched)
    by_fetch = math.ceil(SCANN_POINTS_SEARCHED_PER_FETCHED * k * leaves / num_videos)
    return leaves, min(leaves, max(1, by_share, by_fetch))


def scann_index(num_videos: int, k: int, leaves_searched: float):
    """An empty `tfrs.layers.factorized_top_k.ScaNN` for `num_videos` vectors returning `k`.

    Leaves as `scann_leaves` gives; the best max(2k, 100) by the quantised score are re-ranked by
    the exact dot product (ScaNN's re-ranking keeps the float vectors in the export).
    """
    try:
        import scann  # noqa: F401  (registers ScaNN's TF ops; TFRS needs it for its layer)
    except ImportError as err:
        raise ImportError(
            "retrieval_index='scann' needs the scann package: pip install '.[scann]' "
            "(or make venv SCANN=1)"
        ) from err
    leaves, searched = scann_leaves(num_videos, k, leaves_searched)
    return tfrs.layers.factorized_top_k.ScaNN(
        k=k,
        num_leaves=leaves,
        num_leaves_to_search=searched,
        num_reordering_candidates=max(2 * k, 100),
    )


def block_max_top_k(scores, k: int, block: int = 128):
    """Exact `tf.math.top_k(scores, k)` of [B, V] scores, faster for large V and k.

    The k-th largest of the per-block maxima is a lower bound of the k-th largest score (k
    blocks reach it), so only the scores at or above it (few) enter a TopK. With fewer than k
    blocks every score does. Same values as top_k; tied scores may come in another order.
    """
    scores = tf.convert_to_tensor(scores)
    num = tf.shape(scores)[1]
    blocks = -(-num // block)
    padded = tf.pad(scores, [[0, 0], [0, blocks * block - num]], constant_values=-float("inf"))
    maxima = tf.reduce_max(tf.reshape(padded, [-1, blocks, block]), axis=2)
    bound = tf.math.top_k(maxima, k=tf.minimum(k, blocks)).values[:, -1]
    bound = tf.where(blocks >= k, bound, -float("inf"))  # too few blocks: keep every score

    def one_row(row_and_bound):
        row, floor = row_and_bound
        keep = tf.reshape(tf.where(row >= floor), [-1])
        kept = tf.gather(row, keep)
        top = tf.math.top_k(kept, k=tf.minimum(k, tf.shape(kept)[0]))
        return top.values, tf.cast(tf.gather(keep, top.indices), tf.int32)

    return tf.map_fn(
        one_row,
        (scores, bound),
        fn_output_signature=(
            tf.TensorSpec([None], scores.dtype),
            tf.TensorSpec([None], tf.int32),
        ),
    )


class ExactIndex(tfrs.layers.factorized_top_k.BruteForce):
    """TFRS's BruteForce (exact MatMul over the catalogue) with `block_max_top_k` for its TopK:
    the same result; at 1.7 M videos and k = 1,050 TF's TopK cost about 3x the MatMul."""

    def call(self, queries, k=None):
        k = self._k if k is None else k
        scores = self._compute_score(queries, self._candidates)
        values, indices = block_max_top_k(scores, k)
        return values, tf.gather(self._identifiers, indices)


def _sparse_from_padded(ids):
    """[B, N] strings with "" padding -> SparseTensor of the non-empty ids (what VarLen parsing gives)."""
    ids = tf.convert_to_tensor(ids, tf.string)
    return tf.sparse.from_dense(ids)  # from_dense drops the "" (zero value for strings)


def serving_feature_spec(raw_spec: dict) -> dict:
    """The training parse spec without the label, with defaults for scalars serving may omit.

    Only the target video is required in a served tf.Example; user id, timestamp and the like
    are not model inputs at serving time (a missing history is an empty history).
    """
    spec = {}
    for name, feature in raw_spec.items():
        if name == F.LABEL:
            continue
        if (
            isinstance(feature, tf.io.FixedLenFeature)
            and feature.default_value is None
            and name != F.VIDEO_ID
        ):
            zero = b"" if feature.dtype == tf.string else 0
            size = int(np.prod(feature.shape)) if feature.shape else 1
            default = [zero] * size if feature.shape else zero
            feature = tf.io.FixedLenFeature(feature.shape, feature.dtype, default_value=default)
        spec[name] = feature
    return spec


class ServingModule(tf.Module):
    """Holds the Transform layer, the model and the vocabulary; its tf.functions are the signatures."""

    def __init__(self, model, tft_output, retrieval_candidates=None, retrieval_index=None):
        super().__init__()
        self.model = model
        self.tft_layer = tft_output.transform_features_layer()
        self._raw_spec = serving_feature_spec(tft_output.raw_feature_spec())
        self.vocab_asset = tf.saved_model.Asset(
            tft_output.vocabulary_file_by_name(VIDEO_VOCAB_NAME)
        )
        self.vocab_size = tft_output.vocabulary_size_by_name(VIDEO_VOCAB_NAME)
        self.index_to_id = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocab_asset,
                key_dtype=tf.int64,
                key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                value_dtype=tf.string,
                value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )
        self._build_retrieval(model, retrieval_candidates, retrieval_index)

    def _build_retrieval(self, model, retrieval_candidates=None, retrieval_index=None):
        """The stage-1 index of a two-stage `recommend` (config.retrieval_candidates > 0), over
        the vocabulary's video vectors (indices 1..vocab_size; padding and OOV rows left out).

        Such an export also carries, as functions of the SavedModel (not signatures):
        `recommend_exhaustive` (Eq 13 over every video, the one-stage `recommend`) and
        `retrieve` (stage 1 alone), for benchmarks and checks.
        """
        config = getattr(model, "config", None)
        if retrieval_candidates is None:
            retrieval_candidates = getattr(config, "retrieval_candidates", 0)
        self.retrieval_candidates = int(retrieval_candidates or 0)
        if not self.retrieval_candidates:
            return
        if getattr(model, "retrieval_query", None) is None:
            raise ValueError(
                "a two-stage recommend (retrieval_candidates > 0) needs a model trained with "
                "config.retrieval_weight > 0"
            )
        self.retrieval_index_type = retrieval_index or config.retrieval_index
        indices = tf.range(1, self.vocab_size + 1, dtype=tf.int64)
        vectors = model.retrieval_candidates(indices)
        if self.retrieval_index_type == "scann":
            fetch = min(self.retrieval_candidates + config.max_history, self.vocab_size)
            self.retrieval_index = scann_index(
                self.vocab_size, fetch, config.retrieval_leaves_searched
            )
        else:
            self.retrieval_index = ExactIndex(k=min(self.retrieval_candidates, self.vocab_size))
        self.retrieval_index.index(vectors, indices)
        history = [
            tf.TensorSpec([None, None], tf.string, name=sig.CLICK_HISTORY),
            tf.TensorSpec([None, None], tf.string, name=sig.NONCLICK_HISTORY),
        ]
        self.recommend_exhaustive = tf.function(
            self._recommend_exhaustive,
            autograph=False,
            input_signature=history + [tf.TensorSpec([], tf.int32, name=sig.K)],
        )
        self.retrieve = tf.function(
            self._retrieve,
            input_signature=history + [tf.TensorSpec([], tf.int32, name="n")],
            autograph=False,
        )

    # --- raw -> transformed ----------------------------------------------------------------------
    def _raw_batch(self, batch, videos=None, click_history=None, nonclick_history=None):
        """A raw-feature dict for the Transform layer; absent parts are empty, as in a parsed example."""
        empty_sparse = tf.sparse.SparseTensor(
            tf.zeros([0, 2], tf.int64), tf.zeros([0], tf.string), tf.stack([batch, 0])
        )
        raw = {}
        for name, spec in self._raw_spec.items():
            if isinstance(spec, tf.io.FixedLenFeature):
                zero = "" if spec.dtype == tf.string else 0
                default = (
                    zero
                    if spec.default_value is None
                    else np.asarray(spec.default_value).reshape(-1)[0]
                )
                shape = tf.concat([[batch], tf.constant(spec.shape, tf.int64)], axis=0)
                raw[name] = tf.fill(shape, tf.constant(default, spec.dtype))
            else:
                raw[name] = (
                    empty_sparse
                    if spec.dtype == tf.string
                    else tf.sparse.SparseTensor(
                        tf.zeros([0, 2], tf.int64), tf.zeros([0], spec.dtype), tf.stack([batch, 0])
                    )
                )
        if videos is not None:
            spec = self._raw_spec[F.VIDEO_ID]
            raw[F.VIDEO_ID] = (
                tf.reshape(videos, tf.concat([[batch], tf.constant(spec.shape, tf.int64)], 0))
                if isinstance(spec, tf.io.FixedLenFeature)
                else tf.sparse.from_dense(tf.reshape(videos, [-1, 1]))
            )
        if click_history is not None:
            raw[F.CLICK_HISTORY] = _sparse_from_padded(click_history)
        if nonclick_history is not None:
            raw[F.NONCLICK_HISTORY] = _sparse_from_padded(nonclick_history)
        return raw

    def _history_features(self, click_history, nonclick_history):
        batch = tf.shape(click_history, out_type=tf.int64)[0]
        transformed = self.tft_layer(self._raw_batch(batch, None, click_history, nonclick_history))
        return {
            F.MODEL_CLICK_HISTORY: transformed[F.MODEL_CLICK_HISTORY],
            F.MODEL_NONCLICK_HISTORY: transformed[F.MODEL_NONCLICK_HISTORY],
        }

    def _video_indices(self, ids):
        """[B, C] raw ids -> [B, C] model indices (0 where the id is "" padding)."""
        flat = tf.reshape(ids, [-1])
        batch = tf.shape(flat, out_type=tf.int64)[0]
        transformed = self.tft_layer(self._raw_batch(batch, videos=flat))
        index = tf.where(
            tf.equal(flat, ""), tf.cast(F.PAD_ID, tf.int64), transformed[F.MODEL_TARGET]
        )
        return tf.reshape(index, tf.shape(ids))

    # --- signatures -------------------------------------------------------------------------------
    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name=sig.EXAMPLES)], autograph=False
    )
    def serve_examples(self, inputs):
        parsed = tf.io.parse_example(inputs, self._raw_spec)
        transformed = self.tft_layer(parsed)
        transformed.pop(F.MODEL_LABEL, None)
        probabilities = self.model(transformed, training=False)
        return {sig.SCORES: tf.reshape(probabilities, [-1, 1])}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.string, name=sig.CLICK_HISTORY),
            tf.TensorSpec([None, None], tf.string, name=sig.NONCLICK_HISTORY),
            tf.TensorSpec([None, None], tf.string, name=sig.CANDIDATES),
        ],
        autograph=False,
    )
    def predict(self, click_history, nonclick_history, candidates):
        history = self._history_features(click_history, nonclick_history)
        candidate_index = self._video_indices(candidates)
        probabilities = self.model.score_candidates(history, candidate_index)
        return {
            sig.PROBABILITIES: tf.where(
                tf.equal(candidate_index, F.PAD_ID), tf.zeros_like(probabilities), probabilities
            )
        }

    def _clicked_indices(self, click_history, batch):
        """[B, W] model indices of every raw clicked id, sorted per user, column 0 = padding.

        Raw clicked ids beyond the model's max_history cut must be excluded too: compare
        indices. Sorted (a 0 = padding column keeps an empty history searchable), so candidates
        find their clicked ones by binary search in [B, C] memory, not [B, C, W].
        """
        all_clicked = self._video_indices(click_history)
        return tf.sort(tf.concat([tf.zeros([batch, 1], tf.int64), all_clicked], axis=1), axis=1)

    @staticmethod
    def _seen(all_clicked, candidates):
        """[B, C] bool: whether each candidate index is among the user's `all_clicked`."""
        width = tf.shape(all_clicked, out_type=tf.int64)[1]
        at = tf.minimum(tf.searchsorted(all_clicked, candidates, out_type=tf.int64), width - 1)
        return tf.equal(tf.gather(all_clicked, at, batch_dims=1), candidates)

    def _top_ids(self, best_scores, best_index):
        valid = tf.math.is_finite(best_scores)  # fewer unseen videos than k
        ids = tf.where(valid, self.index_to_id.lookup(best_index - 1), "")
        return {sig.VIDEO_IDS: ids, sig.SCORES: tf.where(valid, best_scores, 0.0)}

    def _recommend_exhaustive(self, click_history, nonclick_history, k):
        """Eq 13 over the whole vocabulary in chunks of RECOMMEND_CHUNK, clicked videos out."""
        tf.debugging.assert_positive(k, message="k must be >= 1")
        history = self._history_features(click_history, nonclick_history)
        batch = tf.shape(history[F.MODEL_CLICK_HISTORY])[0]
        vocab = tf.constant(self.vocab_size, tf.int64)
        k32 = tf.cast(tf.minimum(tf.cast(k, tf.int64), vocab), tf.int32)
        all_clicked = self._clicked_indices(click_history, batch)
        best_scores = tf.fill([batch, k32], -float("inf"))
        best_index = tf.zeros([batch, k32], tf.int64)

        def step(start, best_scores, best_index):
            end = tf.minimum(start + RECOMMEND_CHUNK, vocab + 1)
            chunk = tf.range(start, end, dtype=tf.int64)
            candidates = tf.tile(chunk[None, :], [batch, 1])
            scores = self.model.score_candidates(history, candidates)
            scores = tf.where(self._seen(all_clicked, candidates), -float("inf"), scores)
            merged_scores = tf.concat([best_scores, scores], axis=1)
            merged_index = tf.concat([best_index, candidates], axis=1)
            top = tf.math.top_k(merged_scores, k=k32)
            return end, top.values, tf.gather(merged_index, top.indices, batch_dims=1)

        _, best_scores, best_index = tf.while_loop(
            lambda start, *_: start <= vocab,
            step,
            (tf.constant(1, tf.int64), best_scores, best_index),
            shape_invariants=(
                tf.TensorShape([]),
                tf.TensorShape([None, None]),
                tf.TensorShape([None, None]),
            ),
        )
        return self._top_ids(best_scores, best_index)

    def _retrieve_indices(self, history, all_clicked, n):
        """Stage 1: the n unseen videos with the largest retrieval dot product, [B, n] indices
        and scores (-inf where fewer than n are unseen), best first."""
        queries = self.model.retrieval_queries(history)
        if self.retrieval_index_type == "scann":
            # ScaNN's k is fixed at export: N plus a history's worth of seen videos.
            scores, index = self.retrieval_index(queries)
            # ScaNN's ops give no static shape; Eq 13 needs [B, C].
            batch = tf.shape(queries)[0]
            scores, index = tf.reshape(scores, [batch, -1]), tf.reshape(index, [batch, -1])
        else:
            # Exact: the n best unseen are among the n + W best overall (W = clicked columns).
            width = tf.shape(all_clicked, out_type=tf.int64)[1]
            fetch = tf.minimum(n + width, tf.constant(self.vocab_size, tf.int64))
            scores, index = self.retrieval_index(queries, k=tf.cast(fetch, tf.int32))
        index = tf.cast(index, tf.int64)
        scores = tf.where(self._seen(all_clicked, index), -float("inf"), scores)
        n32 = tf.minimum(tf.cast(n, tf.int32), tf.shape(scores)[1])
        top = tf.math.top_k(scores, k=n32)
        return tf.gather(index, top.indices, batch_dims=1), top.values

    def _recommend_two_stage(self, click_history, nonclick_history, k):
        """Stage 1 retrieves max(N, k) unseen videos by dot product, stage 2 ranks them by
        Eq 13 (`score_candidates`); outputs as `_recommend_exhaustive`."""
        tf.debugging.assert_positive(k, message="k must be >= 1")
        history = self._history_features(click_history, nonclick_history)
        batch = tf.shape(history[F.MODEL_CLICK_HISTORY])[0]
        vocab = tf.constant(self.vocab_size, tf.int64)
        k64 = tf.minimum(tf.cast(k, tf.int64), vocab)
        n = tf.minimum(tf.maximum(tf.constant(self.retrieval_candidates, tf.int64), k64), vocab)
        all_clicked = self._clicked_indices(click_history, batch)
        retrieved, _ = self._retrieve_indices(history, all_clicked, n)
        # In index order, as the exhaustive ranking scores them: with N = the catalogue both
        # score the same [B, V] candidates in the same order and agree exactly (ties included).
        candidates = tf.sort(retrieved, axis=1)
        scores = self.model.score_candidates(history, candidates)
        # Retrieved slots past the unseen videos hold seen ones: out, as in the exhaustive path.
        scores = tf.where(self._seen(all_clicked, candidates), -float("inf"), scores)
        top = tf.math.top_k(scores, k=tf.minimum(tf.cast(k64, tf.int32), tf.shape(scores)[1]))
        return self._top_ids(top.values, tf.gather(candidates, top.indices, batch_dims=1))

    def _retrieve(self, click_history, nonclick_history, n):
        """Stage 1 alone (a function of the SavedModel, not a signature): the n unseen videos
        with the largest dot product, ids and dot products, best first."""
        history = self._history_features(click_history, nonclick_history)
        batch = tf.shape(history[F.MODEL_CLICK_HISTORY])[0]
        n = tf.minimum(tf.cast(n, tf.int64), tf.constant(self.vocab_size, tf.int64))
        all_clicked = self._clicked_indices(click_history, batch)
        index, scores = self._retrieve_indices(history, all_clicked, n)
        return self._top_ids(scores, index)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.string, name=sig.CLICK_HISTORY),
            tf.TensorSpec([None, None], tf.string, name=sig.NONCLICK_HISTORY),
            tf.TensorSpec([], tf.int32, name=sig.K),
        ],
        autograph=False,
    )
    def recommend(self, click_history, nonclick_history, k):
        if self.retrieval_candidates:
            return self._recommend_two_stage(click_history, nonclick_history, k)
        return self._recommend_exhaustive(click_history, nonclick_history, k)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.string, name=sig.CLICK_HISTORY),
            tf.TensorSpec([None, None], tf.string, name=sig.NONCLICK_HISTORY),
        ],
        autograph=False,
    )
    def user_embedding(self, click_history, nonclick_history):
        history = self._history_features(click_history, nonclick_history)
        return {sig.EMBEDDING: self.model.user_embedding(history)}

    def signatures(self):
        return {
            SERVING_DEFAULT: self.serve_examples,
            PREDICT: self.predict,
            RECOMMEND: self.recommend,
            USER_EMBEDDING: self.user_embedding,
        }


@contextlib.contextmanager
def _optimizer_left_out(model):
    """Keeps a compiled model's optimizer (Adam: two slots per variable, twice the embedding
    tables) out of the SavedModel, as Keras's own save(include_optimizer=False) does."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        yield
        return
    model.optimizer = None
    model._delete_tracking("optimizer")
    try:
        yield
    finally:
        model.optimizer = optimizer


@contextlib.contextmanager
def _no_keras_traces():
    """Leaves the Keras layers' own traced call functions out of the SavedModel, as Keras's
    save(save_traces=False) does: the signatures are what serving, TFMA and our clients call, and
    tracing every layer again cost most of an export (tiny model: a process's first export
    8.2 -> 1.9 s, later ones ~3.4 -> ~2.0 s; 690 -> 483 KB).
    tf.saved_model.save has no public switch for it; this is the scope Keras's save sets."""
    from tf_keras.src.saving.legacy.saved_model import utils as keras_saved_model_utils

    with keras_saved_model_utils.keras_option_scope(save_traces=False):
        yield


def export_serving_model(
    model, tft_output, export_dir: str, retrieval_candidates=None, retrieval_index=None
) -> str:
    """Writes the SavedModel with all four signatures to ``export_dir`` atomically.

    ``retrieval_candidates`` (default: the model config's) > 0 makes ``recommend`` two-stage:
    retrieve that many videos by dot product, rank them with Eq 13 (``ServingModule``); 0 ranks
    the whole vocabulary with Eq 13. The signatures are the same either way. ``retrieval_index``
    (default: the config's) picks stage 1's index, "brute_force" or "scann".

    The model is written to a temporary sibling directory and renamed into place, so a server
    polling the parent never sees a half-written version.
    """
    module = ServingModule(model, tft_output, retrieval_candidates, retrieval_index)
    parent = os.path.dirname(os.path.abspath(export_dir)) or "."
    tf.io.gfile.makedirs(parent)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    with _optimizer_left_out(model), _no_keras_traces():
        tf.saved_model.save(module, tmp, signatures=module.signatures())
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    os.rename(tmp, export_dir)
    return export_dir
