"""``measure_dataset``: every dataset measure of MEASURES.md §1 as one labelled xr.Dataset.

Anchors come from :func:`grid.sample_anchors` (seed ``[seed, 0]``), frozen nuisances from
:func:`grid.anchor_nuisance` (seed ``[seed, 1]``); with ``freeze_nuisance=False`` every image
gets a fresh nuisance from one generator seeded ``[seed, 2]``. The local-PCA anchors are the
first ``n_pca_anchors`` anchors. Images are rendered float32 in chunks of anchors sized to
~64 MB of float64 work arrays, with one torch thread; every reduction is float64.
"""
from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from ..data.base import FactorDataset
from . import grid
from . import local_geometry as lg
from . import variance_stats as vs
from ..progress import progress_bars
from ..tensors import torch_threads

CHUNK_BYTES = 64 * 2 ** 20

DESCRIPTIONS = {
    "traversal_variance": "V[a,j] = mean_t ||X_j(c_a)[t] - mean_t X_j(c_a)||^2 / D",
    "step_variance": "||g(c+e_j) - g(c)||^2 / D (backward at the last index, wrap circular); NaN categorical",
    "global_variance": "G[j] = mean_a V[a,j]",
    "variance_share": "G[j] / sum_k G[k]",
    "global_rank": "rank of G[j], 0 = largest, ties by factor index",
    "variance_cv": "std_a V[a,j] / G[j] (ddof 0); NaN where G = 0",
    "variance_dependence": "eta^2 of log(V[.,j]+1e-12) grouped by c_k (factor2); NaN diagonal / groups < 2 anchors",
    "order_inversion": "for G[i] > G[j]: fraction of anchors with V[a,i] < V[a,j]; NaN diagonal and exact ties",
    "local_global_discrepancy": "mean of order_inversion over pairs",
    "local_global_discrepancy_tau": "(1 - mean_a tau_b(V[a,.], G)) / 2; all-zero/constant V rows skipped",
    "factor_discrepancy": "mean over i != j of order_inversion[i,j]",
    "near_degeneracy": "fraction of (anchor, pair) with |V_i-V_j|/(V_i+V_j) < delta",
    "factor_near_degeneracy": "mean_a min_{i!=j} |V_i-V_j|/(V_i+V_j)",
    "direction_consistency": "||mean_a d_j|| / mean_a ||d_j|| (central differences); NaN categorical",
    "local_nonorthogonality": "mean over anchors and ordinal/circular pairs of |cos(d_i, d_j)|",
    "local_pca_alignment": "mean_j max_k |<u_k, d_j/||d_j||>| over the unique points of c + {-1,0,1}^K_o",
}


