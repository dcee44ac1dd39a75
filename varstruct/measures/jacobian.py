"""Batched encoder/decoder evaluation and autograd Jacobians for the model measures.

Everything here works on any ``model`` exposing ``encode(x [B, C, H, W]) -> (mean [B, L],
logvar [B, L] or None)`` and ``decode(z [B, L]) -> logits [B, C, H, W]``, batch-wise. Inputs
are numpy arrays in the dataset layout; :func:`varstruct.tensors.images_to_model` converts them
and casts them to the dtype/device of the model's first floating parameter (float32 on the CPU
if none). Jacobians always run in the model's own precision (never bf16 autocast).

- :func:`encoder_jvp`: J_μ(x_a) · v_{a,k} by forward-mode ``torch.func.jvp``, vmapped over the
  K directions of each anchor (the primal forward pass runs once per anchor, the K tangents in
  one batched pass), chunked over anchors.
- :func:`decoder_cosines`: C = ĴᵀĴ with Ĵ = ∂f/∂z at z, restricted to the given latents and
  column-normalised, in forward mode (L is small, so forward mode is the cheap side): a vmap of
  jvp over the basis vectors, which is what ``jacfwd`` does, batched over images.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.func import jvp, vmap

from ..tensors import encode_batches, images_to_model, model_dtype_device  # noqa: F401 (re-exported)


def _mean_fn(model):
    def f(x):
        return model.encode(x)[0]
    return f


def encoder_jvp(model, images: np.ndarray, directions: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """J_μ(x_a) · v_{a,k}: images [A, H, W, C], directions [A, K, D] (D = H·W·C, dataset layout)
    -> float64 [A, K, L].

    Forward mode: ``vmap`` over the K directions of ``jvp(μ, (x,), (v,))``, so each anchor's
    primal pass is shared by its K tangents; ``batch_size`` bounds anchors × directions per call.
    Directions must be finite (drop categorical factors before calling)."""
    A, K = directions.shape[:2]
    if A == 0 or K == 0:
        return np.zeros((A, K, 0))
    shape = images.shape[1:]
    f = _mean_fn(model)
    per = max(1, int(batch_size) // K)
    out = []
    for s in range(0, A, per):
        x = images_to_model(model, images[s:s + per])
        a = len(x)
        v = images_to_model(model, directions[s:s + per].reshape((a * K,) + shape))
        v = v.reshape((a, K) + tuple(v.shape[1:])).transpose(0, 1)  # [K, a, C, H, W]
        with torch.no_grad():
            tangents = vmap(lambda t: jvp(f, (x,), (t,))[1])(v)  # [K, a, L]
        out.append(tangents.transpose(0, 1).double().cpu().numpy())
    return np.concatenate(out)


def decoder_jacobian(model, z: np.ndarray, latents, batch_size: int = 256) -> np.ndarray:
    """∂f/∂z_l at each z [N, L] for l in ``latents`` -> float64 [N, D_out, len(latents)].

    Forward mode, as ``jacfwd`` builds it (a vmap of jvp over the basis vectors e_l), but with the
    decoder's own batch dim for the images: ``vmap(e -> jvp(decode, (z,), (e,)))`` over the chosen
    basis vectors, so each chunk's primal pass is shared by its len(latents) tangents."""
    dtype, device = model_dtype_device(model)
    lat = np.asarray(latents, dtype=np.int64)
    N, L = z.shape
    La = len(lat)
    if N == 0 or La == 0:
        return np.zeros((N, 0, La))
    basis = torch.eye(L, dtype=dtype, device=device)[torch.as_tensor(lat, device=device)]  # [La, L]
    per = max(1, int(batch_size) // La)
    out = []
    for s in range(0, N, per):
        zs = torch.as_tensor(z[s:s + per], dtype=dtype, device=device)
        n = len(zs)
        with torch.no_grad():
            J = vmap(lambda e: jvp(model.decode, (zs,), (e.expand(n, L),))[1])(basis)  # [La, n, C, H, W]
        out.append(J.reshape(La, n, -1).permute(1, 2, 0).double().cpu().numpy())
    return np.concatenate(out)


def decoder_cosines(model, z: np.ndarray, latents, batch_size: int = 256) -> np.ndarray:
    """C = ĴᵀĴ, Ĵ the decoder Jacobian over ``latents`` with unit columns: float64 [N, La, La].

    Entries involving a column of zero norm are NaN. Computed chunk by chunk, so the full
    Jacobian [N, D, La] is never held at once."""
    N = len(z)
    La = len(latents)
    chunk = max(1, int(batch_size) // max(La, 1))
    out = np.empty((N, La, La))
    for s in range(0, N, chunk):
        J = decoder_jacobian(model, z[s:s + chunk], latents, batch_size)
        norm = np.linalg.norm(J, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            J = np.where(norm > 0, J / norm, np.nan)
        out[s:s + chunk] = np.einsum("ndi,ndj->nij", J, J)
    return out
