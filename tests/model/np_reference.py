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
