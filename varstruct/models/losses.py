"""Loss terms as plain tensor functions (batch dim first). Follows disentanglement_lib.

Shapes: x, logits [B, C, H, W]; mean, logvar, z [B, L].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


# ---- reconstruction --------------------------------------------------------------------
def bernoulli_recon(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Σ_pixels BCE-with-logits(logits, x), averaged over the batch (0-d)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def gaussian_recon(logits: torch.Tensor, x: torch.Tensor, var: float) -> torch.Tensor:
    """Σ_pixels (x - σ(logits))² / (2·var), averaged over the batch: the Gaussian NLL with fixed
    variance ``var`` and mean σ(logits), without its constant ½·D·log(2π·var)."""
    return (x - torch.sigmoid(logits)).square().sum() / (2.0 * var * x.shape[0])


# ---- the Gaussian posterior ------------------------------------------------------------
def sample_gaussian(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mean + exp(logvar / 2)·ε, ε ~ N(0, I) from torch's global generator."""
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


def kl_per_dim(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per dim, [B, L]: ½(mean² + exp(logvar) - logvar - 1)."""
    return 0.5 * (mean.square() + logvar.exp() - logvar - 1.0)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Σ_l KL to N(0, I), averaged over the batch (0-d)."""
    return kl_per_dim(mean, logvar).sum(1).mean()


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) elementwise (broadcasting): -½((z-m)²e^{-logvar} + logvar + log 2π)."""
    return -0.5 * ((z - mean).square() * torch.exp(-logvar) + logvar + LOG_2PI)


# ---- β-TCVAE ---------------------------------------------------------------------------
def total_correlation(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Minibatch estimate of TC(z) as disentanglement_lib's ``total_correlation`` (0-d).

    With p[j, i, l] = log q(z_jl | x_i):  TC = mean_j [ logsumexp_i Σ_l p[j,i,l]
    - Σ_l logsumexp_i p[j,i,l] ]  (the constant (L-1)·log(B·N) is dropped, as there).
    """
    p = gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])  # [B, B, L]
    log_qz = torch.logsumexp(p.sum(2), dim=1)
    log_qz_product = torch.logsumexp(p, dim=1).sum(1)
    return (log_qz - log_qz_product).mean()


# ---- DIP-VAE ---------------------------------------------------------------------------
def covariance(v: torch.Tensor) -> torch.Tensor:
    """Biased covariance of the rows of v [B, L]: E[v vᵀ] - E[v]E[v]ᵀ, [L, L]."""
    m = v.mean(0)
    return (v[:, :, None] * v[:, None, :]).mean(0) - m[:, None] * m[None, :]


def dip_regulariser(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """λ_od Σ_{i≠j} cov_ij² + λ_d Σ_i (cov_ii - 1)²."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.square().sum() + lambda_d * (diag - 1.0).square().sum()


def dip_covariance(mean: torch.Tensor, logvar: torch.Tensor, dip_type: str) -> torch.Tensor:
    """DIP-VAE-I: Cov[mean]; DIP-VAE-II: Cov[mean] + E[diag(exp(logvar))]."""
    cov = covariance(mean)
    if dip_type == "ii":
        cov = cov + torch.diag(logvar.exp().mean(0))
    return cov


# ---- AnnealedVAE -----------------------------------------------------------------------
def anneal(c_max: float, step: int, iteration_threshold: int) -> float:
    """Capacity C = min(C_max, C_max · step / iteration_threshold)."""
    return min(float(c_max), float(c_max) * step / float(iteration_threshold))


# ---- FactorVAE -------------------------------------------------------------------------
def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Shuffle each latent dim independently across the batch (disentanglement_lib's
    ``shuffle_codes``): samples of Π_l q(z_l)."""
    B, L = z.shape
    perm = torch.argsort(torch.rand(B, L, device=z.device), dim=0)
    return torch.gather(z, 0, perm)


# ---- Ada-GVAE --------------------------------------------------------------------------
def pair_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(q1 || q2) per dim for diagonal Gaussians, [B, L]:
    ½(σ1²/σ2² + (μ2-μ1)²/σ2² - 1 + log σ2² - log σ1²)."""
    return 0.5 * ((logvar1 - logvar2).exp() + (mean2 - mean1).square() * torch.exp(-logvar2)
                  - 1.0 + logvar2 - logvar1)


def ada_gvae_aggregate(mean1, logvar1, mean2, logvar2):
    """Adaptive group averaging of Locatello et al. 2020 (Ada-GVAE).

    δ = pair_kl per dim [B, L]; per pair the threshold τ = ½(max_l δ + min_l δ); dims with
    δ < τ are taken as shared and both posteriors replaced there by the average
    μ̄ = ½(μ1 + μ2), σ̄² = ½(σ1² + σ2²) (GVAE averaging); dims with δ >= τ are kept.
    Returns (mean1', logvar1', mean2', logvar2', shared bool [B, L]).
    """
    kl = pair_kl(mean1, logvar1, mean2, logvar2)
    tau = 0.5 * (kl.max(1, keepdim=True).values + kl.min(1, keepdim=True).values)
    shared = kl < tau
    avg_mean = 0.5 * (mean1 + mean2)
    avg_logvar = torch.log(0.5 * (logvar1.exp() + logvar2.exp()))
    return (torch.where(shared, avg_mean, mean1), torch.where(shared, avg_logvar, logvar1),
            torch.where(shared, avg_mean, mean2), torch.where(shared, avg_logvar, logvar2), shared)


# ---- nested dropout --------------------------------------------------------------------
def nested_dropout_mask(batch: int, latent_dim: int, p: float, device=None) -> torch.Tensor:
    """Keep-mask [B, L] (float): per sample b ~ Geometric(p) on {1, 2, ...} truncated at L, keep
    the first b code units (Rippel et al. 2014)."""
    u = torch.rand(batch, device=device)
    if p >= 1.0:
        b = torch.ones(batch, device=device)
    else:
        b = torch.ceil(torch.log1p(-u) / math.log1p(-p)).clamp(1, latent_dim)
    return (torch.arange(latent_dim, device=device)[None, :] < b[:, None]).float()
