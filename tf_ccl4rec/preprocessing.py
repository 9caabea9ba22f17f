"""Transform's ``preprocessing_fn``: raw tf.Example features -> the model's integer features.

- One video vocabulary over targets and both histories (a video seen only in histories still gets an
  index), with a frequency threshold and OOV buckets; indices are shifted by one so ``PAD_ID = 0``.
- Histories are densified to ``[B, max_history]``, right-padded with ``PAD_ID``.
- User ids are hashed (they only group rows for L_cui, Eq 15; no user embedding, as in the paper).
The transform graph is exported with the model, so serving applies exactly this mapping.
"""

import tensorflow as tf
import tensorflow_transform as tft

from tf_ccl4rec import features as F

VIDEO_VOCAB_NAME = "video_vocab"
DEFAULTS = {
    "max_history": F.DEFAULT_MAX_HISTORY,
    "frequency_threshold": 1,
    "num_oov_buckets": 1,
    "num_user_buckets": 1 << 20,
}


def transform_settings(custom_config=None) -> dict:
    """DEFAULTS overridden by the Transform component's custom_config (unknown keys are errors)."""
    settings = dict(DEFAULTS)
    overrides = dict(custom_config or {})
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown Transform settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    settings.update(overrides)
    return settings


def _scalar(x, default):
    """A [B] dense tensor from a FixedLen ([B] or [B, 1]) or VarLen (sparse/ragged) scalar feature."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(x, default_value=default)
    elif isinstance(x, tf.RaggedTensor):
        x = x.to_tensor(default_value=default)
    if x.shape.rank == 2:
        # A VarLen scalar densifies to [B, 0] when the whole batch lacks it.
        x = tf.pad(x, [[0, 0], [0, 1]], constant_values=default)[:, 0]
    return x


def recent_click_count(given, clicks, nonclicks):
    """float32 [B]: clicks among the latest `F.RECENT_WINDOW` exposures.

    Args:
      given: int [B] `F.RECENT_CLICK_COUNT` (-1 where a row lacks it), or None.
      clicks / nonclicks: float32 [B] the user's counts (`F.MODEL_CLICK_COUNT`, ...).

    Returns:
      `given` clipped to the window (min(RECENT_WINDOW, exposures)); where it is absent, the share
      of the window that the lifetime click rate predicts (recent rate = lifetime rate).
    """
    window = tf.minimum(float(F.RECENT_WINDOW), clicks + nonclicks)
    fallback = tf.math.divide_no_nan(window * clicks, clicks + nonclicks)
    if given is None:
        return fallback
    given = tf.cast(given, tf.float32)
    return tf.where(given >= 0, tf.minimum(given, window), fallback)


def _ragged(x):
    if isinstance(x, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(x)
    if isinstance(x, tf.RaggedTensor):
        return x
    return tf.RaggedTensor.from_tensor(x)


def preprocessing_fn(inputs, custom_config=None):
    """Maps raw example features (``features.EXAMPLE``) to model features (``features.MODEL_*``).

    Args:
      inputs: dict of raw features as TFT parses them with ``schemas/schema.pbtxt``.
      custom_config: optional overrides of ``DEFAULTS``.

    Returns:
      dict with MODEL_TARGET, MODEL_CLICK_HISTORY, MODEL_NONCLICK_HISTORY, MODEL_USER and (when the
      label is present) MODEL_LABEL.
    """
    settings = transform_settings(custom_config)
    max_history = int(settings["max_history"])

    target = _scalar(inputs[F.VIDEO_ID], b"")
    histories = {name: _ragged(inputs[name]) for name in F.HISTORY_FEATURES}
    all_videos = tf.concat([target] + [h.flat_values for h in histories.values()], axis=0)
    # A threshold of 1 keeps every video: TFT wants None for that (else it warns on every run).
    threshold = int(settings["frequency_threshold"])
    # Unit weights count the same frequencies, but TFT then reduces each batch to its unique
    # tokens before Beam sees them (unweighted, every token is a Beam element): Transform
    # 20.2-22.4 -> 15.3-20.6 s on the MovieLens dev half, the same vocabulary file.
    vocab = tft.vocabulary(
        all_videos,
        weights=tf.ones_like(all_videos, dtype=tf.float32),
        vocab_filename=VIDEO_VOCAB_NAME,
        frequency_threshold=threshold if threshold > 1 else None,
    )

    def to_index(ids):
        return (
            tft.apply_vocabulary(ids, vocab, num_oov_buckets=int(settings["num_oov_buckets"])) + 1
        )

    outputs = {F.MODEL_TARGET: to_index(target)}
    for name, model_name in (
        (F.CLICK_HISTORY, F.MODEL_CLICK_HISTORY),
        (F.NONCLICK_HISTORY, F.MODEL_NONCLICK_HISTORY),
    ):
        history = histories[name][:, -max_history:]  # newest max_history items
        indexed = history.with_flat_values(to_index(history.flat_values))
        outputs[model_name] = indexed.to_tensor(default_value=F.PAD_ID, shape=[None, max_history])
    for count_name, history_name, model_name in (
        (F.CLICK_COUNT, F.CLICK_HISTORY, F.MODEL_CLICK_COUNT),
        (F.NONCLICK_COUNT, F.NONCLICK_HISTORY, F.MODEL_NONCLICK_COUNT),
    ):
        # Never below the history's length: a request without counts gets the lengths.
        given = _scalar(inputs[count_name], 0) if count_name in inputs else 0
        length = histories[history_name].row_lengths()
        outputs[model_name] = tf.cast(tf.maximum(tf.cast(given, tf.int64), length), tf.float32)
    outputs[F.MODEL_RECENT_CLICK_COUNT] = recent_click_count(
        _scalar(inputs[F.RECENT_CLICK_COUNT], -1) if F.RECENT_CLICK_COUNT in inputs else None,
        outputs[F.MODEL_CLICK_COUNT],
        outputs[F.MODEL_NONCLICK_COUNT],
    )
    outputs[F.MODEL_TIMESTAMP] = tf.cast(_scalar(inputs[F.TIMESTAMP], 0), tf.int64)
    outputs[F.MODEL_USER] = tf.strings.to_hash_bucket_fast(
        _scalar(inputs[F.USER_ID], b""), int(settings["num_user_buckets"])
    )
    if F.LABEL in inputs:
        outputs[F.MODEL_LABEL] = tf.cast(_scalar(inputs[F.LABEL], 0), tf.float32)
    return outputs
