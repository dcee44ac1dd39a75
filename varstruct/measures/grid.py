"""Anchors, traversals and factor directions on the factor grid (docs/measures.md#conventions).

Shared by the dataset and the model measures so that both see exactly the same images.
Nuisances are frozen per anchor: ``anchor_nuisance`` draws one per anchor and the renderers
below repeat it for every image rendered around that anchor.
"""
from __future__ import annotations

import numpy as np

from ..data.base import FactorDataset


def sample_anchors(ds: FactorDataset, n: int, seed: int = 0) -> np.ndarray:
    """n anchors drawn uniformly from the factor grid with ``seed``, int64 [A, K]."""
    return ds.sample_factors(n, np.random.default_rng([int(seed), 0]))


def anchor_nuisance(ds: FactorDataset, n: int, seed: int = 0):
    """One nuisance draw per anchor (leading dim n), or None; independent of the anchors' draw."""
    return ds.sample_nuisance(n, np.random.default_rng([int(seed), 1]))


def _repeat(nuisance, reps: int):
    return None if nuisance is None else np.repeat(nuisance, reps, axis=0)


def render_at(ds: FactorDataset, idx: np.ndarray, nuisance=None, rng=None) -> np.ndarray:
    """Render idx [A, T, K] with nuisance[a] (leading dim A) reused along T -> float32 [A, T, H, W, C].

    With nuisance None and a nuisance dataset, fresh nuisances come from ``rng``
    (``freeze_nuisance=False``)."""
    A, T, K = idx.shape
    imgs = ds.render(idx.reshape(A * T, K), rng=rng, nuisance=_repeat(nuisance, T))
    return imgs.reshape((A, T) + imgs.shape[1:])


def traversal_indices(anchors: np.ndarray, j: int, n_j: int) -> np.ndarray:
    """T_j(c) for each anchor: int64 [A, n_j, K], factor j running over 0..n_j-1."""
    idx = np.repeat(anchors[:, None, :], n_j, axis=1)
    idx[:, :, j] = np.arange(n_j)[None]
    return idx


def render_traversal(ds: FactorDataset, anchors: np.ndarray, j: int, nuisance=None, rng=None) -> np.ndarray:
    """X_j(c_a) for each anchor, float32 [A, n_j, H, W, C]."""
    return render_at(ds, traversal_indices(anchors, j, int(ds.factor_sizes[j])), nuisance, rng)


def neighbour_indices(ds: FactorDataset, anchors: np.ndarray, j: int, scheme: str = "central"):
    """Index pairs (hi [A, K], lo [A, K], scale [A]) with d = (g(hi) − g(lo)) · scale.

    scheme ``central``: (c+e_j, c−e_j, ½), one-sided (c+e_j, c, 1) / (c, c−e_j, 1) at the
    borders of ordinal factors, wrapping for circular ones.
    scheme ``forward``: (c+e_j, c, 1), backward (c, c−e_j, 1) at the last index of ordinal
    factors, wrapping for circular ones.
    Categorical factors are not handled here (their directions are undefined: NaN).
    """
    n = int(ds.factor_sizes[j])
    c = anchors[:, j]
    hi, lo = anchors.copy(), anchors.copy()
    circular = ds.factor_types[j] == "circular"
    if scheme == "central":
        if circular:
            hi[:, j], lo[:, j] = (c + 1) % n, (c - 1) % n
            scale = np.full(len(c), 0.5)
        else:
            hi[:, j], lo[:, j] = np.minimum(c + 1, n - 1), np.maximum(c - 1, 0)
            scale = 1.0 / (hi[:, j] - lo[:, j])
    elif scheme == "forward":
        if circular:
            hi[:, j] = (c + 1) % n
        else:
            last = c == n - 1
            hi[:, j] = np.where(last, c, c + 1)
            lo[:, j] = np.where(last, c - 1, c)
        scale = np.ones(len(c))
    else:
        raise ValueError(f"unknown difference scheme {scheme!r}")
    return hi, lo, scale


def factor_directions(ds: FactorDataset, anchors: np.ndarray, nuisance=None, scheme: str = "central",
                      rng=None) -> np.ndarray:
    """d_j(c_a) flattened: float64 [A, K, D]; rows of categorical factors are NaN.

    With ``scheme='central'`` this is the d_j of docs/measures.md#conventions; ``'forward'`` gives the step
    g(c+e_j) − g(c) used by ``step_variance``."""
    A, K, D = len(anchors), ds.num_factors, ds.n_pixels
    out = np.full((A, K, D), np.nan)
    for j in range(K):
        if ds.factor_types[j] == "categorical":
            continue
        hi, lo, scale = neighbour_indices(ds, anchors, j, scheme)
        pair = np.stack([hi, lo], axis=1)  # [A, 2, K]
        imgs = render_at(ds, pair, nuisance, rng).reshape(A, 2, D).astype(np.float64)
        out[:, j] = (imgs[:, 0] - imgs[:, 1]) * scale[:, None]
    return out


def traversal_spread(X: np.ndarray) -> np.ndarray:
    """mean_t ‖X[..., t, :] − mean_t X‖² / D in float64 for rendered traversals X [A, T, H, W, C]
    -> [A] (the V of one factor; shared with the model measures, which render the traversals anyway)."""
    X = X.reshape(X.shape[0], X.shape[1], -1).astype(np.float64)
    return ((X - X.mean(axis=1, keepdims=True)) ** 2).sum(-1).mean(-1) / X.shape[-1]


def traversal_variance(ds: FactorDataset, anchors: np.ndarray, nuisance=None, rng=None,
                       chunk: int = 256, progress=None) -> np.ndarray:
    """V[a, j] = mean_t ‖X_j(c_a)[t] − mean_t X_j(c_a)‖² / D, float64 [A, K].

    Rendered in chunks of anchors to bound memory; ``progress(n)`` (optional) is called with
    the number of anchors done per chunk and factor."""
    A, K = len(anchors), ds.num_factors
    V = np.empty((A, K))
    for j in range(K):
        for s in range(0, A, chunk):
            sl = slice(s, min(s + chunk, A))
            nz = None if nuisance is None else nuisance[sl]
            V[sl, j] = traversal_spread(render_traversal(ds, anchors[sl], j, nz, rng))
            if progress is not None:
                progress(sl.stop - sl.start)
    return V
