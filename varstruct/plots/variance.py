"""Per-factor variance structure of a dataset: V over anchors, global variance, order inversions."""
from __future__ import annotations

import numpy as np

from ._axes import new_axes


def plot_variance_structure(measures, ax=None, log: bool = True):
    """Violins of the traversal variance V[a, j] over anchors per factor (a dataset-measures
    Dataset from :func:`varstruct.measure_dataset`), the global variance G[j] as a diamond, and
    per factor the factor discrepancy (mean fraction of anchors whose local order of V inverts
    the global order) written above it. Returns the Axes."""
    V = measures["traversal_variance"].transpose("anchor", "factor").values.astype(float)
    G = measures["global_variance"].values.astype(float)
    names = [str(f) for f in measures["factor"].values]
    ax = new_axes(ax, figsize=(1.5 + 0.9 * len(names), 3.5))
    floor = np.nanmin(V[V > 0]) if (V > 0).any() else 1.0
    data = [np.log10(np.maximum(V[:, j], floor)) if log else V[:, j] for j in range(len(names))]
    pos = np.arange(len(names))
    finite = [d[np.isfinite(d)] for d in data]
    keep = [j for j, d in enumerate(finite) if len(d) > 1 and np.ptp(d) > 0]
    if keep:
        ax.violinplot([finite[j] for j in keep], positions=pos[keep], showmedians=True, widths=0.8)
    for j, d in enumerate(finite):
        if j not in keep and len(d):
            ax.plot([j], [d[0]], "_", color="C0", ms=20)
    g = np.log10(np.maximum(G, floor)) if log else G
    ax.scatter(pos, g, marker="D", color="black", zorder=3, label="global variance G")
    if "factor_discrepancy" in measures:
        fd = measures["factor_discrepancy"].values.astype(float)
        top = max((np.nanmax(d) for d in finite if len(d)), default=0.0)
        for j, v in enumerate(fd):
            if np.isfinite(v):
                ax.text(j, top, f"inv {v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(pos, names, rotation=30 if len(names) > 4 else 0)
    ax.set_ylabel("log10 V (traversal variance)" if log else "V (traversal variance)")
    title = f"{measures.attrs.get('dataset', '')} variance structure"
    if "local_global_discrepancy" in measures:
        title += f" (order inversions {float(measures['local_global_discrepancy']):.2f})"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return ax


def plot_factor_bars(measures: dict, var: str, ax=None, ylabel=None):
    """Bars of a per-factor measure ``var`` (dim factor) for several datasets side by side:
    ``measures`` maps a label to a dataset-measures Dataset; one group of bars per dataset, one
    bar per factor, the factor names as tick labels and the dataset labels above the groups.
    A dataset without ``var`` leaves a gap. Returns the Axes."""
    ax = new_axes(ax, figsize=(2.0 + 0.35 * sum(m.sizes.get("factor", 0) for m in measures.values()), 3.0))
    x, ticks, labels = 0.0, [], []
    for k, (name, m) in enumerate(measures.items()):
        factors = [str(f) for f in m["factor"].values] if "factor" in m.dims else []
        vals = m[var].values.astype(float) if var in m else np.full(len(factors), np.nan)
        pos = x + np.arange(len(factors))
        ax.bar(pos, np.nan_to_num(vals, nan=0.0), width=0.8, color=f"C{k % 10}")
        for p, v in zip(pos, vals):
            if not np.isfinite(v):
                ax.text(p, 0, "n/a", ha="center", va="bottom", fontsize=5, rotation=90)
        ticks += list(pos)
        labels += factors
        if len(factors):
            ax.text(pos.mean(), 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=7, color=f"C{k % 10}")
        x += len(factors) + 1.0
    ax.set_xticks(ticks, labels, rotation=90, fontsize=6)
    ax.set_ylabel(ylabel or var, fontsize=8)
    ax.set_xlim(-1, x - 1)
    return ax
