"""The correlation heatmap of measures × scores over the whole zoo (``varstruct.correlate``).

Data: every finished run of the zoo (``varstruct.collect``: toy_blobs groups and the dSprites
family together). Left, model level (each model a point): dataset measures of the model's
training data and model measures (x) against global scores (y). Right, factor level (each
(dataset configuration, factor) a point, x and y averaged over the seeds and methods trained on
it): per-factor dataset and model measures against per-factor scores. Third panel: the model
level within the toy_blobs runs only (the dSprites-family runs are short and nearly untrained, so
across the whole zoo the dataset alone separates low from high scores). Spearman's ρ with a
permutation p-value (999 permutations), Benjamini–Hochberg q over each table ('*': q < 0.05).
Cells are NaN (blank) where fewer than 4 points have both values or one is constant. Pooling
runs of different datasets, methods and training lengths makes these associations across the
zoo, not causal effects.
"""
from __future__ import annotations

import numpy as np

from ._common import Missing, new_figure, save

MODEL_X = ("local_global_discrepancy", "local_global_discrepancy_tau", "near_degeneracy", "local_nonorthogonality",
           "local_pca_alignment", "n_active", "encoding_inconsistency_mean", "encoding_entropy_mean",
           "encoding_purity_mean", "encoding_collision", "discordance_effect_mean")
MODEL_Y = ("mig", "active_mig", "dci_disentanglement", "dci_completeness", "sap", "modularity")
FACTOR_X = ("variance_share", "variance_cv", "factor_discrepancy", "factor_near_degeneracy", "direction_consistency",
            "encoding_inconsistency", "encoding_purity", "discordant_fraction")
FACTOR_Y = ("mig_per_factor", "active_mig_per_factor", "dci_completeness_per_factor",
            "explicitness_test_per_factor", "sap_per_factor")


def _present(study, names, dims):
    out = []
    for n in names:
        if n in study and set(study[n].dims) <= set(dims) and "model" in study[n].dims:
            v = np.asarray(study[n].values, dtype=float)
            if np.isfinite(v).sum() >= 4 and np.nanstd(v) > 0:
                out.append(n)
    return out


def make(zoo, out, n_permutations: int = 999, n_resamples: int = 199) -> dict:
    import varstruct
    from varstruct.plots import plot_correlation_heatmap

    full = zoo.study
    toy = full.isel(model=np.flatnonzero(full["dataset"].values == "toy_blobs"))
    fig = new_figure(figsize=(22.0, 6.5))
    axes = fig.subplots(1, 3)
    res = {"n_models": int(full.sizes["model"]), "n_toy_models": int(toy.sizes["model"])}
    panels = ((axes[0], "model", MODEL_X, MODEL_Y, full, "model"), (axes[1], "factor", FACTOR_X, FACTOR_Y, full, "factor"),
              (axes[2], "model", MODEL_X, MODEL_Y, toy, "toy_model"))
    for ax, level, xs, ys, study, key in panels:
        dims = ("model",) if level == "model" else ("model", "factor")
        x, y = _present(study, xs, dims), _present(study, ys, dims)
        if level == "model":
            y = [v for v in y if study[v].dims == ("model",)]
        if not x or not y:
            ax.text(0.5, 0.5, f"{level} level: no measure/score pair in the zoo", ha="center", transform=ax.transAxes)
            continue
        corr = varstruct.correlate(study, x=x, y=y, level=level, n_permutations=n_permutations,
                                   n_resamples=n_resamples, seed=0)
        plot_correlation_heatmap(corr, ax=ax)
        where = "the toy_blobs runs only" if key == "toy_model" else "the whole zoo"
        ax.set_title(f"{level} level, {where}: Spearman ρ ('*' q < 0.05)", fontsize=9)
        table = varstruct.study.correlate.to_table(corr)
        res[key] = table.head(12).round(3).to_dict(orient="records")
        res[f"{key}_n_points"] = int(np.nanmax(corr["n"].values))
    if len(res) == 1:
        raise Missing("measure/score pairs to correlate")
    fig.suptitle(f"Measures × scores over the zoo ({full.sizes['model']} models; right: the "
                 f"{toy.sizes['model']} toy_blobs models)", fontsize=10)
    save(fig, out, "correlations")
    return res


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
