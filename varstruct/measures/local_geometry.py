"""Local geometry of the factor directions d_j(c) (MEASURES.md §1): direction consistency,
local non-orthogonality and local PCA alignment, as pure array functions.

Directions come from :func:`varstruct.measures.grid.factor_directions` (float64 [A, K, D],
NaN rows for categorical factors). The anchor reductions are written as sums over anchors
(``*_sums``) so that ``measure_dataset`` can stream anchors in chunks and add them up.
"""
from __future__ import annotations

import itertools

import numpy as np
from threadpoolctl import threadpool_limits

# Principal directions whose eigenvalue is below this fraction of the largest are numerically
# zero (the neighbourhood spans fewer than K_o directions) and are not used.
EIG_RTOL = 1e-10


# ---- direction consistency -------------------------------------------------------------------
def direction_sums(d) -> tuple[np.ndarray, np.ndarray]:
    """(Σ_a d_j(c_a) [K, D], Σ_a ‖d_j(c_a)‖ [K]) for one chunk of directions d [A, K, D]."""
    d = np.asarray(d, dtype=np.float64)
    return d.sum(axis=0), np.sqrt((d ** 2).sum(axis=-1)).sum(axis=0)


def direction_consistency_from_sums(sum_d, sum_norm) -> np.ndarray:
    """ρ_j = ‖Σ_a d_j‖ / Σ_a ‖d_j‖ (= ‖mean d_j‖ / mean ‖d_j‖) in [0, 1], [K].

    NaN for categorical factors (NaN directions) and where every d_j is zero."""
    num = np.sqrt((np.asarray(sum_d) ** 2).sum(axis=-1))
    sum_norm = np.asarray(sum_norm, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sum_norm > 0, num / np.where(sum_norm > 0, sum_norm, 1.0), np.nan)


def direction_consistency(d) -> np.ndarray:
    """ρ_j = ‖mean_a d_j‖ / mean_a ‖d_j‖ for directions d [A, K, D] -> [K]."""
    return direction_consistency_from_sums(*direction_sums(d))


# ---- local non-orthogonality -----------------------------------------------------------------
def abs_cos_sums(d, factors) -> tuple[float, int]:
    """(Σ |cos(d_i, d_j)|, number of terms) over anchors and pairs i < j of ``factors``
    (indices of the ordinal/circular factors) in one chunk d [A, K, D]; zero-norm pairs skipped."""
    factors = np.asarray(factors, dtype=np.int64)
    if len(factors) < 2:
        return 0.0, 0
    dd = np.asarray(d, dtype=np.float64)[:, factors]
    gram = np.einsum("akd,ald->akl", dd, dd)  # [A, K_o, K_o]
    norm = np.sqrt(np.diagonal(gram, axis1=1, axis2=2))  # [A, K_o]
    i, j = np.triu_indices(len(factors), k=1)
    den = norm[:, i] * norm[:, j]
    ok = den > 0
    cos = np.abs(gram[:, i, j][ok] / den[ok])
    return float(np.minimum(cos, 1.0).sum()), int(ok.sum())


def local_nonorthogonality(d, factors) -> float:
    """mean over anchors and pairs of ``factors`` of |cos(d_i(c), d_j(c))|; NaN if no pair."""
    s, n = abs_cos_sums(d, factors)
    return s / n if n else float("nan")


# ---- local PCA -------------------------------------------------------------------------------
def neighbourhood_offsets(k_o: int) -> np.ndarray:
    """All offsets {−1, 0, 1}^{K_o}, int64 [3^K_o, K_o] (row 0 = all −1, the centre in the middle)."""
    return np.array(list(itertools.product((-1, 0, 1), repeat=k_o)), dtype=np.int64).reshape(-1, k_o)


