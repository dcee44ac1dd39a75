"""Shared by fig_h2 and fig_h3: the runs of the controlled profiles (group ``toy_context``, or the
older ``toy_profiles``), their profile labels and summaries."""
from __future__ import annotations

import numpy as np

from ._common import (Missing, active_latents, bootstrap_ci, with_factor_scores, draw_baselines, group_or, new_figure, normalised_by_oracle,
                      toy_baselines, toy_variance, training_summary, values)

PROFILES = ("none", "noflip", "flip")
METRICS = (("mig", "MIG"), ("active_mig", "active MIG (KL < 0.05 held constant)"),
           ("active_mig_A", "active MIG of factor A (equal ceilings)"),
           ("encoding_inconsistency_mean", "encoding inconsistency"))


def select(zoo, methods):
    try:
        s = group_or(zoo, ("toy_context", "toy_profiles"), method=list(methods))
    except Missing:
        s = zoo.select(None, dataset="toy_blobs", data_profile=list(PROFILES), method=list(methods))
    return with_factor_scores(s)


def dataset_name(study) -> str:
    """The toy dataset(s) of the study, for titles."""
    return ", ".join(sorted(set(study["dataset"].values.astype(str)))) if "dataset" in study.coords else "toy"


def present(study, methods) -> list:
    """The ``methods`` that have runs in the study, in order."""
    return [m for m in methods if (study["method"].values == m).any()]


def labels(study) -> dict:
    """profile -> tick label with its r (and spread)."""
    out = {}
    for p in PROFILES:
        m = study["data_profile"].values == p
        if m.any():
            r = np.unique(values(study, "data_r")[m])
            sp = np.unique(values(study, "data_spread")[m]) if "data_spread" in study.coords else [np.nan]
            sp = [v for v in sp if np.isfinite(v)]
            out[p] = f"{p}\nr = {', '.join(f'{v:g}' for v in r)}" + (f", spread {sp[0]:g}" if sp else "")
    return out


def summarise(study, methods) -> dict:
    prof, meth = study["data_profile"].values, study["method"].values
    res = {}
    for mt in methods:
        for p in PROFILES:
            m = (prof == p) & (meth == mt)
            if m.any():
                n_act = active_latents(study)[m]
                res[f"{mt}/{p}"] = {"n_seeds": int(m.sum()),
                                    **{k: bootstrap_ci(values(study, k)[m], np.mean, seed=i)
                                       for i, (k, _) in enumerate(METRICS)},
                                    "active_mig_values": values(study, "active_mig")[m].round(3).tolist(),
                                    "active_latents": {str(int(v)): int((n_act == v).sum())
                                                       for v in np.unique(n_act[np.isfinite(n_act)])},
                                    "learned_all": int(learned_all(study)[m].sum())}
    return res


def n_factors(study) -> np.ndarray:
    """Per model the number of ground-truth factors of its dataset configuration."""
    import json

    import varstruct

    def count(key):
        cfg = json.loads(key)
        try:
            return varstruct.datasets.get(cfg["dataset"], **cfg.get("params", {})).num_factors
        except ValueError:  # a configuration this version refuses: the factors do not depend on it
            return varstruct.datasets.get(cfg["dataset"]).num_factors

    keys = study["dataset_config"].values.astype(str)
    k = {key: count(key) for key in np.unique(keys)}
    return np.array([k[key] for key in keys])


def learned_all(study) -> np.ndarray:
    """Per model: at least as many latents of mean KL >= 0.05 as the dataset has factors."""
    return active_latents(study) >= n_factors(study)


def plot(study, methods, title, fig=None, baselines=None):
    from varstruct.plots import plot_groups

    present = [m for m in methods if (study["method"].values == m).any()]
    if not present:
        raise Missing(f"runs of {' or '.join(methods)}")
    fig = fig or new_figure(figsize=(17.0, 3.8))
    axes = fig.subplots(1, len(METRICS))
    order = [p for p in PROFILES if (study["data_profile"].values == p).any()]
    for ax, (var, label) in zip(axes, METRICS):
        if var not in study:
            ax.text(0.5, 0.5, f"{var}: not in the zoo", ha="center", transform=ax.transAxes)
            continue
        plot_groups(study, var, "data_profile", hue="method", order=order, hue_order=present, ax=ax,
                    labels=labels(study))
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
        if baselines and var in ("mig", "active_mig", "active_mig_A"):
            draw_baselines(ax, baselines, order, var)
            ax.legend(fontsize=6, loc="upper right")
    fig.suptitle(title, fontsize=10)
    return fig


def contrasts(study, methods, score: str = "active_mig", keep=None) -> dict:
    """H2's tests: per method, every pair of profiles, mean(a) − mean(b) of ``score`` with its
    permutation p and bootstrap CI (:func:`varstruct.study.contrasts.contrast`, seeds as units);
    ``keep`` (bool per model) restricts them to a subset (e.g. the seeds that learned all factors)."""
    from itertools import combinations

    from varstruct.study.contrasts import contrast

    prof, meth, v = study["data_profile"].values, study["method"].values, values(study, score)
    keep = np.ones(len(v), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    out = {}
    for mt in methods:
        for i, (a, b) in enumerate(combinations(PROFILES, 2)):
            ma, mb = (prof == a) & (meth == mt) & keep, (prof == b) & (meth == mt) & keep
            if ma.any() and mb.any():
                out[f"{mt}: {a} - {b}"] = contrast(v[ma], v[mb], seed=i)
    return out


def interaction(study, methods, score: str = "active_mig", control: str = "none", treatment: str = "flip") -> dict:
    """H3's test: does the drop control → treatment of ``score`` differ between the two methods?
    (:func:`varstruct.study.contrasts.interaction`: difference of drops, bootstrap CI.)"""
    from varstruct.study.contrasts import interaction as diff_of_drops

    prof, meth, v = study["data_profile"].values, study["method"].values, values(study, score)
    a, b = methods
    cells = [v[(meth == m) & (prof == p)] for m in (a, b) for p in (control, treatment)]
    return {"score": score, "control": control, "treatment": treatment, "methods": [a, b],
            **diff_of_drops(*cells)}


def numbers(study, methods, zoo=None) -> dict:
    """The figure's numbers; its profile contrasts are one family for Holm's adjustment
    (``p_holm``, :func:`varstruct.study.contrasts.with_holm`)."""
    from varstruct.study.contrasts import with_holm

    summary = summarise(study, methods)
    out = {"summary": summary, "dataset_variance": toy_variance(study),
           "training": training_summary(study),
           **with_holm({"contrasts_active_mig": contrasts(study, methods),
                        "contrasts_active_mig_learned_all": contrasts(study, methods, keep=learned_all(study)),
                        "contrasts_active_mig_A": contrasts(study, methods, score="active_mig_A")})}
    if zoo is not None:
        base = toy_baselines(zoo, study, "data_profile")
        out["baselines"] = base
        out["active_mig_over_oracle"] = normalised_by_oracle(
            {cell: (cell.split("/")[1], v["active_mig"][0]) for cell, v in summary.items()}, base)
        out["active_mig_A_over_oracle"] = normalised_by_oracle(
            {cell: (cell.split("/")[1], v["active_mig_A"][0]) for cell, v in summary.items()}, base, "active_mig_A")
    return out
