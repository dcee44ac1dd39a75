"""Ada-GVAE on longitudinal pairs, against its two controls: does pair supervision in which only
some factors change separate the code of the factors that stay fixed from the code of those that
change?

A dSprites proxy, not MRI data: two "scans" of one "subject" are two dSprites images in which only
posX, posY and scale may change (shape and orientation stay fixed).

Data: the zoo's group ``longitudinal`` (``studies/zoo_longitudinal.toml`` and
``zoo_longitudinal_beta.toml``), three arms at matched images seen per step (128):

- **restricted**: Ada-GVAE (k = 1, β = 1) on pairs in which only the ``changeable`` factors
  (posX, posY, scale) may change, 64 pairs a step;
- **any-factor**: the same Ada-GVAE on pairs in which any one factor may change (the control for
  "pairs at all" vs "pairs that change only the longitudinal factors");
- **β-VAE** (β = 1) at batch 128 without pairs (the control for pair supervision);

every run trained a fixed 20,000 steps (images seen matched exactly; the runs' convergence
verdicts, collect's ``converged``, are counted in the numbers, not used to select: at β = 1 the
reconstruction is still falling there), loaded with their weights (``varstruct.load_model``). The
untrained network of the group ``dsprites_baselines`` (the same conv network at ``steps = 0``) is
the floor.

Per model, on 500 pairs drawn with ``ds.sample_pairs(k=1, changeable=[posX, posY, scale])``
(seed 0; the same pairs for every model):
``varstruct.measures.pairs.latent_movement`` d_l = mean |μ_l(x2) − μ_l(x1)| / sd(μ_l(x1)) over
the active latents (``active``), and the **fixed-code drift**
(``varstruct.measures.pairs.fixed_code_drift``): the importance-weighted movement of the latents
that carry shape and orientation (weights: the run's ``dci_importance``) over that of the latents
that carry posX, posY and scale; 0 = the fixed factors' code stays put, 1 = it moves as much as
the changing code. Also the movement concentration (share of Σ d in the 3 largest d) and the
run's MIG and DCI disentanglement.

Tests (``varstruct.study.contrasts.contrast``: difference of means, two-sided permutation p,
percentile bootstrap 95% CI; seeds are the replicates): restricted − β-VAE and restricted −
any-factor, for the drift (the primary outcome), MIG and DCI disentanglement; per measure the two
contrasts are one family, Holm-adjusted (``p_holm``).

Panels: (top) latent traversals of the first seed of each arm, the 6 latents of largest mean KL
(``varstruct.plots.latent_traversals``, 7 values in [−2.5, 2.5]); (bottom) d_l sorted by size per
model (thin) and its arm mean (thick), one y-scale; the drift; MIG; DCI disentanglement, seeds as
dots with the arm mean, the untrained network's range as a grey band; the score panels share the
0–1 scale.
"""
from __future__ import annotations

import json

import numpy as np

from ._common import Missing, active_latents, bootstrap_ci, new_figure, save, values

N_PAIRS = 500
N_LATENTS = 6
DEFAULT_CHANGEABLE = ["posX", "posY", "scale"]
ARMS = (("restricted", "Ada-GVAE,\nrestricted pairs", "C0"), ("any", "Ada-GVAE,\nany-factor pairs", "C2"),
        ("beta", "β-VAE\n(no pairs)", "C1"))
SCORES = (("drift", "fixed-code drift\n(0: fixed code still)"), ("mig", "MIG"),
          ("dci_disentanglement", "DCI disentanglement"))
CONTRASTS = (("restricted", "beta"), ("restricted", "any"))


def arms(study) -> np.ndarray:
    """The arm of each model: ``restricted`` (an Ada-GVAE with ``changeable``), ``any`` (an
    Ada-GVAE without), ``beta`` (a β-VAE), ``''`` otherwise."""
    meth = study["method"].values.astype(str)
    ch = study["hp_changeable"].values.astype(str) if "hp_changeable" in study.coords else np.full(len(meth), "")
    has = np.array([c not in ("", "nan", "None", "[]") for c in ch])
    return np.where(meth == "ada_gvae", np.where(has, "restricted", "any"), np.where(meth == "beta_vae", "beta", ""))


def encode(model, images):
    import torch

    from varstruct.tensors import to_torch

    with torch.no_grad():
        return model.encode(to_torch(images))[0].double().numpy()


def pairs(ds, changeable):
    """The shared pairs: (x1, x2, factor names) of N_PAIRS pairs in which only ``changeable`` may change (seed 0)."""
    i1, i2 = ds.sample_pairs(N_PAIRS, np.random.default_rng(0), k=1, changeable=changeable)
    return ds.render(i1, rng=1), ds.render(i2, rng=1)


