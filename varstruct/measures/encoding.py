"""Which latent encodes which factor, where: the encoding measures of docs/measures.md#model-measures.

Plain numpy functions over a response array R [A, K, L] (anchor, factor, latent) and the
per-anchor encoding dimension it implies. ``UNDEFINED`` (-1) marks an (anchor, factor) whose
response row is NaN (a categorical factor under the Jacobian response) or all zero (no latent
responds); such cells are left out of every count below.
"""
from __future__ import annotations

import numpy as np

UNDEFINED = -1
DISCORDANCE_MIN_ANCHORS = 10
ANGLE_EDGES = np.arange(0.0, 90.0 + 1e-9, 5.0)  # 5° bins over [0, 90]: 18 bins


def encoding_dim(response: np.ndarray) -> np.ndarray:
    """argmax_l R[a, j, l] (ties: lowest latent) -> int64 [A, K]; UNDEFINED where the row is NaN or sums to 0."""
    R = np.asarray(response, dtype=np.float64)
    bad = np.isnan(R).any(-1) | ~(np.nansum(R, -1) > 0)
    dim = np.argmax(np.nan_to_num(R, nan=-np.inf), axis=-1).astype(np.int64)
    dim[bad] = UNDEFINED
    return dim


def encoding_purity(response: np.ndarray) -> np.ndarray:
    """max_l R / Σ_l R -> float64 [A, K]; NaN where Σ = 0 or the row is NaN."""
    R = np.asarray(response, dtype=np.float64)
    total = R.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, R.max(-1) / np.where(total > 0, total, 1.0), np.nan)


def _mode(values: np.ndarray) -> int:
    """Most frequent non-negative value (ties: the smallest)."""
    return int(np.bincount(values).argmax())


def encoding_mode(dim: np.ndarray) -> np.ndarray:
    """Mode over anchors of each factor's encoding dimension -> int64 [K] (UNDEFINED if no anchor is defined)."""
    out = np.full(dim.shape[1], UNDEFINED, dtype=np.int64)
    for j in range(dim.shape[1]):
        d = dim[:, j][dim[:, j] >= 0]
        if len(d):
            out[j] = _mode(d)
    return out


def encoding_inconsistency(dim: np.ndarray) -> np.ndarray:
    """1 − fraction of (defined) anchors whose encoding_dim equals its mode over anchors -> float64 [K]."""
    mode = encoding_mode(dim)
    out = np.full(dim.shape[1], np.nan)
    for j in range(dim.shape[1]):
        d = dim[:, j][dim[:, j] >= 0]
        if len(d):
            out[j] = 1.0 - np.mean(d == mode[j])
    return out


def encoding_entropy(dim: np.ndarray, n_active: int) -> np.ndarray:
    """Entropy (nats) of each factor's encoding_dim histogram / log(n_active) -> float64 [K].

    0 when only one latent is active; NaN when none is or the factor has no defined anchor."""
    out = np.full(dim.shape[1], np.nan)
    if n_active < 1:
        return out
    for j in range(dim.shape[1]):
        d = dim[:, j][dim[:, j] >= 0]
        if not len(d):
            continue
        if n_active == 1:
            out[j] = 0.0
            continue
        p = np.bincount(d) / len(d)
        p = p[p > 0]
        out[j] = float(-(p * np.log(p)).sum() / np.log(n_active)) + 0.0  # no -0.0
    return out


def encoding_collision(dim: np.ndarray) -> float:
    """mean_a (1 − #unique(encoding_dim[a, ·]) / K_a), K_a = factors defined at anchor a (anchors with
    K_a = 0 skipped; NaN if all are): the share of factors that share a latent with another one locally."""
    s = np.sort(dim, axis=1)
    valid = s >= 0
    first = np.ones_like(valid)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    n_unique = (valid & first).sum(1)
    k = valid.sum(1)
    keep = k > 0
    if not keep.any():
        return float("nan")
    return float(np.mean(1.0 - n_unique[keep] / k[keep]))


def ranks(values: np.ndarray) -> np.ndarray:
    """Rank along the last axis, 0 = largest, ties broken by index -> int64, same shape."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(-v, axis=-1, kind="stable")
    out = np.empty(v.shape, dtype=np.int64)
    np.put_along_axis(out, order, np.broadcast_to(np.arange(v.shape[-1]), v.shape).copy(), axis=-1)
    return out


def discordant(V: np.ndarray) -> np.ndarray:
    """bool [A, K]: factor j's local rank among V[a, ·] differs from its global rank (of mean_a V)."""
    V = np.asarray(V, dtype=np.float64)
    return ranks(V) != ranks(V.mean(0))[None]


