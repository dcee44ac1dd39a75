"""Local geometry of the factor directions d_j(c): direction consistency, local
non-orthogonality and local PCA alignment, as pure array functions (definitions:
docs/measures.md#direction_consistency, #local_nonorthogonality, #local_pca_alignment).

Directions come from :func:`varstruct.measures.grid.factor_directions` (float64 [A, K, D],
NaN rows for categorical factors). The anchor reductions are written as sums over anchors
(``*_sums``) so that ``measure_dataset`` can stream anchors in chunks and add them up.
"""
from __future__ import annotations

import itertools

import numpy as np
import scipy.linalg

from ..threads import limit_threads

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
    (NaN if every factor is skipped).

    Speed (same numbers as the dense computation up to float rounding): pixels whose values
    agree in all n images (a uniform background, the same shade along a floor row) contribute
    the same column to X, so the Gram matrix is Σ_groups count·x xᵀ over the distinct
    columns only (:func:`distinct_columns`), and X_c d̂ sums d̂ within each group; only the
    top K_o eigenpairs are computed (LAPACK ``evr``)."""
    # Small per-anchor matrices: one BLAS thread is faster than several contending ones.
    with limit_threads(1, blas_only=True):
        X = np.asarray(X)
        d = np.asarray(d, dtype=np.float64)
        keep = np.asarray(keep, dtype=bool)
        P = X.shape[0]
        if d.shape[1] == 0:
            return np.full(P, np.nan)
        return np.array([_alignment_one(X[p], keep[p], d[p]) for p in range(P)], dtype=np.float64)


def distinct_columns(x) -> tuple[np.ndarray, np.ndarray]:
    """Group the columns of x [n, D] that are equal in every row.

    Returns (rep int64 [U]: the first column of each group, group int64 [D]: each column's
    group in 0..U-1), so that ``x[:, rep[group]] == x`` exactly. Columns are hashed with one
    random projection and every column is then compared with its group's representative, so a
    hash collision can only split a group, never merge unequal columns."""
    x = np.asarray(x)
    n, D = x.shape
    r = np.random.default_rng(12345).standard_normal(n)
    h = r @ x.astype(np.float64, copy=False)  # [D]
    _, first, group = np.unique(h, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    rep_of = first[group]
    diff = np.zeros(D, dtype=bool)
    for row in x:  # row-wise take: much faster than the column gather x[:, rep_of]
        diff |= row.take(rep_of) != row
    bad = np.flatnonzero(diff)  # hash collisions (never seen in practice): own groups
    if len(bad):
        group = group.copy()
        group[bad] = len(first) + np.arange(len(bad))
        first = np.concatenate([first, bad])
    return first.astype(np.int64), group.astype(np.int64)


def _alignment_one(x, keep, d) -> float:
    """local_pca_alignment for one neighbourhood: x [n, D], keep bool [n], d [K_o, D]."""

    k_o = d.shape[0]
    rep, group = distinct_columns(x)
    xu = x[:, rep].astype(np.float64)  # [n, U] distinct columns
    cnt = np.bincount(group, minlength=len(rep)).astype(np.float64)
    w = keep.astype(np.float64)
    mean = (w @ xu) / w.sum()
    xc = (xu - mean[None]) * w[:, None]
    gram = (xc * cnt[None]) @ xc.T  # [n, n] = X_c X_cᵀ over all D pixels
    n = len(gram)
    k = min(k_o, n)
    lam, vec = scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1], driver="evr")
    lam, vec = lam[::-1], vec[:, ::-1]  # descending: [k], [n, k]
    valid = lam > EIG_RTOL * max(lam[0], np.finfo(float).tiny)
    dn = np.sqrt((d ** 2).sum(axis=-1))  # [K_o]
    dhat = d / np.where(dn > 0, dn, 1.0)[:, None]
    dsum = np.stack([np.bincount(group, weights=dj, minlength=len(rep)) for dj in dhat], 1)  # Σ_group d̂: [U, K_o]
    proj = vec.T @ (xc @ dsum)  # vᵀ X_c d̂: [k, K_o]
    proj = np.abs(proj) / np.sqrt(np.where(valid, lam, 1.0))[:, None]
    proj = np.where(valid[:, None], np.minimum(proj, 1.0), 0.0)
    ok = dn > 0
    if not ok.any():
        return float("nan")
    return float(proj.max(axis=0)[ok].mean())


def local_pca_alignment_dense(X, keep, d) -> np.ndarray:
    """The same as :func:`local_pca_alignment`, computed densely (all D pixels, every
    eigenpair); the reference the fast path is tested against."""
    with limit_threads(1, blas_only=True):
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