def _chunk(per_anchor_bytes: float) -> int:
    return max(1, int(CHUNK_BYTES // max(per_anchor_bytes, 1)))


def _check_int(name, value, lo):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def measure_dataset(ds: FactorDataset, n_anchors: int = 1000, seed: int = 0, freeze_nuisance: bool = True,
                    delta: float = 0.1, n_pca_anchors: int = 200, progress: bool = False) -> xr.Dataset:
    """The dataset measures of MEASURES.md §1 for ``ds``.

    Returns an xr.Dataset with dims anchor [A], factor / factor2 [K] (factor names) and
    pca_anchor [min(n_pca_anchors, A)]; coordinates ``anchor_factors`` (anchor, factor: the
    anchors' factor indices), ``factor_type``, ``factor_size``; attrs saying how it was made.
    ValueError for n_anchors < 1, seed < 0, δ ≤ 0 or n_pca_anchors < 0."""
    if not isinstance(ds, FactorDataset):
        raise ValueError(f"ds must be a FactorDataset, got {type(ds).__name__}")
    A = _check_int("n_anchors", n_anchors, 1)
    seed = _check_int("seed", seed, 0)
    P = min(_check_int("n_pca_anchors", n_pca_anchors, 0), A)
    delta = float(delta)
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a positive number, got {delta!r}")
    K, D = ds.num_factors, ds.n_pixels
    if K < 1:
        raise ValueError(f"{ds.name}: no factor with more than one value")
    sizes, types = ds.factor_sizes, list(ds.factor_types)
    ordered = np.array([j for j, t in enumerate(types) if t != "categorical"], dtype=np.int64)

    anchors = grid.sample_anchors(ds, A, seed)
    if freeze_nuisance:
        nuisance, rng = grid.anchor_nuisance(ds, A, seed), None
    else:
        nuisance, rng = None, np.random.default_rng([seed, 2])

    def nz(sl):
        return None if nuisance is None else nuisance[sl]

    n_nbhd = 3 ** len(ordered)
    totals = {"traversal variance": A * K, "factor directions": A}
    if P and len(ordered):
        totals["local PCA"] = P
    with progress_bars(progress, totals) as advance, torch_threads(1):
        # V: traversals of every factor at every anchor.
        V = grid.traversal_variance(ds, anchors, nuisance, rng, chunk=_chunk(4 * int(sizes.max()) * D * 8),
                                    progress=lambda n: advance("traversal variance", n))

        # Directions (central: d_j; forward: steps), streamed over chunks of anchors.
        step = np.full((A, K), np.nan)
        sum_d, sum_norm = np.zeros((K, D)), np.zeros(K)
        cos_sum, cos_n = 0.0, 0
        c = _chunk(3 * K * D * 8)
        for s in range(0, A, c):
            sl = slice(s, min(s + c, A))
            d = grid.factor_directions(ds, anchors[sl], nz(sl), scheme="central", rng=rng)
            a, b = lg.direction_sums(d)
            sum_d += np.nan_to_num(a)
            sum_norm += b
            cs, cn = lg.abs_cos_sums(d, ordered)
            cos_sum, cos_n = cos_sum + cs, cos_n + cn
            del d
            f = grid.factor_directions(ds, anchors[sl], nz(sl), scheme="forward", rng=rng)
            step[sl] = (f ** 2).sum(axis=-1) / D
            del f
            advance("factor directions", sl.stop - sl.start)
        cat = np.array([t == "categorical" for t in types])
        consistency = lg.direction_consistency_from_sums(sum_d, np.where(cat, 0.0, sum_norm))
        step[:, cat] = np.nan

        # Local PCA around the first P anchors.
        pca = np.full(P, np.nan)
        if P and len(ordered):
            c = _chunk(3 * n_nbhd * D * 8)
            for s in range(0, P, c):
                sl = slice(s, min(s + c, P))
                idx, keep = lg.pca_neighbourhood(anchors[sl], sizes, types)
                X = grid.render_at(ds, idx, nz(sl), rng).reshape(len(idx), n_nbhd, D)
                d = grid.factor_directions(ds, anchors[sl], nz(sl), scheme="central", rng=rng)[:, ordered]
                pca[sl] = lg.local_pca_alignment(X, keep, d)
                advance("local PCA", sl.stop - sl.start)

    G = vs.global_variance(V)
    oi = vs.order_inversion(V)
    fa, fa2 = ("factor",), ("factor", "factor2")
    data = {
        "traversal_variance": (("anchor", "factor"), V),
        "step_variance": (("anchor", "factor"), step),
        "global_variance": (fa, G),
        "variance_share": (fa, vs.variance_share(G)),
        "global_rank": (fa, vs.global_rank(G)),
        "variance_cv": (fa, vs.variance_cv(V)),
        "variance_dependence": (fa2, vs.variance_dependence(V, anchors, sizes)),
        "order_inversion": (fa2, oi),
        "local_global_discrepancy": ((), vs.local_global_discrepancy(oi)),
        "local_global_discrepancy_tau": ((), vs.local_global_discrepancy_tau(V)),
        "factor_discrepancy": (fa, vs.factor_discrepancy(oi)),
        "near_degeneracy": ((), vs.near_degeneracy(V, delta)),
        "factor_near_degeneracy": (fa, vs.factor_near_degeneracy(V)),
        "direction_consistency": (fa, consistency),
        "local_nonorthogonality": ((), cos_sum / cos_n if cos_n else np.nan),
        "local_pca_alignment": (("pca_anchor",), pca),
    }
    names = list(ds.factor_names)
    out = xr.Dataset(
        {k: xr.Variable(dims, np.asarray(v), attrs={"definition": DESCRIPTIONS[k]}) for k, (dims, v) in data.items()},
        coords={"anchor": np.arange(A), "factor": names, "factor2": names, "pca_anchor": np.arange(P),
                "anchor_factors": (("anchor", "factor"), anchors),
                "factor_type": (fa, np.array(types, dtype=str)), "factor_size": (fa, sizes)})
    from .. import __version__

    out.attrs = {
        "title": "varstruct dataset measures (MEASURES.md section 1)",
        "dataset": ds.name, "dataset_params": dict(ds.params), "image_shape": list(ds.image_shape),
        "factor_names": names, "factor_types": types, "factor_sizes": sizes.tolist(),
        "n_anchors": A, "seed": seed, "freeze_nuisance": bool(freeze_nuisance), "delta": delta,
        "n_pca_anchors": P,
        "anchors": "uniform on the factor grid, rng seed [seed, 0]; frozen nuisances seed [seed, 1], "
                   "fresh nuisances (freeze_nuisance=False) one generator seed [seed, 2]",
        "pca_anchors": "the first n_pca_anchors anchors (pca_anchor i = anchor i)",
        "pca_neighbourhood": "unique points of c + {-1,0,1}^K_o over ordinal/circular factors "
                             "(clipped at borders, circular wrapped; coinciding points kept once)",
        "version": __version__,
    }
    return out
