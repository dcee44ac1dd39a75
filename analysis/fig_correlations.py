"""Measures × scores, each family of the zoo on its own, at each pair's unit of analysis.

Data: every finished run of the zoo (``varstruct.collect``) but the baselines and the
channel-masked runs (the mask series is a treatment, section 8 of RESULTS). The toy runs (toy_blobs and
toy_context) and the dSprites-family runs (dsprites, color_dsprites, noisy_dsprites, shapes3d) are analysed
separately: pooled, the family alone separates low from high scores. ``varstruct.correlate``
finds each variable's unit from its values (docs/studies.md#units-of-analysis): a dataset
measure's points are the dataset configurations (each with the mean score of its models), a
model measure's the models. Panels: (a) toy family, model level; (b) dSprites family, model
level; (c) toy family, factor level ((configuration, factor) points). Spearman's ρ with a
permutation p-value over the units (999 permutations), Benjamini–Hochberg q over each panel
('*': q < 0.05); each cell shows ρ and, below it, the number of units. Cells are blank where
fewer than 4 units have both values or one is constant: a dataset measure over fewer than four
dSprites configurations (one at present) cannot be tested, however many models were trained on them. These are
associations across configurations, not causal effects (the configurations differ in more than
the measure).
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
FAMILIES = {"toy": ("toy_blobs", "toy_context"), "dsprites": ("dsprites", "color_dsprites", "noisy_dsprites", "shapes3d")}


def _present(study, names, dims):
    out = []
    for n in names:
        if n in study and study[n].dims == dims:
            v = np.asarray(study[n].values, dtype=float)
            if np.isfinite(v).sum() >= 4 and np.nanstd(v) > 0:
                out.append(n)
    return out


def family(study, name):
    """The trained models of a family. Not part of a correlation: baselines (``baseline`` != "")
    and channel-masked models (``mask_mode`` != "": a treatment of the mask series, which would
    pull their configuration's mean score away from that of the unmasked models)."""
    keep = np.isin(study["dataset"].values, FAMILIES[name])
    for coord in ("baseline", "mask_mode"):
        if coord in study.coords:
            keep &= np.asarray(study[coord].values).astype(str) == ""
    return study.isel(model=np.flatnonzero(keep))


def _rows(corr, n=10, unit=None):
    import varstruct

    table = varstruct.study.correlate.to_table(corr)
    table = table[np.isfinite(table["r"])]
    table = table.head(n) if unit is None else table[table["unit"].str.startswith(unit)]
    cols = ["x", "y", "r", "ci_low", "ci_high", "p", "q", "unit", "n_units", "n_models", "n_distinct_x", "n_dropped",
            "selection_p"]
    return table[cols].round(3).to_dict(orient="records")


def make(zoo, out, n_permutations: int = 999, n_resamples: int = 999) -> dict:
    import varstruct
    from varstruct.plots import plot_correlation_heatmap

    full = zoo.study
    fig = new_figure(figsize=(22.0, 7.0))
    axes = fig.subplots(1, 3)
    res = {"n_models": int(full.sizes["model"])}
    panels = ((axes[0], "model", MODEL_X, MODEL_Y, "toy"), (axes[1], "model", MODEL_X, MODEL_Y, "dsprites"),
              (axes[2], "factor", FACTOR_X, FACTOR_Y, "toy"))
    for ax, level, xs, ys, fam in panels:
        study = family(full, fam)
        key = f"{fam}_{level}"
        dims = ("model",) if level == "model" else ("model", "factor")
        x, y = _present(study, xs, dims), _present(study, ys, dims)
        if not x or not y:
            ax.text(0.5, 0.5, f"{fam}, {level} level: no measure/score pair", ha="center", transform=ax.transAxes)
            continue
        corr = varstruct.correlate(study, x=x, y=y, level=level, n_permutations=n_permutations,
                                   n_resamples=n_resamples, seed=0)
        plot_correlation_heatmap(corr, ax=ax)
        n_cfg = len(set(study["dataset_config"].values.tolist()))
        ax.set_title(f"{'toy family' if fam == 'toy' else 'dSprites family'}, {level} level: Spearman ρ, "
                     f"(n) units; {study.sizes['model']} models, {n_cfg} configurations ('*' q < 0.05)", fontsize=9)
        res[key] = {"n_models": int(study.sizes["model"]), "n_dataset_configs": n_cfg,
                    "n_tests": int(corr.attrs["n_tests"]), "top": _rows(corr),
                    "dataset_config_units": _rows(corr, unit="dataset_config"),
                    "untested": int(np.isnan(corr["r"].values).sum())}
    if len(res) == 1:
        raise Missing("measure/score pairs to correlate")
    fig.suptitle("Measures × scores, each family on its own, at each pair's unit of analysis "
                 "(dataset measures: one point per dataset configuration)", fontsize=10)
    save(fig, out, "correlations")
    return res


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
