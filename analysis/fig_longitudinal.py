"""Ada-GVAE on longitudinal pairs, next to a β-VAE: latent traversals of both models and, for a
few pairs of views that differ only in the longitudinal factors, the images, their difference,
each model's reconstruction difference and how much each latent moves between the two views.

Data: the zoo's group ``longitudinal`` (dSprites; an Ada-GVAE with k = 1 trained on pairs whose
changeable factors are posX, posY and scale, the ``changeable`` hyper-parameter, shape and
orientation always shared; a β-VAE on the same images without pairs), loaded with their weights
(``varstruct.load_model``). Pairs: drawn with ``ds.sample_pairs(k=1, changeable=...)`` (seed 0) with
the Ada-GVAE's changeable factors (posX, posY, scale if its config names none). Traversals
(``varstruct.plots.latent_traversals``): the encoder mean of one image (seed 0) with one latent
set to 7 values in [−2.5, 2.5], the 6 latents of largest mean KL (``latent_kl``), decoded.
|Δμ|: |μ_l(x2) − μ_l(x1)| divided by the latent's std over the first images of 500 such pairs,
per latent, for the pair shown (bars) and its mean over the 500 pairs (black ticks); Ada-GVAE is expected to move only a few latents (those of the
changing factors), the β-VAE possibly more.
"""
from __future__ import annotations

import numpy as np

from ._common import Missing, new_figure, save, values

N_PAIRS_SHOWN = 3
N_PAIRS_STAT = 500
N_LATENTS = 6
DEFAULT_CHANGEABLE = ["posX", "posY", "scale"]


def pick(zoo):
    """(ada_gvae model name, beta_vae model name) of the longitudinal group."""
    try:
        s = zoo.select("longitudinal", method=["ada_gvae", "beta_vae"])
    except Missing:
        s = zoo.select(None, dataset=["dsprites", "color_dsprites", "noisy_dsprites"], method="ada_gvae")
    names = {}
    for meth in ("ada_gvae", "beta_vae"):
        m = s["model"].values[s["method"].values == meth]
        if len(m) == 0:
            raise Missing(f"a {meth} run in the longitudinal group")
        names[meth] = str(sorted(m)[0])
    return names["ada_gvae"], names["beta_vae"], s


def encode(model, images):
    import torch

    from varstruct.tensors import to_torch

    with torch.no_grad():
        return model.encode(to_torch(images))[0].double().numpy()


def reconstruct(model, images):
    import torch

    from varstruct.tensors import to_numpy, to_torch

    with torch.no_grad():
        x = model.decode(model.encode(to_torch(images))[0])
        if model.config.get("recon", "bernoulli") == "bernoulli":
            x = torch.sigmoid(x)
    return to_numpy(x)


def gray(img):
    return img.mean(-1) if img.shape[-1] > 1 else img[..., 0]


