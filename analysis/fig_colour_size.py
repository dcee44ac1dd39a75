"""Colour × size on ``toy_square``: the local variance of each factor over the factor grid, and
where the local order of brightness ("colour") and size flips with the size and brightness of
the square (brightness and position never swap).

Data (computed directly with ``varstruct.measure_dataset``, no zoo): ``toy_square`` (a square of
side s ∈ {3..8} px at one of 20 columns with one of 8 brightnesses on a 32×32 canvas) measured at
2000 uniform anchors (seed 0). V[a, j] is the traversal variance of factor j at anchor a
(docs/measures.md#traversal_variance). Panels 1–3: the log ratio of two factors' V, averaged
over the anchors in each (size, brightness) cell (all positions pooled), for brightness/size
(the "colour × size" pair: brightness varies like s², size like b², so brightness varies more
for large dim squares and size more for small bright ones), position/size and
brightness/position; the black contour (ratio 1) is where the local order of the pair flips.
Panel 4: V of each factor against the size (mean over anchors, at the dimmest and the
brightest level).
"""
from __future__ import annotations

import numpy as np

from ._common import new_figure, save

N_ANCHORS = 2000


def cell_means(measures, fi: int, fj: int, var: str = "traversal_variance"):
    """Mean of measures[var][:, factor] over the anchors of each (value of fi, value of fj) cell:
    [n_factors, n_fi, n_fj] (NaN for an empty cell)."""
    c = measures["anchor_factors"].values
    V = measures[var].transpose("anchor", "factor").values
    ni, nj = int(c[:, fi].max()) + 1, int(c[:, fj].max()) + 1
    ni = max(ni, int(measures["factor_size"].values[fi])) if "factor_size" in measures.coords else ni
    nj = max(nj, int(measures["factor_size"].values[fj])) if "factor_size" in measures.coords else nj
    flat = c[:, fi] * nj + c[:, fj]
    count = np.bincount(flat, minlength=ni * nj).astype(float)
    out = np.stack([np.bincount(flat, weights=V[:, k], minlength=ni * nj) for k in range(V.shape[1])])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / count
    out[:, count == 0] = np.nan
    return out.reshape(V.shape[1], ni, nj)


def make(zoo, out, n_anchors: int = N_ANCHORS) -> dict:
    import varstruct

    ds = varstruct.datasets.get("toy_square")
    m = varstruct.measure_dataset(ds, n_anchors=n_anchors, seed=0, n_pca_anchors=1)
    names = [str(f) for f in m["factor"].values]
    S, X, B = names.index("size"), names.index("xpos"), names.index("brightness")
    cells = cell_means(m, S, B)  # [factor, size, brightness]
    sides, levels = ds.SIDES, ds.BRIGHTNESS
    pairs = ((B, S), (X, S), (B, X))
    ratios = [np.log10(cells[i] / cells[j]) for i, j in pairs]
    lim = max(np.nanmax(np.abs(r)) for r in ratios)

    fig = new_figure(figsize=(16.5, 3.8))
    axes = fig.subplots(1, 4)
    for ax, (i, j), r in zip(axes, pairs, ratios):
        im = ax.imshow(r.T, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        if np.nanmin(r) < 0 < np.nanmax(r):
            ax.contour(r.T, levels=[0.0], colors="black", linewidths=1.5)
        ax.set_xticks(range(len(sides)), [str(s) for s in sides])
        ax.set_yticks(range(len(levels)), [f"{b:.2f}" for b in levels], fontsize=7)
        ax.set_xlabel("size (side, px)")
        ax.set_ylabel("brightness")
        flip = "order flips on the black line" if np.nanmin(r) < 0 < np.nanmax(r) else "no flip"
        ax.set_title(f"log10 V_{names[i]} / V_{names[j]}\n({flip})", fontsize=9)
    fig.colorbar(im, ax=axes[2], label="log10 variance ratio (red: first factor larger)")
    ax2 = axes[3]
    for k, (j, name) in enumerate(((X, "xpos"), (B, "brightness"), (S, "size"))):
        for lvl, ls in ((0, "--"), (len(levels) - 1, "-")):
            ax2.plot(sides, cells[j][:, lvl], ls, marker="o", ms=3, color=f"C{k}",
                     label=f"V_{name} at brightness {levels[lvl]:.2f}")
    ax2.set_yscale("log")
    ax2.set_xlabel("size (side, px)")
    ax2.set_ylabel("V (traversal variance)")
    ax2.legend(fontsize=6.5, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax2.set_title("local variance against size", fontsize=9)
    fig.suptitle(f"Colour × size: local variance of each factor over the toy_square grid ({n_anchors} anchors, "
                 f"mean over positions)", fontsize=10)
    save(fig, out, "colour_size")

    log_ratio = ratios[0]
    oi = m["order_inversion"]
    return {"n_anchors": n_anchors,
            "share_cells_brightness_above_size": float(np.nanmean(ratios[0] > 0)),
            "share_cells_xpos_above_size": float(np.nanmean(ratios[1] > 0)),
            "share_cells_brightness_above_xpos": float(np.nanmean(ratios[2] > 0)),
            "order_inversion": {f"{a}-{b}": float(oi.sel(factor=a, factor2=b))
                                for a, b in (("brightness", "size"), ("xpos", "size"), ("brightness", "xpos"))},
            "variance_dependence_brightness_on_size": float(m["variance_dependence"].sel(factor="brightness",
                                                                                           factor2="size")),
            "variance_share": dict(zip(names, m["variance_share"].values.round(3).tolist())),
            "variance_cv": dict(zip(names, m["variance_cv"].values.round(3).tolist())),
            "local_global_discrepancy": float(m["local_global_discrepancy"]),
            "log10_Vbrightness_over_Vsize_smallest_brightest": float(log_ratio[0, -1]),
            "log10_Vbrightness_over_Vsize_largest_dimmest": float(log_ratio[-1, 0])}


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
