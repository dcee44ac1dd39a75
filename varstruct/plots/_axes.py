"""A new Axes on a pyplot-free Figure (no global figure registry, no current-figure state)."""
from __future__ import annotations


def new_axes(ax=None, figsize=(5.0, 4.0)):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained").add_subplot()
