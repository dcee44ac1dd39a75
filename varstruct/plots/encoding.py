"""Encoding map: which latent encodes a factor at each anchor, over two factors of the grid."""
from __future__ import annotations

import numpy as np

from ._axes import new_axes


def plot_encoding_map(measures, factor: str, x: str | None = None, y: str | None = None, ax=None,
                      s: float = 40.0):
    """Scatter of the anchors of a model-measures Dataset (:func:`varstruct.measure_model`) at
    their values of factors ``x`` and ``y`` (default: the first two factors), coloured by the
    latent that encodes ``factor`` there (``encoding_dim``; grey crosses where undefined, −1).
    Returns the Axes."""
    names = [str(f) for f in measures["factor"].values]
    x = x or names[0]
    y = y or (names[1] if len(names) > 1 else names[0])
    c = measures["anchor_factors"].transpose("anchor", "factor").values
    enc = measures["encoding_dim"].sel(factor=factor).values.astype(int)
    ax = new_axes(ax, figsize=(3.5, 3.2))
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10"]
    cx, cy = c[:, names.index(x)], c[:, names.index(y)]
    for lat in np.unique(enc):
        m = enc == lat
        if lat < 0:
            ax.scatter(cx[m], cy[m], marker="x", color="gray", s=s * 0.6, label="undefined")
        else:
            ax.scatter(cx[m], cy[m], color=cmap(lat % 10), s=s, label=f"z{lat}", edgecolors="black",
                       linewidths=0.3)
    ax.set_xlabel(f"{x} (index)")
    ax.set_ylabel(f"{y} (index)")
    ax.set_title(f"latent encoding {factor}", fontsize=9)
    ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax
