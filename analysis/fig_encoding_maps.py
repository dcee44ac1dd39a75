"""Encoding maps: which latent encodes each factor at each point of the toy_blobs factor grid,
for one seed of each method under each profile (none / noflip / flip).

Data: the zoo's group ``toy_profiles``; for each (method, profile) the run with the smallest seed,
its per-anchor ``encoding_dim`` from measures.nc (argmax over the active latents of the
traversal response: the latent whose mean moves most, relative to its spread, along the
factor's traversal through that anchor; docs/measures.md#encoding_dim), drawn at the anchor's
(A, B) grid position (``varstruct.plots.plot_encoding_map``). A single colour per panel is a
globally consistent encoding; a colour change along A (the axis along which the ``flip`` profile
inverts the local variance order) is the region-dependent encoding H2 predicts. Panel titles:
that run's encoding inconsistency of the factor, and the mean over all seeds of the setting.
"""
from __future__ import annotations

import numpy as np

from . import _profiles
from ._common import new_figure, save, values

METHODS = ("beta_vae", "ada_gvae", "ordered_ae")


def make(zoo, out) -> dict:
    from varstruct.plots import plot_encoding_map

    study = _profiles.select(zoo, METHODS)
    methods = [m for m in METHODS if (study["method"].values == m).any()]
    profiles = [p for p in _profiles.PROFILES if (study["data_profile"].values == p).any()]
    first = zoo.measures(str(study["model"].values[0]))
    factors = [str(f) for f in first["factor"].values]
    fig = new_figure(figsize=(3.3 * len(profiles) * len(factors), 3.0 * len(methods)))
    axes = np.atleast_2d(fig.subplots(len(methods), len(profiles) * len(factors)))
    res = {}
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
                plot_encoding_map(meas, f, ax=ax, s=25)
                txt = f"{meth}, {prof}: latent of {f}\ninconsistency {float(inc.sel(factor=f)):.2f}"
                if mean_inc is not None:
                    txt += f" (mean of {sub.sizes['model']} seeds {float(mean_inc.sel(factor=f)):.2f})"
                ax.set_title(txt, fontsize=7)
            res[f"{meth}/{prof}"] = {"model": name, "encoding_inconsistency": {
                f: float(inc.sel(factor=f)) for f in factors},
                "encoding_mode": {f: int(meas["encoding_mode"].sel(factor=f)) for f in factors}
                if "encoding_mode" in meas else None}
    fig.suptitle("Encoding maps on toy_blobs: the latent encoding each factor at each anchor (one seed per "
                 "method and profile)", fontsize=10)
    save(fig, out, "encoding_maps")
    return res


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