def make(zoo, out) -> dict:
    from varstruct.plots import latent_traversals, plot_traversals

    ada_name, beta_name, study = pick(zoo)
    models = {"Ada-GVAE": zoo.load_model(ada_name), "β-VAE": zoo.load_model(beta_name)}
    kl = {k: values(study.sel(model=n), "latent_kl") if "latent_kl" in study else None
          for k, n in (("Ada-GVAE", ada_name), ("β-VAE", beta_name))}
    cfg = zoo.config(ada_name)
    changeable = (cfg.get("hparams") or {}).get("changeable") or DEFAULT_CHANGEABLE
    from varstruct.models.load import dataset_from_config

    ds = dataset_from_config(cfg)
    rng = np.random.default_rng(0)
    i1, i2, mask = ds.sample_pairs(N_PAIRS_STAT, rng, k=1, changeable=changeable, return_mask=True)
    x1, x2 = ds.render(i1, rng=1), ds.render(i2, rng=1)
    dmu, dmu_pair = {}, {}
    for name, model in models.items():
        mu1, mu2 = encode(model, x1), encode(model, x2)
        d = np.abs(mu2 - mu1) / np.maximum(mu1.std(0), 1e-8)
        dmu[name], dmu_pair[name] = d.mean(0), d[:N_PAIRS_SHOWN]

    fig = new_figure(figsize=(13.0, 12.0))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
    axes = top.subplots(1, 2)
    for ax, (name, model) in zip(axes, models.items()):
        k = kl[name]
        lat = np.argsort(-np.nan_to_num(k, nan=-1))[:N_LATENTS] if k is not None else range(N_LATENTS)
        plot_traversals(latent_traversals(model, ds, n_values=7, latents=sorted(int(v) for v in lat)), ax=ax)
        if k is not None:
            ax.set_yticks(ax.get_yticks(), [f"{t.get_text()} KL {k[int(t.get_text()[1:])]:.2f}"
                                            for t in ax.get_yticklabels()], fontsize=7)
        ax.set_title(f"{name} latent traversals ({N_LATENTS} latents of largest KL)", fontsize=9)
    grid = bottom.subplots(N_PAIRS_SHOWN, 7, width_ratios=[1, 1, 1, 1, 1.6, 1, 1.6])
    rec = {name: (reconstruct(m, x1[:N_PAIRS_SHOWN]), reconstruct(m, x2[:N_PAIRS_SHOWN])) for name, m in models.items()}
    factor_names = [f.name for f in ds.factors]
    # one y-scale for every |Δμ| panel (compared panels share it): the largest bar or mean over both models
    ymax = 1.05 * max(max(float(np.max(dmu_pair[n][:N_PAIRS_SHOWN])), float(np.max(dmu[n]))) for n in models)
    for r in range(N_PAIRS_SHOWN):
        changed = ", ".join(n for n, c in zip(factor_names, mask[r]) if c)
        diff = gray(x2[r]) - gray(x1[r])
        cells = [(gray(x1[r]), "view 1", "gray", (0, 1)), (gray(x2[r]), f"view 2 ({changed} changed)", "gray", (0, 1)),
                 (diff, "view 2 − view 1", "RdBu_r", (-1, 1))]
        for name in models:
            a, b = rec[name]
            cells.append((gray(b[r]) - gray(a[r]), f"{name}: recon 2 − recon 1", "RdBu_r", (-1, 1)))
            cells.append((name, None, None, None))
        for c, (img, title, cmap, lim) in enumerate(cells):
            ax = grid[r, c]
            if isinstance(img, str):
                L = len(dmu[img])
                ax.bar(range(L), dmu_pair[img][r], color="C0" if img == "Ada-GVAE" else "C1", label="this pair")
                ax.plot(range(L), dmu[img], "k_", ms=8, label=f"mean, {N_PAIRS_STAT} pairs")
                ax.set_xticks(range(L), [f"z{i}" for i in range(L)], fontsize=6)
                ax.tick_params(labelsize=6)
                ax.set_title(f"{img}: |Δμ| / std per latent", fontsize=7)
                ax.set_ylim(0, ymax)
                ax.set_xlabel("latent", fontsize=6)
                ax.set_ylabel("|Δμ| / std", fontsize=6)
                if r == 0:
                    ax.legend(fontsize=6, frameon=False)
                continue
            ax.imshow(img, cmap=cmap, vmin=lim[0], vmax=lim[1])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=7)
    fig.suptitle(f"Longitudinal pairs on {ds.name}, a proxy (not MRI data): only {', '.join(changeable)} may change "
                 f"between views (Ada-GVAE k = 1 vs β-VAE)", fontsize=10)
    save(fig, out, "longitudinal_pairs")

    def concentration(v):
        v = np.sort(v)[::-1]
        return float(v[:len(changeable)].sum() / v.sum()) if v.sum() > 0 else float("nan")

    return {"ada_gvae": ada_name, "beta_vae": beta_name, "changeable": changeable,
            "steps": int(cfg.get("steps", 0)),
            "mean_abs_dmu_over_std": {k: v.round(3).tolist() for k, v in dmu.items()},
            "share_of_dmu_in_top_n_changeable_latents": {k: round(concentration(v), 3) for k, v in dmu.items()},
            "scores": {name: {s: float(values(study.sel(model=[n]), s)[0]) for s in
                              ("mig", "active_mig", "dci_disentanglement", "modularity")}
                       for name, n in (("Ada-GVAE", ada_name), ("β-VAE", beta_name))}}


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
