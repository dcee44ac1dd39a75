"""Latent traversals of a model: decode z with one latent swept, the others at an encoded anchor."""
from __future__ import annotations

import numpy as np

from ._axes import new_axes


def latent_traversals(model, ds, n_values: int = 9, span: float = 2.5, seed: int = 0, latents=None):
    """xr.DataArray [latent, value, y, x, channel] of decoded images: the encoder mean of one
    seeded random image of ``ds``, with latent l replaced by n_values values in [−span, span]."""
    import torch
    import xarray as xr

    from ..tensors import to_numpy, to_torch

    rng = np.random.default_rng(seed)
    img = ds.render(ds.sample_factors(1, rng), rng=rng)
    with torch.no_grad():
        mu, _ = model.encode(to_torch(img))
        L = mu.shape[1]
        latents = list(range(L)) if latents is None else [int(v) for v in latents]
        values = torch.linspace(-span, span, n_values, dtype=mu.dtype)
        z = mu.repeat(len(latents) * n_values, 1).reshape(len(latents), n_values, L)
        for i, lat in enumerate(latents):
            z[i, :, lat] = values
        x = model.decode(z.reshape(-1, L))  # logits (bernoulli) or the mean (gaussian)
        if (getattr(model, "config", None) or {}).get("recon", "bernoulli") == "bernoulli":
            x = torch.sigmoid(x)
    imgs = to_numpy(x).reshape(len(latents), n_values, *img.shape[1:])
    return xr.DataArray(imgs, dims=("latent", "value", "y", "x", "channel"),
                        coords={"latent": latents, "value": values.numpy()}, name="traversal")


def plot_traversals(traversals, ax=None):
    """One mosaic image: a row per latent, a column per value. Returns the Axes."""
    t = traversals.transpose("latent", "value", "y", "x", "channel")
    a = np.clip(t.values, 0, 1)
    L, V, H, W, C = a.shape
    pad = 1
    canvas = np.ones((L * (H + pad) - pad, V * (W + pad) - pad, C))
    for i in range(L):
        for j in range(V):
            canvas[i * (H + pad):i * (H + pad) + H, j * (W + pad):j * (W + pad) + W] = a[i, j]
    ax = new_axes(ax, figsize=(0.5 + 0.6 * V, 0.3 + 0.6 * L))
    ax.imshow(canvas[..., 0] if C == 1 else canvas, cmap="gray" if C == 1 else None, vmin=0, vmax=1)
    ax.set_yticks([i * (H + pad) + H / 2 for i in range(L)], [f"z{int(v)}" for v in t["latent"].values])
    ax.set_xticks([j * (W + pad) + W / 2 for j in range(V)], [f"{float(v):.1f}" for v in t["value"].values],
                  fontsize=7)
    ax.set_title("latent traversals", fontsize=9)
    return ax
