"""When a training run measures: the steps of its log schedule (config ``log:``)."""

from __future__ import annotations

import numpy as np


def log_schedule(steps: int, dense_every: int, dense_until: int, sparse_every: int) -> np.ndarray:
    """Steps at which to measure: multiples of ``dense_every`` up to ``dense_until``, then
    multiples of ``sparse_every``, always including 0 and the last step."""
    dense = np.arange(0, min(dense_until, steps) + 1, dense_every)
    sparse = np.arange(0, steps + 1, sparse_every)
    sparse = sparse[sparse > dense_until]
    return np.unique(np.concatenate([dense, sparse, [0, steps]]))
