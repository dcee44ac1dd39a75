"""How a model's code moves between the two views of a pair in which only some factors change
(longitudinal pairs: ``ds.sample_pairs(k, changeable=...)``).

Plain numpy over the encoder means of the two views, μ1, μ2 [P, L] (P pairs, L latents):

- per-latent movement, in units of the latent's spread over the first views::

      d_l = mean_p |μ2[p, l] − μ1[p, l]| / sd_p(μ1[:, l])

  NaN for a latent with sd = 0 (a collapsed latent) or not ``active``.
- :func:`fixed_code_drift`, how much the code of the factors that stay fixed moves, relative to
  the code of the factors that change. With R [L, K] a latent-by-factor importance matrix (DCI's
  ``dci_importance``: latent l's importance for predicting factor k; any non-negative weights),
  w_l^fix = Σ_{k fixed} R[l, k] and w_l^chg = Σ_{k changing} R[l, k] over the active latents::

      drift = (Σ_l w_l^fix d_l / Σ_l w_l^fix) / (Σ_l w_l^chg d_l / Σ_l w_l^chg)

  0: the latents that carry the fixed factors do not move at all (what stays fixed is separated
  from what changes); 1: they move as much as those of the changing factors (no separation).
  NaN when either weight sum is 0 or the changing code does not move.
- :func:`movement_concentration`, the share of Σ_l d_l carried by the n largest d_l (n = the number
  of changing factors): 1 when only n latents move, n / L_active when all move alike. It needs
  no importance matrix, but a model with only n active latents scores 1 whatever it encodes.

Edge cases: NaN rows of μ are dropped pair-wise; fewer than 2 pairs gives NaNs.
"""
from __future__ import annotations

import numpy as np


def latent_movement(mu1, mu2, active=None) -> np.ndarray:
    """d_l = mean |μ2 − μ1| / sd(μ1) per latent -> float64 [L]; NaN where sd = 0 or not active.
    mu1, mu2: [P, L]; active: [L] bools (default all)."""
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    if mu1.shape != mu2.shape or mu1.ndim != 2:
        raise ValueError(f"latent_movement: mu1 and mu2 must be [pairs, latents] of one shape, got {mu1.shape} and {mu2.shape}")
    ok = np.isfinite(mu1).all(1) & np.isfinite(mu2).all(1)
    mu1, mu2 = mu1[ok], mu2[ok]
    L = mu1.shape[1]
    if len(mu1) < 2:
        return np.full(L, np.nan)
    sd = mu1.std(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(sd > 0, np.abs(mu2 - mu1).mean(0) / np.where(sd > 0, sd, 1.0), np.nan)
    if active is not None:
        d = np.where(np.asarray(active, dtype=bool), d, np.nan)
    return d


def fixed_code_drift(movement, importance, fixed) -> float:
    """The drift ratio of the module docstring. movement: d [L] (NaN latents are left out);
    importance: R [L, K] >= 0; fixed: [K] bools, True for the factors that stay fixed."""
    d = np.asarray(movement, dtype=np.float64)
    R = np.asarray(importance, dtype=np.float64)
    fixed = np.asarray(fixed, dtype=bool)
    if R.shape != (d.shape[0], fixed.shape[0]):
        raise ValueError(f"fixed_code_drift: importance must be [latents, factors] = {(d.shape[0], fixed.shape[0])}, got {R.shape}")
    keep = np.isfinite(d) & np.isfinite(R).all(1)
    d, R = d[keep], np.clip(R[keep], 0, None)
    w_fix, w_chg = R[:, fixed].sum(1), R[:, ~fixed].sum(1)
    if w_fix.sum() <= 0 or w_chg.sum() <= 0:
        return float("nan")
    chg = float(w_chg @ d / w_chg.sum())
    return float(w_fix @ d / w_fix.sum() / chg) if chg > 0 else float("nan")


def movement_concentration(movement, n: int) -> float:
    """Share of Σ d carried by the n largest d (NaN latents left out); NaN if Σ d = 0 or no latent."""
    d = np.asarray(movement, dtype=np.float64)
    d = np.sort(d[np.isfinite(d)])[::-1]
    if len(d) == 0 or d.sum() <= 0:
        return float("nan")
    return float(d[:n].sum() / d.sum())
