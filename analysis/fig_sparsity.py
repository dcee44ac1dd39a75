"""Sparsity: MIG, active MIG, DCI disentanglement and Modularity of β-VAEs with channel masks
against the mask strength (the penalty λ of the mask), the unmasked model as a green baseline.

The last panel checks what the masks remove (measures.nc's ``mask_sparsity``,
``mask_live_sparsity`` and ``dead_unit_share``, docs/measures.md#unit-activity; for runs measured
before those existed, ``varstruct.models.units.unit_activity`` on 2,000 images of the run's
dataset from the weights; left empty if neither is there): the share
of all mask entries with |M| < 1e-3 (``model.sparsity()``), the share of *live connections*
pruned (output unit fires on some image and input feature is nonzero on some image: the
capacity the masks really take away), and the share of ReLU units that are dead (never fire),
reported separately because a dead unit's mask is zeroed by the penalty at no cost.

Data: the zoo's group ``mask`` (β-VAEs on toy_blobs with a channel mask on every layer, one run
per seed and penalty; mode and λ read from each run's config.json ``mask``), and as the baseline
the runs anywhere in the zoo with the same dataset configuration, method, hyper-parameters and
steps but no mask, read with ``varstruct.collect``. Dots: seeds; diamonds: mean with a 95%
bootstrap CI over seeds; green line and band: the unmasked baseline's mean and its CI; other lines: the oracle readout (the ceiling),
PCA, FastICA and the untrained network on the same dataset configuration (group ``toy_baselines``).
Every seed is drawn and counted, converged or not (leaving the unconverged out would select
seeds by how they learn); a red × marks a seed that did not meet the convergence criterion
(collect's ``converged`` = 0: it reached the step budget still improving), and the numbers give
``n_unconverged`` per λ.
"""
from __future__ import annotations

import json

import numpy as np

from ._common import BASELINE_STYLE, Missing, active_latents, bootstrap_ci, new_figure, save, toy_baselines, values

METRICS = (("mig", "MIG"), ("active_mig", "active MIG"), ("dci_disentanglement", "DCI disentanglement"),
           ("modularity", "Modularity"))


def mask_l1(zoo, models) -> np.ndarray:
    out = []
    for m in models:
        mask = zoo.config(str(m)).get("mask")
        out.append(np.nan if not mask else float(mask.get("l1", 0.0)))
    return np.array(out)


UNIT_VARS = (("sparsity", "all mask entries pruned", "C0"), ("live_sparsity", "live connections pruned", "C3"),
             ("dead_share", "ReLU units dead", "0.4"))
N_IMAGES = 2000


STUDY_VARS = {"sparsity": "mask_sparsity", "live_sparsity": "mask_live_sparsity", "dead_share": "dead_unit_share"}


def unit_numbers(zoo, study) -> dict:
    """Per model ``sparsity``, ``live_sparsity`` and ``dead_share``: from the study (measures.nc)
    where it has them, else :func:`unit_activity` on N_IMAGES images of the run's dataset (seed
    0) from the weights; NaN without either."""
    import varstruct
    from varstruct.models.units import unit_activity

    if all(v in study for v in STUDY_VARS.values()) and np.isfinite(values(study, "mask_live_sparsity")).all():
        return {k: values(study, v) for k, v in STUDY_VARS.items()}
    out = {k: [] for k, _, _ in UNIT_VARS}
    for m in study["model"].values:
        try:
            model = zoo.load_model(str(m))
        except (Missing, ValueError, OSError):
            for k in out:
                out[k].append(np.nan)
            continue
        c = model.config
        ds = varstruct.datasets.get(c["dataset"], **c.get("dataset_params", {}))
        r = unit_activity(model, ds.render(ds.sample_factors(N_IMAGES, 0), rng=0))
        for k in out:
            out[k].append(float(r[k]))
    return {k: np.array(v) for k, v in out.items()}


