"""Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

Reference: disentanglement_lib/evaluation/metrics/mig.py (``compute_mig``) with the study's
``discretizer.num_bins = 20`` histogram discretiser.

Active-latent MIG: the same score with the inactive latents (mean KL to the prior below a
threshold, 0.05 by default) held constant, so they carry zero mutual information: unused
latents of a β-VAE still vary a little with the input and add spurious histogram information,
which can fill the second place of the gap.
"""
from __future__ import annotations

import numpy as np

from .utils import check_inputs, discrete_entropy, discrete_mutual_info, histogram_discretize
from .registry import KL, Scorer, ScoreContext, Variable


def mig_per_factor(codes, factors, n_bins: int = 20, active=None) -> np.ndarray:
    """Per-factor gap [K]: (I_(1) - I_(2)) / H(v_k), where I_(1) >= I_(2) are the two largest
    mutual informations I(z_i; v_k) between the histogram-discretised codes (``n_bins``
    equal-width bins each) and factor k, and H(v_k) the factor's entropy (nats).

    codes float [N, L] (L >= 2), factors int [N, K]. A constant code has zero mutual information.
    active: None (every latent), or bool [L]: the latents where it is False are held constant
    (I = 0), as if their codes were replaced by a constant. No active latent gives 0 for every
    factor; one active latent gives I(z_i; v_k) / H(v_k) for its factors.
    """
    codes, factors = check_inputs(codes, factors, min_samples=2, min_codes=2)
    if active is not None:
        active = np.asarray(active)
        if active.dtype != bool or active.shape != (codes.shape[1],):
            raise ValueError(f"active must be a bool array of shape ({codes.shape[1]},), got "
                             f"{active.dtype} {active.shape}")
        codes = np.where(active, codes, 0.0)  # a constant column: one histogram bin, I = 0
    m = discrete_mutual_info(histogram_discretize(codes, n_bins), factors)  # [L, K]
    entropy = discrete_entropy(factors)
    sorted_m = np.sort(m, axis=0)[::-1]
    return (sorted_m[0] - sorted_m[1]) / entropy


def mig(codes, factors, n_bins: int = 20, active=None) -> float:
    """MIG = mean over factors of :func:`mig_per_factor` (the reference's ``discrete_mig``)."""
    return float(np.mean(mig_per_factor(codes, factors, n_bins, active)))


def latent_kl(mean, logvar) -> np.ndarray:
    """Mean KL of each latent to the prior [L]: mean over points of
    KL(N(μ, e^s) || N(0, 1)) = ½ (μ² + e^s − s − 1), for mean, logvar float [N, L].
    (For a deterministic encoder, logvar ≡ 0, this is ½ mean μ².)"""
    mean, logvar = np.asarray(mean, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    if mean.ndim != 2 or mean.shape != logvar.shape or len(mean) < 1:
        raise ValueError(f"mean and logvar must be [N, L] arrays of one shape with N >= 1, got "
                         f"{mean.shape} and {logvar.shape}")
    kl = 0.5 * (mean ** 2 + np.exp(logvar) - logvar - 1.0)
    if not np.all(np.isfinite(kl)):
        raise ValueError("mean / logvar give NaN or infinite KL values")
    return kl.mean(0)


def active_mig_per_factor(codes, factors, kl, threshold: float = 0.05, n_bins: int = 20) -> np.ndarray:
    """:func:`mig_per_factor` with the latents of mean KL ``kl`` [L] < ``threshold`` held
    constant (0 for every factor when no latent is active)."""
    kl = np.asarray(kl, dtype=np.float64)
    threshold = float(threshold)
    if kl.ndim != 1 or not np.all(np.isfinite(kl)):
        raise ValueError(f"kl must be a finite 1-D array [L], got shape {kl.shape}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    return mig_per_factor(codes, factors, n_bins, active=kl >= threshold)


def active_mig(codes, factors, kl, threshold: float = 0.05, n_bins: int = 20) -> float:
    """Active-latent MIG: mean over factors of :func:`active_mig_per_factor`."""
    return float(np.mean(active_mig_per_factor(codes, factors, kl, threshold, n_bins)))


# ---- the score registry (varstruct.metrics.registry) ----------------------------------------
def _score_mig(ctx: ScoreContext) -> dict:
    per = mig_per_factor(ctx.codes, ctx.factors)
    return {"mig": float(np.mean(per)), "mig_per_factor": per}


def _score_active_mig(ctx: ScoreContext) -> dict:
    per = active_mig_per_factor(ctx.codes, ctx.factors, ctx.kl, ctx.active_threshold)
    return {"active_mig": float(np.mean(per)), "active_mig_per_factor": per, "latent_kl": ctx.kl}


SCORERS = (
    Scorer("mig", {"mig": Variable((), "mutual information gap"),
                   "mig_per_factor": Variable(("factor",), "mutual information gap per factor")},
           _score_mig),
    Scorer("active_mig",
           {"active_mig": Variable((), "mutual information gap over the active latents"),
            "active_mig_per_factor": Variable(("factor",), "active-latent MIG per factor"),
            "latent_kl": Variable(("latent",), "mean KL of each latent's posterior to the prior", "nat")},
           _score_active_mig, frozenset({KL})),
)
