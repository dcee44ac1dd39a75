"""Sparsity: MIG, active MIG, DCI disentanglement and Modularity of β-VAEs with channel masks
against the mask strength (the L1 penalty λ on the mask), the unmasked model as a dashed baseline.

The last panel checks that the masks really become sparse: the share of mask entries with
|M| < 1e-3 (``model.sparsity()``, from the weights; left empty if the zoo kept no weights).

Data: the zoo's group ``mask`` (β-VAEs on toy_blobs with a continuous channel mask on every layer,
penalty λ·Σ|m| for each λ; the strength is read from each run's config.json ``mask``), and as
the baseline the runs anywhere in the zoo with the same dataset configuration, method,
hyper-parameters and steps but no mask (the ``toy_profiles`` β-VAEs on ``none``), read with
``varstruct.collect``. Dots: seeds; diamonds: mean with a 95% bootstrap CI over seeds; dashed
line and band: the baseline's mean and its CI.
"""
from __future__ import annotations

import json

import numpy as np

from ._common import Missing, bootstrap_ci, new_figure, save, values

METRICS = (("mig", "MIG"), ("active_mig", "active MIG"), ("dci_disentanglement", "DCI disentanglement"),
           ("modularity", "Modularity"))


def mask_l1(zoo, models) -> np.ndarray:
    out = []
    for m in models:
        mask = zoo.config(str(m)).get("mask")
        out.append(np.nan if not mask else float(mask.get("l1", 0.0)))
    return np.array(out)


def mask_sparsity(zoo, models) -> np.ndarray:
    """Per model the share of mask entries with |M| < 1e-3 (``model.sparsity()``; NaN without weights)."""
    out = []
    for m in models:
        try:
            out.append(float(zoo.load_model(str(m)).sparsity()))
        except (Missing, ValueError, OSError):
            out.append(np.nan)
    return np.array(out)


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

    sp = mask_sparsity(zoo, masked["model"].values)
    masked["mask_sparsity"] = ("model", sp)
    fig = new_figure(figsize=(17.0, 3.8))
    axes = fig.subplots(1, len(METRICS) + 1)
    if np.isfinite(sp).any():
        plot_groups(masked, "mask_sparsity", "mask_l1", order=list(label), ax=axes[-1], labels=label)
        axes[-1].set_ylabel("mask sparsity (share of |M| < 1e-3)")
        axes[-1].set_xlabel("mask L1 strength λ")
        axes[-1].set_ylim(-0.02, 1.02)
    else:
        axes[-1].text(0.5, 0.5, "no weights: mask sparsity unknown", ha="center", transform=axes[-1].transAxes)
    res = {"mask_sparsity": {f"l1={lv:g}": bootstrap_ci(sp[l1 == lv]) for lv in levels}, "levels": levels, "n_baseline": int(base.sizes["model"]), "baseline_models": base["model"].values.tolist()}
    for ax, (var, name) in zip(axes, METRICS):
        if var not in masked:
            ax.text(0.5, 0.5, f"{var}: not in the zoo", ha="center", transform=ax.transAxes)
            continue
        plot_groups(masked, var, "mask_l1", order=list(label), ax=ax, labels=label)
        ax.set_xlabel("mask L1 strength λ")
        ax.set_ylabel(name)
        ax.set_ylim(-0.02, 1.02)
        if base.sizes["model"]:
            est, lo, hi = bootstrap_ci(values(base, var))
            ax.axhline(est, ls="--", color="black", label=f"unmasked (n = {base.sizes['model']})")
            ax.axhspan(lo, hi, color="gray", alpha=0.15)
            ax.legend(fontsize=7, frameon=False)
            res.setdefault("baseline", {})[var] = (est, lo, hi)
        else:
            ax.text(0.5, 0.97, "no unmasked baseline in the zoo", ha="center", va="top", fontsize=7,
                    transform=ax.transAxes)
        for lv in levels:
            res.setdefault(f"l1={lv:g}", {"n_seeds": int((l1 == lv).sum())})[var] = \
                bootstrap_ci(values(masked, var)[l1 == lv])
    ds = [json.loads(k) for k in np.unique(masked["dataset_config"].values)]
    ds = "; ".join(d["dataset"] + " " + ", ".join(f"{k}={v}" for k, v in d["params"].items()) for d in ds)
    fig.suptitle(f"Sparsity: channel-masked β-VAEs against the mask strength ({ds}), "
                 f"mean and 95% bootstrap CI over seeds", fontsize=9)
    save(fig, out, "sparsity")
    return res


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
