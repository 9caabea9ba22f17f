"""NumPy references shared by the model tests (written independently of the TF code)."""

import numpy as np


def np_masked_softmax(x, mask=None):
    """Softmax over the last axis restricted to mask=True entries; all-masked rows give zeros."""
    mask = np.ones_like(x, bool) if mask is None else np.broadcast_to(mask, x.shape)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        m = mask[idx]
        if m.any():
            e = np.exp(x[idx][m] - x[idx][m].max())
            out[idx][m] = e / e.sum()
    return out


def np_in_batch_retrieval_loss(queries, candidates, candidate_ids, user_ids, labels):
    """Loop version of losses.in_batch_retrieval_loss: per clicked row i, softmax over the
    clicked rows j that are i itself or hold another video of another user."""
    rows = [i for i in range(len(labels)) if labels[i] > 0.5]
    total = 0.0
    for i in rows:
        kept = [
            j
            for j in rows
            if j == i or (candidate_ids[j] != candidate_ids[i] and user_ids[j] != user_ids[i])
        ]
        logits = np.array([float(np.dot(queries[i], candidates[j])) for j in kept])
        top = logits.max()
        log_norm = top + np.log(np.exp(logits - top).sum())
        total += log_norm - float(np.dot(queries[i], candidates[i]))
    return total / len(rows) if rows else 0.0
