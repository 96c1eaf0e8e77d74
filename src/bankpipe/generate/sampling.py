"""Fast vectorised sampling helpers: inverse-CDF lookup tables and weighted sampling without replacement."""

from __future__ import annotations

import numpy as np

TABLE_SIZE = 1 << 16


def inverse_cdf_table(weights: np.ndarray, size: int = TABLE_SIZE) -> np.ndarray:
    """Category for each 1/size slice of [0, 1): drawing is then one gather (probabilities to 1/size)."""
    w = np.asarray(weights, np.float64)
    cdf = np.cumsum(w) / w.sum()
    grid = (np.arange(size) + 0.5) / size
    return np.minimum(np.searchsorted(cdf, grid, side="right"), len(w) - 1).astype(np.int32)


def conditional_tables(probs: np.ndarray, size: int = 4096) -> np.ndarray:
    """One inverse-CDF table per row of `probs` (rows: conditions, columns: categories)."""
    return np.stack([inverse_cdf_table(row, size) for row in probs]).astype(np.int8)


def weighted_sample(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly k distinct rows drawn with probability proportional to weight, without replacement (sorted)."""
    k = min(k, int(np.count_nonzero(weights > 0)))
    if k <= 0:
        return np.zeros(0, np.int64)
    # Efraimidis–Spirakis: the k largest weight / Exp(1) keys are such a sample.
    keys = weights / rng.standard_exponential(len(weights))
    idx = np.argpartition(keys, len(keys) - k)[len(keys) - k :]
    return np.sort(idx)
