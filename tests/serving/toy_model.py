"""A tiny SavedModel with exactly the serving-signature contract of ``tf_ccl4rec.serving_contract``.

It stands in for the Trainer's export so the server, client and benchmark are tested against the
same signatures the real model will have. Each version gets its own bias, so answers tell which
version served them. Run as a script to write one version::

    python tests/serving/toy_model.py --base-path /tmp/push --version 1
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from serving import layout  # noqa: E402
from serving import signatures as sig  # noqa: E402
from tf_ccl4rec import features  # noqa: E402

MODEL_NAME = "ccl4rec"


def vocabulary(size: int) -> list[str]:
    """The toy model's video ids: ``v1`` .. ``v<size>``."""
    return [f"v{i}" for i in range(1, size + 1)]


def version_bias(version: int) -> float:
    """The logit bias of ``version``: distinct per version so tests can tell versions apart."""
    return 0.25 * version


_IDS = tf.TensorSpec([None, None], tf.string)


class ToyRecommender(tf.Module):
    """Mean-of-embeddings user vector and dot-product scores, with the four serving signatures.

    Args:
      vocab_size: number of known videos; other ids map to an all-zero OOV row.
      units: embedding size D.
      bias: the logit bias (see ``version_bias``).
      seed: seed of the embedding table (shared by versions so only the bias differs).
    """

    def __init__(self, vocab_size: int = 50, units: int = 8, bias: float = 0.0, seed: int = 7):
        super().__init__(name="toy_recommender")
        self.vocab = tf.constant(vocabulary(vocab_size))
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                self.vocab, tf.range(1, vocab_size + 1, dtype=tf.int64)
            ),
            default_value=features.PAD_ID,  # OOV -> the zero row
        )
        rows = np.random.default_rng(seed).normal(0, 0.5, (vocab_size, units)).astype("float32")
        self.embeddings = tf.Variable(np.vstack([np.zeros((1, units), "float32"), rows]))
        self.bias = tf.Variable(bias, dtype=tf.float32)

    def _embed(self, ids):
        mask = tf.cast(tf.not_equal(ids, sig.PADDING), tf.float32)
        vectors = tf.gather(self.embeddings, self.table.lookup(ids)) * mask[..., None]
        return vectors, mask

    def _user(self, click_history, nonclick_history):
        def mean(ids):
            vectors, mask = self._embed(ids)
            count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
            return tf.reduce_sum(vectors, axis=1) / count

        return mean(click_history) - 0.5 * mean(nonclick_history)

    def _probabilities(self, click_history, nonclick_history, candidates):
        user = self._user(click_history, nonclick_history)
        items, mask = self._embed(candidates)
        logits = tf.einsum("bd,bcd->bc", user, items) + self.bias
        return tf.sigmoid(logits) * mask

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.EXAMPLES)])
    def serving_default(self, inputs):
        parsed = tf.io.parse_example(
            inputs,
            {
                features.VIDEO_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
                features.CLICK_HISTORY: tf.io.VarLenFeature(tf.string),
                features.NONCLICK_HISTORY: tf.io.VarLenFeature(tf.string),
            },
        )
        click = tf.sparse.to_dense(parsed[features.CLICK_HISTORY], default_value="")
        nonclick = tf.sparse.to_dense(parsed[features.NONCLICK_HISTORY], default_value="")
        probs = self._probabilities(click, nonclick, parsed[features.VIDEO_ID][:, None])
        return {sig.SCORES: probs}

    @tf.function(input_signature=[_IDS, _IDS, _IDS])
    def predict(self, click_history, nonclick_history, candidates):
        return {sig.PROBABILITIES: self._probabilities(click_history, nonclick_history, candidates)}

    @tf.function(input_signature=[_IDS, _IDS, tf.TensorSpec([], tf.int32)])
    def recommend(self, click_history, nonclick_history, k):
        user = self._user(click_history, nonclick_history)
        logits = tf.matmul(user, self.embeddings[1:], transpose_b=True) + self.bias
        clicked_idx = tf.where(
            tf.not_equal(click_history, sig.PADDING), self.table.lookup(click_history), -1
        )
        clicked = tf.reduce_any(
            tf.equal(
                clicked_idx[:, :, None], tf.range(1, tf.shape(self.vocab)[0] + 1, dtype=tf.int64)
            ),
            axis=1,
        )
        logits = tf.where(clicked, tf.constant(-np.inf, tf.float32), logits)
        # As the CCL4Rec export: k is capped at the catalogue and places no unseen video fills
        # are "" with score 0 (the server refuses such an answer: docs/serving.md).
        tf.debugging.assert_positive(k, message="k must be >= 1")
        top = tf.math.top_k(logits, k=tf.minimum(k, tf.shape(self.vocab)[0]))
        valid = tf.math.is_finite(top.values)
        return {
            sig.VIDEO_IDS: tf.where(valid, tf.gather(self.vocab, top.indices), sig.PADDING),
            sig.SCORES: tf.where(valid, tf.sigmoid(top.values), 0.0),
        }

    @tf.function(input_signature=[_IDS, _IDS])
    def user_embedding(self, click_history, nonclick_history):
        return {sig.EMBEDDING: self._user(click_history, nonclick_history)}

    def signatures(self) -> dict:
        return {name: getattr(self, name) for name in sig.SIGNATURE_NAMES}


def save_toy_model(path: str, version: int = 1, vocab_size: int = 50, units: int = 8) -> str:
    """Saves the toy model of ``version`` to ``path`` (a SavedModel directory)."""
    module = ToyRecommender(vocab_size=vocab_size, units=units, bias=version_bias(version))
    tf.saved_model.save(module, path, signatures=module.signatures())
    return path


def write_version(
    base_path: str, version: int, vocab_size: int = 50, units: int = 8, model_name=MODEL_NAME
) -> str:
    """Writes version ``version`` under ``<base_path>/<model_name>/<version>/`` atomically.

    Returns:
      The version directory.
    """
    model_path = layout.model_dir(base_path, model_name)
    with layout.atomic_version_dir(model_path, version) as tmp:
        save_toy_model(tmp, version, vocab_size=vocab_size, units=units)
    return layout.version_dir(model_path, version)


def write_corrupt_version(base_path: str, version: int, model_name=MODEL_NAME) -> str:
    """Publishes a version whose ``saved_model.pb`` is garbage (atomically, like a real push)."""
    model_path = layout.model_dir(base_path, model_name)
    with layout.atomic_version_dir(model_path, version) as tmp:
        with open(os.path.join(tmp, layout.SAVED_MODEL_FILE), "wb") as f:
            f.write(b"this is not a SavedModel proto \x00\xff" * 8)
    return layout.version_dir(model_path, version)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-path", required=True)
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=50)
    parser.add_argument("--units", type=int, default=8)
    a = parser.parse_args()
    print(write_version(a.base_path, a.version, a.vocab_size, a.units))