def make(zoo, out) -> dict:
    from varstruct.plots import plot_groups

    try:
        study = zoo.select("mask")
    except Missing:
        study = zoo.study
    l1 = mask_l1(zoo, study["model"].values)
    if not np.isfinite(l1).any():
        raise Missing("runs with a channel mask (config.json mask)")
    masked = study.isel(model=np.flatnonzero(np.isfinite(l1)))
    l1 = l1[np.isfinite(l1)]
    levels = sorted(set(l1))
    label = {f"{v:g}": f"{v:g}" for v in levels}
    masked = masked.assign_coords(mask_l1=("model", np.array([f"{v:g}" for v in l1])))
    # baseline: same dataset config, method, hyper-parameters and steps, no mask
    full = zoo.study
    keys = ("dataset_config", "method", "steps") + tuple(c for c in full.coords if str(c).startswith("hp_"))
    ref = {k: set(np.asarray(masked[k].values).astype(str)) for k in keys if k in masked.coords}
    cand = np.ones(full.sizes["model"], dtype=bool)
    for k, vals in ref.items():
        cand &= np.isin(np.asarray(full[k].values).astype(str), list(vals))
    cand &= ~np.isfinite(mask_l1(zoo, full["model"].values))
    base = full.isel(model=np.flatnonzero(cand))

    units = unit_numbers(zoo, masked)
    ref_baselines = toy_baselines(zoo, masked, "data_r")
    fig = new_figure(figsize=(18.0, 3.9))
    axes = fig.subplots(1, len(METRICS) + 1)
    ax = axes[-1]
    if np.isfinite(units["sparsity"]).any():
        jit = np.random.default_rng(0).uniform(-0.08, 0.08, len(l1))
        x = np.array([levels.index(v) for v in l1], dtype=float)
        for i, (k, name, colour) in enumerate(UNIT_VARS):
            off = (i - 1) * 0.25
            ax.scatter(x + off + jit * 0.5, units[k], s=8, color=colour, alpha=0.5, edgecolors="none")
            est = np.array([bootstrap_ci(units[k][l1 == lv]) for lv in levels])
            ax.errorbar(np.arange(len(levels)) + off, est[:, 0], yerr=[est[:, 0] - est[:, 1], est[:, 2] - est[:, 0]],
                        fmt="D", color=colour, capsize=2, ms=4, label=name)
        ax.set_xticks(range(len(levels)), [label[f"{v:g}"] for v in levels])
        ax.set_ylabel("share")
        ax.set_xlabel("mask strength λ")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6.5, frameon=False, loc="upper left")
        ax.set_title(f"what the masks remove ({N_IMAGES} images)", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no weights: mask sparsity unknown", ha="center", transform=ax.transAxes)
    res = {"units": {k: {f"l1={lv:g}": bootstrap_ci(v[l1 == lv]) for lv in levels} for k, v in units.items()},
           "mask_modes": sorted({str((zoo.config(str(m)).get("mask") or {}).get("mode")) for m in masked["model"].values}),
           "levels": levels, "baselines": ref_baselines, "n_baseline": int(base.sizes["model"]), "baseline_models": base["model"].values.tolist()}
    for ax, (var, name) in zip(axes, METRICS):
        if var not in masked:
            ax.text(0.5, 0.5, f"{var}: not in the zoo", ha="center", transform=ax.transAxes)
            continue
        plot_groups(masked, var, "mask_l1", order=list(label), ax=ax, labels=label)
        unconv = values(masked, "converged") == 0
        if unconv.any():
            ax.scatter([levels.index(v) for v in l1[unconv]], values(masked, var)[unconv], marker="x", color="C3",
                       s=28, zorder=4, label=f"unconverged ({int(unconv.sum())})")
        ax.set_xlabel("mask strength λ")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
        for _cfg, kinds in ref_baselines.items():  # one dataset configuration: lines across the panel
            for kind, (colour, ls, name) in BASELINE_STYLE.items():
                v = kinds.get(kind, {}).get(var)
                if v is not None and np.isfinite(v):
                    ax.axhline(v, color=colour, ls=ls, lw=1.0, label=name)
        if base.sizes["model"]:
            est, lo, hi = bootstrap_ci(values(base, var))
            ax.axhline(est, ls="-", color="C2", label=f"unmasked (n = {base.sizes['model']})")
            ax.axhspan(lo, hi, color="C2", alpha=0.12)
            ax.legend(fontsize=7, frameon=False)
            res.setdefault("baseline", {})[var] = (est, lo, hi)
        else:
            ax.text(0.5, 0.97, "no unmasked baseline in the zoo", ha="center", va="top", fontsize=7,
                    transform=ax.transAxes)
        for lv in levels:
            res.setdefault(f"l1={lv:g}", {"n_seeds": int((l1 == lv).sum()),
                                          "n_unconverged": int(np.sum(values(masked, "converged")[l1 == lv] == 0))})[var] = \
                bootstrap_ci(values(masked, var)[l1 == lv])
    # learning stage per λ (active latents: 2 = both factors learned) and each λ against the
    # gated λ = 0 cell (difference of means, permutation p, bootstrap CI: seeds are the replicates;
    # every λ and score one family for Holm's adjustment, p_holm)
    from varstruct.study.contrasts import contrast, with_holm

    n_act = active_latents(masked)
    res["stages"] = {f"l1={lv:g}": {str(int(k)): int(np.sum(n_act[l1 == lv] == k)) for k in np.unique(n_act[np.isfinite(n_act)])}
                     for lv in levels}
    if 0.0 in levels:
        res["contrasts_vs_l1_0"] = with_holm({f"l1={lv:g}": {var: contrast(values(masked, var)[l1 == lv],
                                                                                     values(masked, var)[l1 == 0.0])
                                                             for var, _ in METRICS if var in masked}
                                              for lv in levels if lv != 0.0})
    ds = [json.loads(k) for k in np.unique(masked["dataset_config"].values)]
    ds = "; ".join(d["dataset"] + " " + ", ".join(f"{k}={v}" for k, v in d["params"].items()) for d in ds)
    fig.suptitle(f"Sparsity: channel-masked β-VAEs against the mask strength ({ds}), "
                 f"mean and 95% bootstrap CI over seeds", fontsize=9)
    save(fig, out, "sparsity")
    return res


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