def per_model(zoo, study, names, x1, x2, factor_names, fixed, only_active: bool = True) -> dict:
    """{model: {movement, drift, concentration}} from each model's weights; over the active
    latents, or all latents with ``only_active=False`` (the untrained network: no latent is
    active by KL, yet its means still vary)."""
    from varstruct.measures.pairs import fixed_code_drift, latent_movement, movement_concentration

    out = {}
    for name in names:
        one = study.sel(model=name)
        act = one["active"].values.astype(bool) if only_active and "active" in one else None
        model = zoo.load_model(name)
        d = latent_movement(encode(model, x1), encode(model, x2), active=act)
        imp = one["dci_importance"].sel(factor=factor_names).transpose("latent", "factor").values if "dci_importance" in one else None
        out[name] = {"movement": d,
                     "drift": fixed_code_drift(d, imp, fixed) if imp is not None else float("nan"),
                     "concentration": movement_concentration(d, int((~fixed).sum()))}
    return out


def _cell(v) -> dict:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"n": 0}
    _, lo, hi = bootstrap_ci(v)
    return {"n": int(len(v)), "mean": round(float(v.mean()), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "values": v.round(4).tolist()}


def make(zoo, out) -> dict:
    from varstruct.models.load import dataset_from_config
    from varstruct.plots import latent_traversals, plot_traversals
    from varstruct.study.contrasts import contrast, with_holm

    study = zoo.select("longitudinal", method=["ada_gvae", "beta_vae"])
    arm = arms(study)
    conv = values(study, "converged") == 1
    keep = arm != ""
    if not keep.any():
        raise Missing("an Ada-GVAE or beta-VAE run in the longitudinal group")
    study_c = study.isel(model=np.flatnonzero(keep))
    arm_c = arm[keep]
    names = study_c["model"].values.astype(str)
    restricted = [n for n, a in zip(names, arm_c) if a == "restricted"]
    cfg = zoo.config(sorted(restricted)[0] if restricted else sorted(names)[0])
    changeable = (cfg.get("hparams") or {}).get("changeable") or DEFAULT_CHANGEABLE
    if isinstance(changeable, str):
        changeable = json.loads(changeable)
    ds = dataset_from_config(cfg)
    factor_names = [f.name for f in ds.factors]  # the study's factor axis is the union over its datasets
    fixed = np.array([f not in changeable for f in factor_names])
    x1, x2 = pairs(ds, changeable)
    pm = per_model(zoo, study_c, names, x1, x2, factor_names, fixed)

    # the untrained network: the floor of every panel (same pairs, same statistics)
    floor = {}
    try:
        b = zoo.select("dsprites_baselines", dataset=ds.name)
        b = b.isel(model=np.flatnonzero(b["baseline"].values.astype(str) == "untrained"))
        if b.sizes["model"]:
            with_w = [n for n in b["model"].values.astype(str) if zoo.run(n).weights_path.is_file()]
            bm = per_model(zoo, b, with_w, x1, x2, factor_names, fixed, only_active=False)
            floor = {"drift": [bm[n]["drift"] for n in with_w],
                     "mig": values(b, "mig").tolist(), "dci_disentanglement": values(b, "dci_disentanglement").tolist()}
    except Missing:
        pass

    score = {"drift": np.array([pm[n]["drift"] for n in names]),
             "concentration": np.array([pm[n]["concentration"] for n in names]),
             "mig": values(study_c, "mig"), "dci_disentanglement": values(study_c, "dci_disentanglement")}
    present = [a for a, _, _ in ARMS if (arm_c == a).any()]

    fig = new_figure(figsize=(13.0, 10.5))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 0.85])
    t_axes = top.subplots(1, len(ARMS))
    kl_all = values(study_c, "latent_kl") if "latent_kl" in study_c else None
    for ax, (a, label, _) in zip(t_axes, ARMS):
        m = sorted(n for n, x in zip(names, arm_c) if x == a)
        if not m:
            ax.set_axis_off()
            ax.set_title(f"{label.replace(chr(10), ' ')}: no run yet", fontsize=9)
            continue
        k = study_c["latent_kl"].sel(model=m[0]).values if kl_all is not None else None
        lat = np.argsort(-np.nan_to_num(k, nan=-1))[:N_LATENTS] if k is not None else range(N_LATENTS)
        plot_traversals(latent_traversals(zoo.load_model(m[0]), ds, n_values=7, latents=sorted(int(v) for v in lat)), ax=ax)
        if k is not None:
            ax.set_yticks(ax.get_yticks(), [f"{t.get_text()} KL {k[int(t.get_text()[1:])]:.2f}"
                                            for t in ax.get_yticklabels()], fontsize=7)
        ax.set_xlabel("latent value, −2.5 … 2.5", fontsize=7)
        ax.set_title(f"{label.replace(chr(10), ' ')} ({m[0].split('/')[-1]}): traversals, {N_LATENTS} latents of largest KL",
                     fontsize=8)
    b_axes = bottom.subplots(1, 1 + len(SCORES), width_ratios=[1.3] + [1.0] * len(SCORES))
    ax = b_axes[0]
    for a, label, colour in ARMS:
        rows = [np.sort(pm[n]["movement"][np.isfinite(pm[n]["movement"])])[::-1] for n, x in zip(names, arm_c) if x == a]
        if not rows:
            continue
        L = max(len(r) for r in rows)
        padded = np.array([np.pad(r, (0, L - len(r)), constant_values=np.nan) for r in rows])
        for r in padded:
            ax.plot(np.arange(1, L + 1), r, color=colour, lw=0.6, alpha=0.5)
        ax.plot(np.arange(1, L + 1), np.nanmean(padded, 0), color=colour, lw=2.2, label=label.replace("\n", " "))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("active latents, by movement (rank)")
    ax.set_ylabel("|Δμ| / sd between the views")
    ax.set_title(f"movement of each latent, {N_PAIRS} pairs\n(only {', '.join(changeable)} change)", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    for ax, (s, label) in zip(b_axes[1:], SCORES):
        for x, (a, _, colour) in enumerate(ARMS):
            v = score[s][arm_c == a]
            v = v[np.isfinite(v)]
            if len(v):
                ax.scatter(np.full(len(v), x) + np.linspace(-0.12, 0.12, len(v)), v, s=18, color=colour, zorder=3)
                ax.hlines(v.mean(), x - 0.25, x + 0.25, color=colour, lw=2)
        f = np.asarray(floor.get(s, []), dtype=float)
        f = f[np.isfinite(f)]
        if len(f):
            ax.axhspan(f.min(), f.max() if f.max() > f.min() else f.min() + 0.005, color="0.85", zorder=0,
                       label=f"untrained network (n={len(f)})")
            ax.legend(fontsize=6, loc="upper right", frameon=False)
        ax.set_xticks(range(len(ARMS)), [lab for _, lab, _ in ARMS], fontsize=7)
        ax.set_ylim(0, 1.2 if s == "drift" else 1.0)
        ax.set_ylabel(label.replace("\n", " "), fontsize=8)
        ax.set_title(label, fontsize=8)
    fig.suptitle(f"Longitudinal pairs on {ds.name}, a proxy (not MRI data): only {', '.join(changeable)} may change "
                 f"between the views; dots = seeds, bar = mean", fontsize=10)
    save(fig, out, "longitudinal_pairs")

    nums = {"changeable": list(changeable), "fixed": [f for f, x in zip(factor_names, fixed) if x],
            "n_pairs": N_PAIRS, "arms": {}, "contrasts": {}, "untrained": {}}
    for a, label, _ in ARMS:
        on = arm == a
        m = arm_c == a
        ts = values(study, "trained_steps")[on]
        per_step = [int(values(study, "batch_size")[i]) * (2 if a != "beta" else 1) for i in np.flatnonzero(on)]
        nums["arms"][a] = {"label": label.replace("\n", " "), "runs": int(on.sum()), "converged": int((on & conv).sum()),
                           "trained_steps": ts[np.isfinite(ts)].astype(int).tolist(),
                           "images_per_step": sorted(set(per_step)),
                           "active_latents": active_latents(study_c)[m].astype(int).tolist(),
                           **{s: _cell(score[s][m]) for s in ("drift", "concentration", "mig", "dci_disentanglement")}}
    # the planned contrasts; per measure, the two are one family for Holm's adjustment (p_holm).
    # The primary outcome is the drift (the hypothesis: pairs separate the fixed factors' code)
    tests = {f"{a} - {b}": {s: contrast(score[s][arm_c == a], score[s][arm_c == b])
                            for s in ("drift", "mig", "dci_disentanglement")}
             for a, b in CONTRASTS if a in present and b in present}
    for s in ("drift", "mig", "dci_disentanglement"):
        for c, res in with_holm({c: t[s] for c, t in tests.items()}).items():
            tests[c][s] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
    nums["contrasts"] = tests
    for s, v in floor.items():
        nums["untrained"][s] = _cell(v)
    return nums


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