def discordance_effect(dim: np.ndarray, V: np.ndarray, min_anchors: int = DISCORDANCE_MIN_ANCHORS) -> np.ndarray:
    """Inconsistency on discordant anchors minus inconsistency on concordant ones -> float64 [K].

    Both measured against the mode of encoding_dim over the concordant anchors; NaN where either
    side has fewer than ``min_anchors`` defined anchors. dim, V: [A, K] on the same anchors."""
    disc = discordant(V)
    out = np.full(dim.shape[1], np.nan)
    for j in range(dim.shape[1]):
        ok = dim[:, j] >= 0
        conc, dis = dim[ok & ~disc[:, j], j], dim[ok & disc[:, j], j]
        if len(conc) < min_anchors or len(dis) < min_anchors:
            continue
        mode = _mode(conc)
        out[j] = np.mean(dis != mode) - np.mean(conc != mode)
    return out


def decoder_orthogonality(C: np.ndarray) -> float:
    """1 − mean_x mean_{i<j} |C[x, i, j]| for cosine matrices C [N, La, La] (NaN entries skipped;
    NaN if La < 2)."""
    La = C.shape[-1]
    if La < 2 or not len(C):
        return float("nan")
    iu = np.triu_indices(La, 1)
    off = np.abs(C[:, iu[0], iu[1]])  # [N, pairs]
    finite = np.isfinite(off)
    n = finite.sum(1)
    if not (n > 0).any():
        return float("nan")
    per_x = np.where(finite, off, 0.0).sum(1)[n > 0] / n[n > 0]
    return float(1.0 - per_x.mean())


def decoder_angles(C: np.ndarray) -> np.ndarray:
    """Fraction of pairs (x, i<j) whose angle arccos|C_ij| (degrees) falls in each 5° bin of
    ``ANGLE_EDGES`` (last bin closed) -> float64 [18], summing to 1 (NaN if there is no pair)."""
    La = C.shape[-1]
    iu = np.triu_indices(La, 1)
    c = np.abs(C[:, iu[0], iu[1]]).ravel()
    c = c[np.isfinite(c)]
    if not len(c):
        return np.full(len(ANGLE_EDGES) - 1, np.nan)
    ang = np.degrees(np.arccos(np.clip(c, 0.0, 1.0)))
    counts, _ = np.histogram(ang, bins=ANGLE_EDGES)
    return counts / len(c)


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _mutual_information_bits(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in bits of two non-negative integer labels (plug-in estimate)."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    return _entropy_bits(joint.sum(1)) + _entropy_bits(joint.sum(0)) - _entropy_bits(joint.ravel())


def encoding_dependence(dim: np.ndarray, positions: np.ndarray, sizes, bins: int = 4, n_permutations: int = 999,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Along which factor axis does one factor's encoding latent change?

    dim: int [A], the encoding_dim of one factor at each anchor (UNDEFINED anchors are left out);
    positions: int [A, K], the anchors' factor indices; sizes: [K] the factors' numbers of values.
    Each axis k is cut into ``bins`` equal ranges of its index, b_k = floor(c_k · bins / size_k)
    (a factor with fewer values than ``bins`` keeps its own values). Returns (U [K], p [K]):

        U_k = I(e; b_k) / H(e)   (the uncertainty coefficient, in [0, 1])

    the share of the encoding's entropy that the position along axis k explains (plug-in
    estimates in bits), and p_k, the permutation p-value of I(e; b_k) (positions shuffled over
    anchors, ``n_permutations`` seeded draws, (1 + #{I_perm >= I}) / (1 + n_permutations)).
    A region-dependent encoding driven by axis k has U_k near 1 and small p_k; a consistent
    encoding (one latent everywhere, H(e) = 0) has no switches: U and p are NaN. On a balanced full
    grid an axis the encoding does not depend on has I = 0 exactly. The plug-in I is biased
    upwards by about (|e| − 1)(bins − 1) / (2 N ln 2) bits at N anchors: read U with p.
    """
    dim = np.asarray(dim)
    pos = np.asarray(positions)
    sizes = np.asarray(sizes, dtype=np.int64)
    keep = dim >= 0
    e, pos = np.unique(dim[keep], return_inverse=True)[1], pos[keep]
    K = pos.shape[1]
    U, p = np.full(K, np.nan), np.full(K, np.nan)
    if len(e) == 0:
        return U, p
    H = _entropy_bits(np.bincount(e))
    if H <= 0:
        return U, p
    rng = np.random.default_rng(seed)
    for k in range(K):
        nb = min(int(bins), int(sizes[k]))
        b = (pos[:, k] * nb) // sizes[k]
        mi = _mutual_information_bits(e, b)
        U[k] = min(max(mi / H, 0.0), 1.0)
        perm = np.array([_mutual_information_bits(e, rng.permutation(b)) for _ in range(int(n_permutations))])
        p[k] = (1 + np.sum(perm >= mi - 1e-12)) / (1 + int(n_permutations))
    return U, p
