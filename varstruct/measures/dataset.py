"""``measure_dataset``: every dataset measure (docs/measures.md#dataset-measures) as one labelled xr.Dataset.

Anchors come from :func:`grid.sample_anchors` (seed ``[seed, 0]``), frozen nuisances from
:func:`grid.anchor_nuisance` (seed ``[seed, 1]``); with ``freeze_nuisance=False`` every image
gets a fresh nuisance from one generator seeded ``[seed, 2]``. The local-PCA anchors are the
first ``n_pca_anchors`` anchors. Images are rendered float32 in chunks of anchors sized to
~64 MB of float64 work arrays; every reduction is float64. The result follows the one result
schema of :mod:`varstruct.schema` (docs/results.md).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..data.base import FactorDataset
from . import grid
from . import local_geometry as lg
from . import variance_stats as vs
from ..progress import ProgressArg, progress_bar
from ..errors import DatasetError
from ..schema import call_string, describe, provenance
from ..threads import limit_threads
from ..validate import check_float, check_int, check_seed

CHUNK_BYTES = 64 * 2 ** 20

# variable -> (long_name, units, docs/measures.md anchor, formula stored as the CF ``comment``)
VARIABLES = {
    "traversal_variance": ("local (traversal) variance of each factor at each anchor", "1", "traversal_variance",
                           "V[a,j] = mean_t ||X_j(c_a)[t] - mean_t X_j(c_a)||^2 / D"),
    "step_variance": ("variance of one grid step of each factor at each anchor", "1", "step_variance",
                      "||g(c+e_j) - g(c)||^2 / D (backward at the last index, wrap circular); NaN categorical"),
    "global_variance": ("global variance of each factor (mean over anchors)", "1", "global_variance",
                        "G[j] = mean_a V[a,j]"),
    "variance_share": ("share of the total global variance", "1", "variance_share", "G[j] / sum_k G[k]"),
    "global_rank": ("rank of the global variance (0 = largest)", None, "global_rank",
                    "rank of G[j], 0 = largest, ties by factor index"),
    "variance_cv": ("coefficient of variation of the local variance over anchors", "1", "variance_cv",
                    "std_a V[a,j] / G[j] (ddof 0); NaN where G = 0"),
    "variance_dependence": ("dependence of a factor's log local variance on another factor (eta squared)", "1",
                            "variance_dependence",
                            "eta^2 of log(V[.,j]+1e-12) grouped by c_k (factor2); NaN diagonal / groups < 2 anchors"),
    "order_inversion": ("fraction of anchors where a pair's local variance order inverts the global one", "1",
                        "order_inversion",
                        "for G[i] > G[j]: fraction of anchors with V[a,i] < V[a,j]; NaN diagonal and exact ties"),
    "local_global_discrepancy": ("mean local/global order inversion over factor pairs", "1",
                                 "local_global_discrepancy", "mean of order_inversion over pairs"),
    "local_global_discrepancy_tau": ("local/global discrepancy from Kendall tau-b", "1",
                                     "local_global_discrepancy_tau",
                                     "(1 - mean_a tau_b(V[a,.], G)) / 2; all-zero/constant V rows skipped"),
    "factor_discrepancy": ("mean order inversion of a factor with the others", "1", "factor_discrepancy",
                           "mean over i != j of order_inversion[i,j]"),
    "near_degeneracy": ("fraction of (anchor, pair) with nearly equal local variances", "1", "near_degeneracy",
                        "fraction of (anchor, pair) with |V_i-V_j|/(V_i+V_j) < delta"),
    "factor_near_degeneracy": ("mean smallest relative local-variance gap to another factor", "1",
                               "factor_near_degeneracy", "mean_a min_{i!=j} |V_i-V_j|/(V_i+V_j)"),
    "direction_consistency": ("consistency of the factor's pixel direction over anchors", "1",
                              "direction_consistency",
                              "||mean_a d_j|| / mean_a ||d_j|| (central differences); NaN categorical"),
    "local_nonorthogonality": ("mean |cosine| between factor directions at the same anchor", "1",
                               "local_nonorthogonality",
                               "mean over anchors and ordinal/circular pairs of |cos(d_i, d_j)|"),
    "local_pca_alignment": ("alignment of local principal directions with the factor directions", "1",
                            "local_pca_alignment",
                            "mean_j max_k |<u_k, d_j/||d_j||>| over the unique points of c + {-1,0,1}^K_o"),
}
COORDS = {
    "anchor": ("anchor index", None, None),
    "factor": ("ground-truth factor", None, None),
    "factor2": ("second ground-truth factor of a pair", None, None),
    "pca_anchor": ("local-PCA anchor index (= anchor index)", None, None),
    "anchor_factors": ("factor indices of each anchor on the factor grid", None, None),
    "factor_type": ("factor type (ordinal, circular, categorical)", None, None),
    "factor_size": ("number of values of the factor", None, None),
}


def _chunk(per_anchor_bytes: float) -> int:
    return max(1, int(CHUNK_BYTES // max(per_anchor_bytes, 1)))


def measure_dataset(ds: FactorDataset, n_anchors: int = 1000, seed: int = 0, freeze_nuisance: bool = True,
                    delta: float = 0.1, n_pca_anchors: int = 200, progress: ProgressArg = False,
                    threads: int | None = None) -> xr.Dataset:
    """The dataset measures of docs/measures.md#dataset-measures for ``ds``.

    Returns an xr.Dataset with dims anchor [A], factor / factor2 [K] (factor names) and
    pca_anchor [min(n_pca_anchors, A)]; coordinates ``anchor_factors`` (anchor, factor: the
    anchors' factor indices), ``factor_type``, ``factor_size``; the provenance attrs of
    docs/results.md plus freeze_nuisance (0/1), delta, n_pca_anchors, image_shape.
    ``threads``: torch and BLAS threads for this call (None: the process's setting), restored after.
    ``progress``: False, True (a bar) or a :class:`varstruct.progress.Progress` callback
    (units: anchors x factors of traversals, then anchors, then local-PCA anchors).
    VarstructError for n_anchors < 1, a bad seed, δ ≤ 0, n_pca_anchors < 0 or threads < 1."""
    if not isinstance(ds, FactorDataset):
        raise DatasetError(f"ds must be a FactorDataset, got {type(ds).__name__}")
    A = check_int("n_anchors", n_anchors, 1)
    seed = check_seed("seed", seed)
    P = min(check_int("n_pca_anchors", n_pca_anchors, 0), A)
    delta = check_float("delta", delta, 0, lo_open=True)
    with limit_threads(threads):
        out = _measure(ds, A, seed, bool(freeze_nuisance), delta, P, progress)
    return _stamp(out, ds, A, seed, bool(freeze_nuisance), delta, P)


def _measure(ds, A, seed, freeze_nuisance, delta, P, progress) -> xr.Dataset:
    K, D = ds.num_factors, ds.n_pixels
    if K < 1:
        raise DatasetError(f"{ds.name}: no factor with more than one value")
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
    total = A * K + A + (P if len(ordered) else 0)
    with progress_bar(progress, total, "traversal variance", transient=False) as advance:
        # V: traversals of every factor at every anchor.
        V = grid.traversal_variance(ds, anchors, nuisance, rng, chunk=_chunk(4 * int(sizes.max()) * D * 8),
                                    progress=advance)
        advance(0, "factor directions")

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
            advance(sl.stop - sl.start)
        cat = np.array([t == "categorical" for t in types])
        consistency = lg.direction_consistency_from_sums(sum_d, np.where(cat, 0.0, sum_norm))
        step[:, cat] = np.nan

        # Local PCA around the first P anchors.
        pca = np.full(P, np.nan)
        if P and len(ordered):
            advance(0, "local PCA")
            c = _chunk(3 * n_nbhd * D * 8)
            for s in range(0, P, c):
                sl = slice(s, min(s + c, P))
                idx, keep = lg.pca_neighbourhood(anchors[sl], sizes, types)
                X = grid.render_at(ds, idx, nz(sl), rng).reshape(len(idx), n_nbhd, D)
                d = grid.factor_directions(ds, anchors[sl], nz(sl), scheme="central", rng=rng)[:, ordered]
                pca[sl] = lg.local_pca_alignment(X, keep, d)
                advance(sl.stop - sl.start)

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
    return xr.Dataset(
        {k: xr.Variable(dims, np.asarray(v)) for k, (dims, v) in data.items()},
        coords={"anchor": np.arange(A), "factor": names, "factor2": names, "pca_anchor": np.arange(P),
                "anchor_factors": (("anchor", "factor"), anchors),
                "factor_type": (fa, np.array(types, dtype=str)), "factor_size": (fa, sizes)})


def _stamp(out: xr.Dataset, ds, A, seed, freeze_nuisance, delta, P) -> xr.Dataset:
    describe(out, {k: v[:3] for k, v in VARIABLES.items()})
    describe(out, COORDS)
    for k, v in VARIABLES.items():
        out[k].attrs["comment"] = v[3]
    return provenance(
        out, title="varstruct dataset measures", dataset=ds.name, dataset_params=ds.params, seed=seed,
        n_anchors=A,
        command=call_string("varstruct.measure_dataset", ds=ds.name, n_anchors=A, seed=seed,
                            freeze_nuisance=freeze_nuisance, delta=delta, n_pca_anchors=P),
        freeze_nuisance=freeze_nuisance, delta=delta, n_pca_anchors=P, image_shape=list(ds.image_shape),
        anchors="uniform on the factor grid, rng seed [seed, 0]; frozen nuisances seed [seed, 1], "
                "fresh nuisances (freeze_nuisance=0) one generator seed [seed, 2]",
        pca_anchors="the first n_pca_anchors anchors (pca_anchor i = anchor i)",
        pca_neighbourhood="unique points of c + {-1,0,1}^K_o over ordinal/circular factors "
                          "(clipped at borders, circular wrapped; coinciding points kept once)")
