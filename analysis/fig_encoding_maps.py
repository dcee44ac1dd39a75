"""Encoding maps: which latent encodes each factor at each point of the factor grid, for one seed
of each method under each profile (none / noflip / flip), and where the switches lie over all seeds.

Data: the controlled profiles (group ``toy_context``, or the older ``toy_profiles``); for each
(method, profile) the run with the smallest seed, its per-anchor ``encoding_dim`` from
measures.nc (argmax over the active latents of the traversal response: the latent whose mean
moves most, relative to its spread, along the factor's traversal through that anchor;
docs/measures.md#encoding_dim), drawn at the anchor's grid position
(``varstruct.plots.plot_encoding_map``): over (C, B) for toy_context, whose context factor C sets
B's amplitude, and over (A, B) for toy_blobs. A single colour per panel is a globally consistent
encoding; in toy_context the ``flip`` profile inverts the local variance order of A and B along C,
so a region-dependent encoding as H2 predicts switches along C.

Numbers (numbers.json ``switches``), over every seed of each (method, profile): for each factor,
the share of seeds whose encoding switches at all (encoding_inconsistency > 0), and per factor
axis k the share of seeds whose switches depend on the position along k (permutation p < 0.05 of
the uncertainty coefficient U_k = I(encoding; position bin along k) / H(encoding),
``varstruct.measures.encoding.encoding_dependence``, 4 bins, 999 permutations) with the mean U_k
over the switching seeds. Switches along the factor's own axis or along C on ``noflip`` (whose
order never inverts) are the control rate.
"""
from __future__ import annotations

import numpy as np

from . import _profiles
from ._common import new_figure, save, values

METHODS = ("beta_vae", "ada_gvae", "ordered_ae")
ALPHA = 0.05


def _sizes(zoo, name: str) -> list[int]:
    import varstruct

    cfg = zoo.config(name)
    ds = varstruct.datasets.get(cfg["dataset"], **cfg.get("dataset_params", {}))
    return [int(f.size) for f in ds.factors]


def switches(zoo, sub, factors) -> dict:
    """The switch statistics of the module docstring for the runs in ``sub``."""
    from varstruct.measures.encoding import encoding_dependence

    per = {f: {"n_seeds": 0, "switching": 0, **{f"along_{k}": 0 for k in factors},
               **{f"U_{k}": [] for k in factors}} for f in factors}
    for i, name in enumerate(sub["model"].values.astype(str)):
        meas = zoo.measures(name)
        sizes = _sizes(zoo, name)
        pos = meas["anchor_factors"].transpose("anchor", "factor").values
        for f in factors:
            dim = meas["encoding_dim"].sel(factor=f).values
            U, p = encoding_dependence(dim, pos, sizes, seed=i)
            d = per[f]
            d["n_seeds"] += 1
            if np.isfinite(U).any():
                d["switching"] += 1
                for k, u, pk in zip(factors, U, p):
                    d[f"U_{k}"].append(float(u))
                    d[f"along_{k}"] += int(pk < ALPHA)
    for f, d in per.items():
        n, s = d["n_seeds"], d["switching"]
        d["switching_share"] = round(s / n, 3) if n else None
        for k in factors:
            d[f"along_{k}_share"] = round(d[f"along_{k}"] / n, 3) if n else None
            u = d.pop(f"U_{k}")
            d[f"U_{k}_mean"] = round(float(np.mean(u)), 3) if u else None
    return per


def make(zoo, out) -> dict:
    from varstruct.plots import plot_encoding_map

    study = _profiles.select(zoo, METHODS)
    methods = _profiles.present(study, METHODS)
    profiles = [p for p in _profiles.PROFILES if (study["data_profile"].values == p).any()]
    first = zoo.measures(str(study["model"].values[0]))
    factors = [str(f) for f in first["factor"].values]
    x, y = ("C", "B") if {"B", "C"} <= set(factors) else (factors[0], factors[min(1, len(factors) - 1)])
    fig = new_figure(figsize=(3.3 * len(profiles) * len(factors), 3.0 * len(methods)))
    axes = np.atleast_2d(fig.subplots(len(methods), len(profiles) * len(factors)))
    res = {"axes": [x, y], "alpha": ALPHA, "maps": {}, "switches": {}}
    for i, meth in enumerate(methods):
        for j, prof in enumerate(profiles):
            m = (study["method"].values == meth) & (study["data_profile"].values == prof)
            if not m.any():
                for k in range(len(factors)):
                    axes[i, j * len(factors) + k].set_axis_off()
                continue
            sub = study.isel(model=np.flatnonzero(m))
            name = str(sub["model"].values[np.argmin(values(sub, "seed"))])
            meas = zoo.measures(name)
            inc = meas["encoding_inconsistency"]
            mean_inc = sub["encoding_inconsistency"].mean("model") if "encoding_inconsistency" in sub else None
            for k, f in enumerate(factors):
                ax = axes[i, j * len(factors) + k]
                plot_encoding_map(meas, f, x=x, y=y, ax=ax, s=12)
                txt = f"{meth}, {prof}: latent of {f}\ninconsistency {float(inc.sel(factor=f)):.2f}"
                if mean_inc is not None:
                    txt += f" (mean of {sub.sizes['model']} seeds {float(mean_inc.sel(factor=f)):.2f})"
                ax.set_title(txt, fontsize=7)
            res["maps"][f"{meth}/{prof}"] = {"model": name, "encoding_inconsistency": {
                f: float(inc.sel(factor=f)) for f in factors},
                "encoding_mode": {f: int(meas["encoding_mode"].sel(factor=f)) for f in factors}
                if "encoding_mode" in meas else None}
            res["switches"][f"{meth}/{prof}"] = switches(zoo, sub, factors)
    fig.suptitle(f"Encoding maps on {_profiles.dataset_name(study)}: the latent encoding each factor at each "
                 f"anchor (one seed per method and profile)", fontsize=10)
    save(fig, out, "encoding_maps")
    return res


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
