"""User-grouped batching gives L_cui (Eq 15) work."""

import numpy as np
import pytest
import tensorflow as tf

from tf_ccl4rec import batching
from tf_ccl4rec import features as F


def _rows(num_users=40, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(num_users) * 7 + 3, per_user)
    perm = rng.permutation(users.size)
    labels = (rng.uniform(size=users.size) < 0.3).astype(np.float32)
    return {
        F.MODEL_USER: users[perm].astype(np.int64),
        F.MODEL_LABEL: labels[perm],
        F.MODEL_TARGET: np.arange(users.size, dtype=np.int64),  # row id
    }


def test_cui_user_fraction_matches_definition():
    users = np.array([1, 1, 2, 2, 3, 4, 4])
    labels = np.array([1, 0, 1, 1, 0, 0, 1])
    # users 1 and 4 have both labels out of 4 users
    assert batching.cui_user_fraction(users, labels) == pytest.approx(2 / 4)
    assert batching.cui_user_fraction([], []) == 0.0


def test_user_grouped_batches_cover_rows_and_mix_labels():
    rows = _rows()
    batches = list(batching.user_grouped_batches(rows, batch_size=32, rows_per_user=4, seed=1))
    seen = np.concatenate([b[F.MODEL_TARGET] for b in batches])
    np.testing.assert_array_equal(np.sort(seen), np.arange(len(rows[F.MODEL_TARGET])))
    for b in batches:  # columns stay aligned
        np.testing.assert_array_equal(b[F.MODEL_USER], rows[F.MODEL_USER][b[F.MODEL_TARGET]])
    grouped = np.mean(
        [batching.cui_user_fraction(b[F.MODEL_USER], b[F.MODEL_LABEL]) for b in batches]
    )
    iid = np.mean(
        [
            batching.cui_user_fraction(
                rows[F.MODEL_USER][i : i + 32], rows[F.MODEL_LABEL][i : i + 32]
            )
            for i in range(0, len(rows[F.MODEL_USER]), 32)
        ]
    )
    print(f"cui user fraction: grouped={grouped:.3f} iid={iid:.3f}")
    assert grouped > iid
    # Interleaving puts a user's single click next to its non-clicks in one window.
    one = {F.MODEL_USER: np.zeros(8, np.int64), F.MODEL_LABEL: np.eye(8)[5].astype(np.float32)}
    first = next(batching.user_grouped_batches(one, batch_size=4, rows_per_user=4, seed=0))
    assert first[F.MODEL_LABEL].sum() == 1.0


def test_user_grouped_batches_rejects_bad_input():
    with pytest.raises(KeyError, match=F.MODEL_USER):
        list(batching.user_grouped_batches({F.MODEL_LABEL: np.zeros(3)}, 2))
    with pytest.raises(ValueError, match="different lengths"):
        list(
            batching.user_grouped_batches(
                {F.MODEL_USER: np.zeros(3), F.MODEL_LABEL: np.zeros(2)}, 2
            )
        )


def test_group_by_user_tf_data():
    rows = _rows(num_users=10, per_user=8, seed=2)
    ds = tf.data.Dataset.from_tensor_slices(rows)
    out = list(
        batching.group_by_user(ds, batch_size=8, rows_per_user=4, seed=0).as_numpy_iterator()
    )
    seen = np.concatenate([b[F.MODEL_TARGET] for b in out])
    np.testing.assert_array_equal(np.sort(seen), np.arange(80))
    for b in out:
        assert b[F.MODEL_USER].shape == (8,)
        # windows of 4 rows of one user each
        assert np.all(b[F.MODEL_USER][:4] == b[F.MODEL_USER][0])
        assert np.all(b[F.MODEL_USER][4:] == b[F.MODEL_USER][4])
    with pytest.raises(ValueError, match="unbatched"):
        batching.group_by_user(ds.batch(4), batch_size=8)
