"""Per-model values of a collected study grouped by one coordinate, split by another."""
from __future__ import annotations

import numpy as np

from ._axes import new_axes


def group_summary(values, n_resamples: int = 2000, seed: int = 0):
    """(mean, ci_low, ci_high) of the finite values: the mean and its 95% percentile bootstrap
    interval (resampling the values with replacement, seeded). NaNs if there is none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    if len(v) == 1:
        return float(v[0]), float(v[0]), float(v[0])
    boots = v[np.random.default_rng(seed).integers(0, len(v), (n_resamples, len(v)))].mean(1)
    return float(v.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def plot_groups(study, var: str, x: str, hue: str | None = None, order=None, hue_order=None, ax=None,
                labels=None, seed: int = 0):
    """Strip plot of study[var] (one value per model) at each value of the model coordinate ``x``
    (in ``order``), split by ``hue`` (e.g. method): each model a dot, each group's mean with its
    95% bootstrap CI over the models (seeds) as an error bar. ``labels`` maps an x value to its
    tick label. Returns the Axes."""
    ax = new_axes(ax)
    y = np.asarray(study[var].values, dtype=float)
    xv = np.asarray(study[x].values).astype(str)
    hv = np.asarray(study[hue].values).astype(str) if hue else np.full(len(xv), "")
    order = [str(o) for o in (order if order is not None else sorted(set(xv)))]
    hue_order = [str(h) for h in (hue_order if hue_order is not None else sorted(set(hv)))]
    w = 0.7 / max(len(hue_order), 1)
    rng = np.random.default_rng(seed)
    for k, h in enumerate(hue_order):
        means = []
        for i, g in enumerate(order):
            m = (xv == g) & (hv == h)
            pos = i + (k - (len(hue_order) - 1) / 2) * w
            ax.scatter(pos + rng.uniform(-w / 4, w / 4, m.sum()), y[m], s=12, alpha=0.5, color=f"C{k}",
                       edgecolors="none")
            means.append((pos, *group_summary(y[m], seed=seed + i)))
        p, est, lo, hi = (np.array(c) for c in zip(*means)) if means else ([],) * 4
        ax.errorbar(p, est, yerr=[est - lo, hi - est], fmt="D", color=f"C{k}", capsize=3, ms=5,
                    label=h or None, mec="black", mew=0.5)
    ax.set_xticks(range(len(order)), [(labels or {}).get(g, g) for g in order])
    ax.set_ylabel(var)
    if hue:
        ax.legend(fontsize=7, frameon=False)
    return ax
