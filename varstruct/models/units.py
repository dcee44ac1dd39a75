"""Live and dead units of a network, and how sparse its channel masks are among live units.

A *unit* is an output feature of a dense layer or an output channel of a (transposed)
convolution. A unit followed by a ReLU is **dead** on a sample of images when its pre-activation
is <= 0 for every image (and every position): it outputs 0 everywhere, passes no gradient to its
weights, and an L1 penalty on its mask row drives that row to 0 without removing anything the
network uses. Units not followed by a ReLU (the encoder heads, the decoder's output layer) are
live by definition. The encoder sees the images; the decoder sees the encoder means of the same
images (the codes it reconstructs from at evaluation).

An input feature of a layer is **live** when it is nonzero on some image (and position): a
pixel, a latent, or the output of a live unit of the previous layer (a dead unit feeds exactly
0). Mask entry M[o, i] is a **live connection** when output unit o and input feature i are both
live; it is **pruned** when |M[o, i]| < 1e-3 (:data:`varstruct.models.masked.SPARSITY_THRESHOLD`,
the threshold of ``model.sparsity()``, on the deterministic eval-mode mask).

    dead_share    = Σ dead units / Σ units followed by a ReLU
    live_sparsity = Σ pruned live connections / Σ live connections
    sparsity      = Σ pruned entries / Σ mask entries                 (= model.sparsity())

``live_sparsity`` is the mask sparsity that removes capacity the network has; ``sparsity``
also counts masks of dead units and of connections from dead inputs, which the penalty zeroes
for free. A unit is **fully masked** when its whole mask row is pruned.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .layers import Linear, SameConv2d, SameConvTranspose2d
from .masked import SPARSITY_THRESHOLD, MaskedMixin

_WEIGHTED = (Linear, SameConv2d, SameConvTranspose2d, nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
PER_LAYER = ("units", "dead_units", "relu", "mask_entries", "pruned_entries", "live_connections",
             "pruned_live_connections", "fully_masked_units", "fully_masked_dead_units")


def _followed_by_relu(model: nn.Module) -> set[int]:
    """ids of the weighted layers that a ReLU follows in their nn.Sequential."""
    out = set()
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            mods = list(seq)
            out.update(id(a) for a, b in zip(mods, mods[1:]) if isinstance(b, nn.ReLU))
    return out


def _nonzero_features(t: torch.Tensor) -> torch.Tensor:
    """[B, F, ...] -> bool [F]: feature/channel nonzero on some sample and position."""
    return (t != 0).transpose(0, 1).reshape(t.shape[1], -1).any(dim=1)


@torch.no_grad()
def unit_activity(model, images: np.ndarray, batch_size: int = 512):
    """Dead units and live-connection mask sparsity of ``model`` on ``images`` [N, H, W, C].

    Returns an xr.Dataset with dim ``layer`` (the weighted layers' module names, encoder first)
    holding the counts of :data:`PER_LAYER` (mask counts 0 for an unmasked layer; ``relu``:
    whether a ReLU follows the layer, the only layers whose units can be dead), and the scalars
    ``dead_share``, ``live_sparsity`` and ``sparsity`` (NaN without masks) of the module
    docstring, with attrs ``n_images`` and ``threshold``. The model is run in eval mode and left
    in the mode it was in. Raises ValueError for an empty image set.
    """
    import xarray as xr

    from ..tensors import images_to_model

    images = np.asarray(images)
    if len(images) == 0:
        raise ValueError("unit_activity needs at least one image")
    relu = _followed_by_relu(model)
    names = {id(m): n for n, m in model.named_modules()}
    layers = [m for m in model.modules() if isinstance(m, _WEIGHTED)]
    live_in = {id(m): None for m in layers}
    live_out = {id(m): None for m in layers}

    def hook(mod, args, out):
        i = id(mod)
        x_live = _nonzero_features(args[0])
        o_live = (out > 0).transpose(0, 1).reshape(out.shape[1], -1).any(dim=1) if i in relu \
            else torch.ones(out.shape[1], dtype=torch.bool, device=out.device)
        live_in[i] = x_live if live_in[i] is None else live_in[i] | x_live
        live_out[i] = o_live if live_out[i] is None else live_out[i] | o_live

    handles = [m.register_forward_hook(hook) for m in layers]
    was_training = model.training
    model.eval()
    try:
        for s in range(0, len(images), int(batch_size)):
            mean, _ = model.encode(images_to_model(model, images[s:s + int(batch_size)]))
            model.decode(mean)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    rows = {k: [] for k in PER_LAYER}
    used = [m for m in layers if live_out[id(m)] is not None]
    for m in used:
        o, i = live_out[id(m)].cpu(), live_in[id(m)].cpu()
        rows["units"].append(len(o))
        rows["relu"].append(id(m) in relu)
        rows["dead_units"].append(int((~o).sum()) if id(m) in relu else 0)
        if isinstance(m, MaskedMixin):
            pruned = (m.mask_eval().abs() < SPARSITY_THRESHOLD).cpu()  # [out, in]
            live = o[:, None] & i[None, :]
            full = pruned.all(dim=1)
            vals = (pruned.numel(), int(pruned.sum()), int(live.sum()), int((pruned & live).sum()),
                    int(full.sum()), int((full & ~o).sum()))
        else:
            vals = (0,) * 6
        for k, v in zip(PER_LAYER[3:], vals):
            rows[k].append(v)
    ds = xr.Dataset({k: ("layer", np.asarray(v, dtype=bool if k == "relu" else np.int64)) for k, v in rows.items()},
                    coords={"layer": [names[id(m)] for m in used]})
    n_relu = int(ds["units"].where(ds["relu"], 0).sum())
    entries = int(ds["mask_entries"].sum())
    ds["dead_share"] = int(ds["dead_units"].sum()) / n_relu if n_relu else np.nan
    ds["live_sparsity"] = (int(ds["pruned_live_connections"].sum()) / int(ds["live_connections"].sum())
                           if int(ds["live_connections"].sum()) else np.nan)
    ds["sparsity"] = int(ds["pruned_entries"].sum()) / entries if entries else np.nan
    ds.attrs.update(n_images=int(len(images)), threshold=SPARSITY_THRESHOLD)
    return ds


# variable -> (long_name, units, docs/measures.md anchor): what the sweep and `varstruct measure
# model` add to measures.nc (:func:`add_unit_activity`)
UNIT_VARIABLES = {
    "dead_unit_share": ("share of ReLU units that never fire on the images", "1", "unit-activity"),
    "mask_sparsity": ("share of channel-mask entries with |M| < 1e-3 (NaN: no masks)", "1", "unit-activity"),
    "mask_live_sparsity": ("share of live connections whose mask entry is below 1e-3 (NaN: no masks)", "1",
                           "unit-activity"),
}
UNIT_IMAGES = 2000


def add_unit_activity(measures, model, ds, seed: int = 0, n_images: int = UNIT_IMAGES):
    """``measures`` (a model-measures Dataset) with the scalars of :data:`UNIT_VARIABLES` from
    :func:`unit_activity` on ``n_images`` images of ``ds`` (factors and nuisances drawn from
    ``numpy.random.default_rng([seed, 3])``), described as the other measures and recorded in
    the attr ``unit_activity``."""
    from ..schema import describe

    rng = np.random.default_rng([int(seed), 3])
    r = unit_activity(model, ds.render(ds.sample_factors(int(n_images), rng), rng=rng))
    out = measures.assign(dead_unit_share=float(r["dead_share"]), mask_sparsity=float(r["sparsity"]),
                          mask_live_sparsity=float(r["live_sparsity"]))
    describe(out, UNIT_VARIABLES)
    out.attrs["unit_activity"] = f"{int(n_images)} images, rng seed [{int(seed)}, 3]"
    return out
