"""Rotation angle of a learned code: how far the factors' response directions in the plane of
the two most used latents lie from the latent axes (docs/measures.md#rotation_angle).

For one model, with the two latents of largest ``latent_kl`` (l1, l2; ties: the lower index)
and M[j, l] = R[j, l] / √Var μ_l (R: the mean over anchors of the encoder mean's response to
factor j's pixel direction, e.g. ``jacobian_response``; Var μ_l: ``latent_variance``), factor
j's direction in the (l1, l2) plane makes the angle φ_j = atan2(M[j, l2], M[j, l1]) ∈ [0°, 90°]
with l1's axis. The rotation angle is the mean over the factors of min(φ_j, 90° − φ_j), its
distance to the nearest latent axis, in [0°, 45°]: 0° an axis-aligned code, 45° a code rotated
halfway between the factor axes. Factors whose row is not finite or is zero in the plane are
left out. NaN for a model with fewer than two latents of mean KL >= ``min_kl`` (a collapsed code
has no plane to be rotated in) or with no factor left.
"""
from __future__ import annotations

import numpy as np

MIN_KL = 0.05  # the active-latent threshold of active_mig (nats)


def rotation_angle(response, latent_variance, latent_kl, min_kl: float = MIN_KL) -> np.ndarray:
    """Degrees in [0, 45] (NaN where undefined, see the module docstring) of response
    [..., K, L] (non-negative), latent_variance [..., L] and latent_kl [..., L] -> float64 [...]
    (a float64 scalar array for one model)."""
    R = np.asarray(response, dtype=np.float64)
    var = np.asarray(latent_variance, dtype=np.float64)
    kl = np.asarray(latent_kl, dtype=np.float64)
    if R.ndim < 2 or var.shape != R.shape[:-2] + R.shape[-1:] or kl.shape != var.shape:
        raise ValueError(f"rotation_angle: response [..., K, L], latent_variance and latent_kl [..., L] "
                         f"expected, got {R.shape}, {var.shape}, {kl.shape}")
    batch = R.shape[:-2]
    R, var, kl = R.reshape((-1,) + R.shape[-2:]), var.reshape(-1, var.shape[-1]), kl.reshape(-1, kl.shape[-1])
    out = np.full(len(R), np.nan)
    for m in range(len(R)):
        k = np.where(np.isfinite(kl[m]), kl[m], -np.inf)
        if (k >= min_kl).sum() < 2:
            continue
        l1, l2 = np.argsort(-k, kind="stable")[:2]
        with np.errstate(invalid="ignore", divide="ignore"):
            M = R[m][:, [l1, l2]] / np.sqrt(var[m][[l1, l2]])
        ok = np.isfinite(M).all(1) & (M.sum(1) > 0)
        if not ok.any():
            continue
        phi = np.degrees(np.arctan2(M[ok, 1], M[ok, 0]))
        out[m] = float(np.mean(np.minimum(phi, 90.0 - phi)))
    return out.reshape(batch)
