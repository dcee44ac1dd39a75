"""The variance structure of each dataset side by side: per factor the variance share, the
coefficient of variation of its local variance and its factor discrepancy; per dataset the local
PCA alignment, the local/global discrepancy and the near-degeneracy.

Data (computed directly with ``varstruct.measure_dataset``, no zoo; 300 uniform anchors and 60
PCA anchors, seed 0, nuisances frozen per anchor): toy_linear (amplitudes 2, 1.5, 1), toy_square,
toy_blobs ``none`` r = 2 at the H1 zoo's amplitude 0.35, the three toy_context profiles of the
H2/H3 zoo (r = 1.5, amplitude 0.3, c_ratio 2.15), dsprites, color_dsprites, noisy_dsprites and the
procedural shapes3d. Definitions: docs/measures.md (variance_share, variance_cv,
factor_discrepancy, local_pca_alignment: mean over PCA anchors, local_global_discrepancy,
near_degeneracy; numbers.json also gives each pair's order_inversion, the fraction of anchors
where the pair's local variance order inverts the global one, and for toy_context the share of C's
global variance that is B's blob moving, ``variance()["cross_C"] / variance()["C"]``). Categorical
factors (shape) have no direction and take part in the variance measures like the others.
"""
from __future__ import annotations

import numpy as np

from ._common import new_figure, save

DATASETS = (("toy_linear", "toy_linear", {}),
            ("toy_square", "toy_square", {}),
            ("blobs none r2", "toy_blobs", {"r": 2.0, "profile": "none", "amplitude": 0.35}),
            *((f"context {p}", "toy_context", {"r": 1.5, "profile": p, "amplitude": 0.3, "c_ratio": 2.15})
              for p in ("none", "noflip", "flip")),
            ("dsprites", "dsprites", {}),
            ("color_dsprites", "color_dsprites", {}),
            ("noisy_dsprites", "noisy_dsprites", {}),
            ("shapes3d", "shapes3d", {}))
PER_FACTOR = (("variance_share", "variance share"), ("variance_cv", "CV of local variance"),
              ("factor_discrepancy", "factor discrepancy"))
SCALARS = (("local_pca_alignment", "local PCA alignment"), ("local_global_discrepancy", "local/global discrepancy"),
           ("near_degeneracy", "near-degeneracy (δ = 0.1)"))


def measure_all(datasets=DATASETS, n_anchors: int = 300, n_pca_anchors: int = 60, seed: int = 0) -> dict:
    import varstruct

    return {label: varstruct.measure_dataset(varstruct.datasets.get(name, **params), n_anchors=n_anchors,
                                             seed=seed, n_pca_anchors=n_pca_anchors)
            for label, name, params in datasets}


def scalar(m, var) -> float:
    if var not in m:
        return np.nan
    v = m[var]
    return float(np.nanmean(v.values)) if v.ndim else float(v)


def plot(measures: dict, fig=None):
    from varstruct.plots import plot_factor_bars

    fig = fig or new_figure(figsize=(12.0, 10.0))
    axes = fig.subplots(4, 1, height_ratios=[1, 1, 1, 1.1])
    for ax, (var, label) in zip(axes[:3], PER_FACTOR):
        plot_factor_bars(measures, var, ax=ax, ylabel=label)
    ax = axes[3]
    names = list(measures)
    w = 0.8 / len(SCALARS)
    for k, (var, label) in enumerate(SCALARS):
        v = [scalar(measures[n], var) for n in names]
        ax.bar(np.arange(len(names)) + (k - 1) * w, v, width=w, label=label, color=f"C{k}")
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=7)
    ax.set_ylim(0, 1.3)
    ax.legend(fontsize=7, frameon=False, ncols=3, loc="upper center")
    ax.set_ylabel("per dataset", fontsize=8)
    n = next(iter(measures.values()))
    fig.suptitle(f"Variance structure of each dataset ({n.sizes['anchor']} anchors, "
                 f"{n.sizes.get('pca_anchor', 0)} PCA anchors)", fontsize=10)
    return fig


def make(zoo, out, n_anchors: int = 300, n_pca_anchors: int = 60, datasets=DATASETS) -> dict:
    import varstruct

    measures = measure_all(datasets, n_anchors, n_pca_anchors)
    save(plot(measures), out, "variance_structure")
    res = {"n_anchors": n_anchors, "n_pca_anchors": n_pca_anchors}
    for label, name, params in datasets:
        m = measures[label]
        f = [str(x) for x in m["factor"].values]
        res[label] = {var: dict(zip(f, np.round(m[var].values.astype(float), 3).tolist())) for var, _ in PER_FACTOR}
        res[label].update({var: round(scalar(m, var), 3) for var, _ in SCALARS})
        oi = m["order_inversion"].values
        res[label]["order_inversion"] = {f"{f[i]}-{f[j]}": round(float(oi[i, j]), 3)
                                         for i in range(len(f)) for j in range(i + 1, len(f)) if np.isfinite(oi[i, j])}
        if name == "toy_context":  # closed form: how much of C's variance is B's blob moving
            v = varstruct.datasets.get(name, **params).variance()
            res[label]["cross_C_share_of_C"] = round(float(v["cross_C"] / v["C"]), 4)
    return res


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
