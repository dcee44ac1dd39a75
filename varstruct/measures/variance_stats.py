"""Statistics of the traversal variance V [A, K] (docs/measures.md#dataset-measures): pure array functions.

Every function takes V (float64 [A, K], V[a, j] = traversal variance of factor j at anchor a)
and returns float64 arrays; none renders anything, so each can be checked on a hand-made V.
"""
from __future__ import annotations

import numpy as np

LOG_EPS = 1e-12
# variance_dependence is NaN where Var(log V_j) is below this: V_j is then constant up to
# float32 rendering precision (relative spread < 1e-6) and η² would be rounding noise.
MIN_LOG_VAR = 1e-12


def _as_v(V) -> np.ndarray:
    V = np.asarray(V, dtype=np.float64)
    if V.ndim != 2:
        raise ValueError(f"V must have shape [anchors, factors], got {V.shape}")
    return V


def global_variance(V) -> np.ndarray:
    """G[j] = mean_a V[a, j], [K]."""
    return _as_v(V).mean(axis=0)


def variance_share(G) -> np.ndarray:
    """G[j] / Σ_k G[k], [K]; NaN everywhere if Σ G = 0."""
    G = np.asarray(G, dtype=np.float64)
    tot = G.sum()
    return G / tot if tot > 0 else np.full_like(G, np.nan)


def global_rank(G) -> np.ndarray:
    """Rank of G[j], 0 = largest, ties broken by factor index; int64 [K]."""
    order = np.argsort(-np.asarray(G, dtype=np.float64), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def variance_cv(V) -> np.ndarray:
    """std_a V[a, j] / G[j] (ddof 0), [K]; NaN where G[j] = 0."""
    V = _as_v(V)
    G = V.mean(axis=0)
    sd = V.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(G > 0, sd / np.where(G > 0, G, 1.0), np.nan)


def variance_dependence(V, anchors, factor_sizes) -> np.ndarray:
    """η²[j, k] of y = log(V[·, j] + 1e-12) grouped by the anchors' value of factor k, [K, K].

    η² = Σ_g n_g (ȳ_g − ȳ)² / Σ_a (y_a − ȳ)² = Var_k(E[y | c_k]) / Var(y) (groups weighted by
    their anchor counts). NaN on the diagonal, for every j when some value of c_k (out of its
    n_k values) has fewer than 2 anchors, and where Var(y) < 1e-12 (V_j constant)."""
    V = _as_v(V)
    anchors = np.asarray(anchors)
    A, K = V.shape
    y = np.log(V + LOG_EPS)
    yc = y - y.mean(axis=0)
    ss_tot = (yc ** 2).sum(axis=0)  # [K]
    out = np.full((K, K), np.nan)
    for k in range(K):  # K <= ~6: one vectorised one-hot reduction per grouping factor
        n_k = int(factor_sizes[k])
        onehot = np.zeros((A, n_k))
        onehot[np.arange(A), anchors[:, k]] = 1.0
        counts = onehot.sum(axis=0)  # [n_k]
        if np.any(counts < 2):
            continue
        means = (onehot.T @ yc) / counts[:, None]  # [n_k, K] group means of centred y
        ss_between = (counts[:, None] * means ** 2).sum(axis=0)  # [K]
        ok = ss_tot / A >= MIN_LOG_VAR
        out[ok, k] = ss_between[ok] / ss_tot[ok]
    np.fill_diagonal(out, np.nan)
    return out


def order_inversion(V) -> np.ndarray:
    """OI[i, j] for G[i] > G[j]: fraction of anchors with V[a, i] < V[a, j]; symmetric [K, K].

    NaN on the diagonal and for pairs with exactly equal G. Local ties are not inversions."""
    V = _as_v(V)
    G = V.mean(axis=0)
    less = (V[:, :, None] < V[:, None, :]).mean(axis=0)  # less[i, j] = frac V_i < V_j
    gt = G[:, None] > G[None, :]
    out = np.where(gt, less, np.where(gt.T, less.T, np.nan))
    np.fill_diagonal(out, np.nan)
    return out


def _nanmean(x, axis=None):
    x = np.asarray(x, dtype=np.float64)
    n = np.sum(~np.isnan(x), axis=axis)
    s = np.nansum(x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def local_global_discrepancy(oi) -> float:
    """Mean of order_inversion over the pairs where it is defined (NaN if none)."""
    return float(_nanmean(oi))


def factor_discrepancy(oi) -> np.ndarray:
    """[K]: mean over i ≠ j of order_inversion[i, j] (tied pairs, NaN, skipped)."""
    return _nanmean(oi, axis=0)


def kendall_tau_b(X, y) -> np.ndarray:
    """Kendall τ-b between each row of X [A, K] and y [K] -> [A].

    τ_b = (n_c − n_d) / sqrt((n_0 − n_x)(n_0 − n_y)) over the n_0 = K(K−1)/2 pairs, n_x / n_y
    the pairs tied in x / y. NaN where a row or y is constant (τ-b undefined)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    i, j = np.triu_indices(X.shape[1], k=1)
    sx = np.sign(X[:, i] - X[:, j])  # [A, P]
    sy = np.sign(y[i] - y[j])  # [P]
    n0 = len(i)
    nx = (sx == 0).sum(axis=1)
    ny = (sy == 0).sum()
    denom = np.sqrt((n0 - nx) * float(n0 - ny))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (sx * sy).sum(axis=1) / np.where(denom > 0, denom, 1.0), np.nan)


def local_global_discrepancy_tau(V) -> float:
    """(1 − mean_a τ_a) / 2 with τ_a = Kendall τ-b between V[a, ·] and G.

    Anchors whose V row is all zero are skipped, as are anchors where τ-b is undefined (a
    constant row, or constant G); NaN if no anchor is left."""
    V = _as_v(V)
    tau = kendall_tau_b(V, V.mean(axis=0))
    keep = np.any(V != 0, axis=1) & ~np.isnan(tau)
    return float((1.0 - tau[keep].mean()) / 2.0) if keep.any() else float("nan")


def degeneracy_ratio(V) -> np.ndarray:
    """r[a, i, j] = |V_i − V_j| / (V_i + V_j), 0 where both are 0; [A, K, K]."""
    V = _as_v(V)
    num = np.abs(V[:, :, None] - V[:, None, :])
    den = V[:, :, None] + V[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def near_degeneracy(V, delta: float = 0.1) -> float:
    """Fraction of (anchor, pair i < j) with r[a, i, j] < δ; NaN for K < 2."""
    r = degeneracy_ratio(V)
    i, j = np.triu_indices(r.shape[1], k=1)
    return float((r[:, i, j] < delta).mean()) if len(i) else float("nan")


def factor_near_degeneracy(V) -> np.ndarray:
    """[K]: mean_a min_{i ≠ j} r[a, i, j]; NaN for K < 2."""
    r = degeneracy_ratio(V)
    K = r.shape[1]
    if K < 2:
        return np.full(K, np.nan)
    r = r.copy()
    r[:, np.arange(K), np.arange(K)] = np.inf
    return r.min(axis=1).mean(axis=0)
