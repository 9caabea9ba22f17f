"""Batches that give L_cui (Eq 15) work: rows of the same user travel together.

L_cui contrasts a user's clicked and non-clicked targets *within a batch*; with i.i.d. batches of
32 impressions over millions of users almost no user appears twice and the term is 0. Two helpers:

* `group_by_user` (tf.data, for the Trainer): windows of `rows_per_user` consecutive rows of one
  user (tf.data.Dataset.group_by_window), shuffled, then re-batched.
* `user_grouped_batches` (numpy, for in-memory data and tests): additionally interleaves each
  user's clicks and non-clicks so that a window holds both labels whenever the user has both.

`cui_user_fraction` measures the share of users of a batch that contribute to L_cui; the model
also logs it as the `cui_user_fraction` metric.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tf_ccl4rec import features as F

SHUFFLE_WINDOWS = 1024  # default window shuffle buffer of `group_by_user`


def group_by_user(
    dataset,
    batch_size: int,
    rows_per_user: int = 4,
    shuffle_windows: int = SHUFFLE_WINDOWS,
    seed: int | None = None,
    drop_remainder: bool = False,
    user_key: str = F.MODEL_USER,
):
    """Regroups an UNBATCHED dataset of feature dicts into user-grouped batches.

    Rows of one user are collected into windows of `rows_per_user` (a window is emitted when
    full; remainders are flushed at the end of the input), windows are shuffled, then rows are
    re-batched. Choose `rows_per_user` dividing `batch_size` so windows are not split.
    Call `.unbatch()` first on a batched dataset.

    Args:
      dataset: tf.data.Dataset of dicts with a scalar (or [1]) int `user_key`.
      batch_size: Rows per output batch.
      rows_per_user: Rows per user window.
      shuffle_windows: Window shuffle buffer (0 disables).
      seed: Shuffle seed.
      drop_remainder: Passed to the final batch().
      user_key: Feature holding the user id.

    Returns:
      tf.data.Dataset of batched feature dicts.
    """
    import tensorflow as tf

    if batch_size < 1 or rows_per_user < 1:
        raise ValueError("batch_size and rows_per_user must be >= 1")
    user_shape = dataset.element_spec[user_key].shape
    if not (user_shape.rank == 0 or user_shape.as_list() == [1]):
        raise ValueError(f"group_by_user needs an unbatched dataset; got {dataset.element_spec}")

    grouped = dataset.group_by_window(
        key_func=lambda row: tf.reshape(tf.cast(row[user_key], tf.int64), []),
        reduce_func=lambda _key, window: window.batch(rows_per_user),
        window_size=rows_per_user,
    )
    if shuffle_windows:
        grouped = grouped.shuffle(shuffle_windows, seed=seed)
    return grouped.unbatch().batch(batch_size, drop_remainder=drop_remainder)


def _interleave_labels(rows: np.ndarray, labels: np.ndarray, rng) -> np.ndarray:
    pos = rng.permutation(rows[labels[rows] > 0.5])
    neg = rng.permutation(rows[labels[rows] <= 0.5])
    # Alternate positives and negatives (ratio-preserving) so every window mixes both labels.
    keys = np.concatenate(
        [
            (np.arange(len(pos)) + 0.5) / max(len(pos), 1),
            (np.arange(len(neg)) + 0.5) / max(len(neg), 1),
        ]
    )
    merged = np.concatenate([pos, neg])
    return merged[np.argsort(keys, kind="stable")]


def user_grouped_batches(
    features: dict[str, np.ndarray],
    batch_size: int,
    rows_per_user: int = 4,
    seed: int = 0,
    user_key: str = F.MODEL_USER,
    label_key: str = F.MODEL_LABEL,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields one epoch of user-grouped batches from in-memory columns.

    Args:
      features: Dict of equal-length numpy arrays (first axis = rows).
      batch_size: Rows per batch (the last batch may be smaller).
      rows_per_user: Rows per user window; each window mixes clicks and non-clicks when it can.
      seed: Shuffle seed.
      user_key: Column with the user id.
      label_key: Column with the 0/1 label.

    Yields:
      Dicts of numpy arrays with the same keys as `features`.
    """
    if batch_size < 1 or rows_per_user < 1:
        raise ValueError("batch_size and rows_per_user must be >= 1")
    for key in (user_key, label_key):
        if key not in features:
            raise KeyError(f"user_grouped_batches needs column {key!r}")
    sizes = {k: len(v) for k, v in features.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"columns have different lengths: {sizes}")
    rng = np.random.default_rng(seed)
    users = np.asarray(features[user_key]).reshape(-1)
    labels = np.asarray(features[label_key]).reshape(-1)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    windows = []
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        rows = _interleave_labels(rows, labels, rng)
        windows.extend(np.array_split(rows, range(rows_per_user, rows.size, rows_per_user)))
    if not windows:
        return
    rows = np.concatenate([windows[i] for i in rng.permutation(len(windows))])
    for start in range(0, rows.size, batch_size):
        idx = rows[start : start + batch_size]
        yield {k: np.asarray(v)[idx] for k, v in features.items()}


def cui_user_fraction(user_ids, labels) -> float:
    """Share of the users of a batch that have both a click and a non-click (contribute to L_cui).

    Args:
      user_ids: [M] user ids.
      labels: [M] 0/1 labels.

    Returns:
      Fraction in [0, 1] (0 for an empty batch).
    """
    users = np.asarray(user_ids).reshape(-1)
    labels = np.asarray(labels).reshape(-1) > 0.5
    if users.size == 0:
        return 0.0
    uniq, inv = np.unique(users, return_inverse=True)
    pos = np.bincount(inv, weights=labels, minlength=uniq.size)
    total = np.bincount(inv, minlength=uniq.size)
    return float(np.mean((pos > 0) & (pos < total)))