def pca_neighbourhood(anchors, factor_sizes, factor_types) -> tuple[np.ndarray, np.ndarray]:
    """N(c) = c + {−1, 0, 1}^{K_o} over the ordinal/circular factors, for anchors [P, K].

    Ordinal factors are clipped at their borders, circular ones wrap. Clipping (or wrapping a
    factor of size 2) makes some points coincide; only the unique points are kept: an offset
    of factor j counts if its value differs from the values of the offsets before it (order
    −1, 0, +1), and a point is kept iff all its offsets count. Returns the indices
    int64 [P, 3^K_o, K] and the keep mask bool [P, 3^K_o] (every unique point once)."""
    anchors = np.asarray(anchors, dtype=np.int64)
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    fac = np.array([j for j, t in enumerate(factor_types) if t != "categorical"], dtype=np.int64)
    off = neighbourhood_offsets(len(fac))  # [n, K_o]
    P, n = len(anchors), len(off)
    idx = np.repeat(anchors[:, None, :], n, axis=1)
    keep = np.ones((P, n), dtype=bool)
    for col, j in enumerate(fac):
        vals = anchors[:, j, None] + np.array([-1, 0, 1])[None]  # [P, 3]
        if factor_types[j] == "circular":
            vals %= sizes[j]
        else:
            vals = np.clip(vals, 0, sizes[j] - 1)
        fresh = np.ones((P, 3), dtype=bool)  # value not produced by an earlier offset
        fresh[:, 1] = vals[:, 1] != vals[:, 0]
        fresh[:, 2] = (vals[:, 2] != vals[:, 0]) & (vals[:, 2] != vals[:, 1])
        which = off[:, col] + 1  # [n] position in (−1, 0, 1)
        idx[:, :, j] = vals[:, which]
        keep &= fresh[:, which]
    return idx, keep


def local_pca_alignment(X, keep, d) -> np.ndarray:
    """mean_j max_k |⟨u_k, d_j/‖d_j‖⟩| per neighbourhood, float64 [P].

    X: rendered neighbourhoods [P, n, D]; keep: bool [P, n] (points used, each with weight 1);
    d: directions of the K_o ordinal/circular factors at the centre, [P, K_o, D].
    u_1..u_{K_o}: top-K_o principal directions of the kept points centred on their mean,
    obtained from the eigen-decomposition of the n×n Gram matrix (u_k = X_cᵀ v_k / √λ_k);
    directions with λ_k ≤ 1e-10 λ_max are dropped, factors with ‖d_j‖ = 0 are skipped
    (NaN if every factor is skipped)."""
    # Batches of small matrices: one BLAS thread is faster than several contending ones.
    with threadpool_limits(limits=1, user_api="blas"):
        return _local_pca_alignment(X, keep, d)


def _local_pca_alignment(X, keep, d) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    w = np.asarray(keep, dtype=np.float64)  # [P, n]
    P, n, D = X.shape
    k_o = d.shape[1]
    if k_o == 0:
        return np.full(P, np.nan)
    mean = (w[:, None, :] @ X)[:, 0] / w.sum(axis=1, keepdims=True)
    Xc = (X - mean[:, None]) * w[:, :, None]
    gram = Xc @ Xc.transpose(0, 2, 1)  # [P, n, n]
    lam, vec = np.linalg.eigh(gram)  # ascending
    k = min(k_o, n)
    lam, vec = lam[:, ::-1][:, :k], vec[:, :, ::-1][:, :, :k]  # top k: [P, k], [P, n, k]
    valid = lam > EIG_RTOL * np.maximum(lam[:, :1], np.finfo(float).tiny)
    dn = np.sqrt((d ** 2).sum(axis=-1))  # [P, K_o]
    dhat = d / np.where(dn > 0, dn, 1.0)[:, :, None]
    proj = np.einsum("pnk,pnj->pkj", vec, Xc @ dhat.transpose(0, 2, 1))  # vᵀ X_c d̂: [P, k, K_o]
    proj = np.abs(proj) / np.sqrt(np.where(valid, lam, 1.0))[:, :, None]
    proj = np.where(valid[:, :, None], np.minimum(proj, 1.0), 0.0)
    best = np.where(dn > 0, proj.max(axis=1), np.nan)  # [P, K_o]
    cnt = (dn > 0).sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(cnt > 0, np.nansum(best, axis=1) / np.maximum(cnt, 1), np.nan)
