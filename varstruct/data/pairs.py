"""Pairs of factor vectors for weak supervision (Ada-GVAE, Locatello et al. 2020).

Each pair shares all factors but k; every changed factor really changes (its new value is drawn
uniformly from the other n_j − 1 values). ``changeable`` restricts which factors may change
(the longitudinal mode: the others are the subject's identity and are always shared, as repeated
scans of one person share head size but not atrophy).
"""
from __future__ import annotations

import numpy as np

from ..errors import DatasetError


def _changeable_indices(ds, changeable) -> np.ndarray:
    if changeable is None:
        return np.arange(ds.num_factors)
    out = []
    for c in changeable:
        if isinstance(c, str):
            out.append(ds.factor_index(c))
        elif isinstance(c, (int, np.integer)) and 0 <= int(c) < ds.num_factors:
            out.append(int(c))
        else:
            raise DatasetError(f"{ds.name}: no factor {c!r} to change")
    out = np.unique(out)
    if len(out) == 0:
        raise DatasetError("changeable must name at least one factor")
    return out


def sample_pairs(ds, n: int, rng=None, k: int | str = 1, changeable=None, return_mask: bool = False):
    """(idx1, idx2) int64 [n, K], equal except in k factors per pair (plus the mask [n, K] of
    changed factors if ``return_mask``).

    k: an int in 1..K_c (K_c = number of changeable factors), or ``"random"``: drawn per pair
    uniformly from 1..K_c−1 as in Locatello et al. 2020 when all factors may change (at least
    one factor is then always shared), and from 1..K_c in the longitudinal mode.
    """
    rng = np.random.default_rng(rng)
    cidx = _changeable_indices(ds, changeable)
    Kc = len(cidx)
    n = int(n)
    if k == "random":
        hi = Kc - 1 if changeable is None else Kc
        if hi < 1:
            raise DatasetError("k='random' needs at least 2 factors that may change")
        ks = rng.integers(1, hi + 1, size=n)
    else:
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise DatasetError(f"k must be an int or 'random', got {k!r}") from None
        if not 1 <= k <= Kc:
            raise DatasetError(f"k must lie in 1..{Kc} (factors that may change), got {k}")
        ks = np.full(n, k)
    idx1 = ds.sample_factors(n, rng)
    # a uniformly random subset of size k[i] of the changeable factors: the first k of a random order
    order = np.argsort(rng.random((n, Kc)), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(Kc)[None].repeat(n, 0), axis=1)
    mask = np.zeros((n, ds.num_factors), dtype=bool)
    mask[:, cidx] = ranks < ks[:, None]
    sizes = ds.factor_sizes
    shift = rng.integers(1, np.maximum(sizes, 2), size=(n, ds.num_factors))  # 1..n_j-1
    idx2 = np.where(mask, (idx1 + shift) % sizes, idx1)
    return (idx1, idx2, mask) if return_mask else (idx1, idx2)
