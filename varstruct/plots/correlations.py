"""Correlation heatmap and scatter-with-fit of a study."""
from __future__ import annotations

import numpy as np

from ._axes import new_axes


def plot_correlation_heatmap(corr, ax=None, value: str = "r", group=None, annotate: bool = True,
                             cmap: str = "RdBu_r", q_mark: float = 0.05):
    """Heatmap of ``corr[value]`` (dims x, y; one ``group`` if ``corr`` has a group dim), y rows
    by x columns, colour limits ±1 for r. Each cell shows the value and, below it, the number
    of units it was computed on (``n_units``); cells with q < ``q_mark`` get a '*'. Returns the Axes."""
    if "group" in corr.dims:
        corr = corr.sel(group=corr["group"].values[0] if group is None else group)
    da = corr[value].transpose("y", "x")
    data = np.asarray(da.values, dtype=float)
    xs, ys = [str(v) for v in corr["x"].values], [str(v) for v in corr["y"].values]
    ax = new_axes(ax, figsize=(1.2 + 0.55 * len(xs), 1.2 + 0.4 * len(ys)))
    lim = 1.0 if value in ("r", "ci_low", "ci_high") else np.nanmax(np.abs(data)) if np.isfinite(data).any() else 1.0
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=-lim if value != "p" else 0, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(xs)), xs, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(ys)), ys, fontsize=8)
    if annotate and data.size <= 400:
        q = corr["q"].transpose("y", "x").values if "q" in corr else np.full(data.shape, np.nan)
        nu = corr["n_units"].transpose("y", "x").values if "n_units" in corr else None
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                star = "*" if np.isfinite(q[i, j]) and q[i, j] < q_mark else ""
                units = f"\n({int(nu[i, j])})" if nu is not None else ""
                ax.text(j, i, f"{v:.2f}{star}{units}", ha="center", va="center", fontsize=6,
                        color="white" if abs(v) > 0.6 * lim else "black")
    ax.figure.colorbar(im, ax=ax, label=value)
    title = f"{corr.attrs.get('method', '')} {value} ({corr.attrs.get('level', '')} level)".strip()
    if annotate and "n_units" in corr and data.size <= 400:
        title += "; (n) = units"
    ax.set_title(title + (f", {corr.attrs.get('by')} = {group}" if group is not None else ""), fontsize=9)
    return ax


def plot_scatter(collected, x: str, y: str, level: str = "model", ax=None, fit: bool = True, corr=None):
    """Scatter of y against x over the points the pair is tested on (its units, see
    :func:`varstruct.correlate`), coloured by dataset, with the least-squares line; ``corr`` (a
    correlations Dataset) adds its r, p, q, unit and n_units to the title. Returns the Axes."""
    from ..study.correlate import points

    pts = points(collected, x, y, level)
    pts = pts[np.isfinite(pts["x"]) & np.isfinite(pts["y"])]
    ax = new_axes(ax)
    import matplotlib as mpl

    colours = mpl.colormaps["tab10"]
    for k, (name, grp) in enumerate(pts.groupby("dataset", sort=True)):
        ax.scatter(grp["x"], grp["y"], s=22, alpha=0.8, color=colours(k % 10), label=name, edgecolors="none")
    if fit and len(pts) >= 2 and np.ptp(pts["x"].values) > 0:
        slope, icpt = np.polyfit(pts["x"].values, pts["y"].values, 1)
        xx = np.linspace(pts["x"].min(), pts["x"].max(), 50)
        ax.plot(xx, slope * xx + icpt, color="black", lw=1, label="least-squares fit")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    title = f"{y} vs {x}"
    if corr is not None:
        c = corr.sel(x=x, y=y)
        if "group" in c.dims:
            c = c.isel(group=0)
        title += (f"\nr={float(c['r']):.2f} p={float(c['p']):.3g} q={float(c['q']):.3g} "
                  f"units={int(c['n_units'])} ({c['unit'].values}), models={int(c['n_models'])}")
    ax.set_title(title, fontsize=9)
    if len(pts):
        ax.legend(fontsize=7, frameon=False)
    return ax
