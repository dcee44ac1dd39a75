"""Unsupervised scores from the code covariance and the codes' mutual information.

Reference: disentanglement_lib/evaluation/metrics/unsupervised_metrics.py
(``unsupervised_metrics``, ``gaussian_total_correlation``,
``gaussian_wasserstein_correlation``) with the study's 20-bin histogram discretiser.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .utils import check_codes, discrete_mutual_info, histogram_discretize
from .registry import Scorer, Variable


def gaussian_total_correlation(cov) -> float:
    """KL(N(0, Σ) || N(0, diag Σ)) = ½ (Σ_i log Σ_ii - log det Σ) for a covariance [L, L]."""
    cov = np.asarray(cov, dtype=np.float64)
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]))


def gaussian_wasserstein_correlation(cov) -> float:
    """Squared 2-Wasserstein distance between N(0, Σ) and N(0, diag Σ):
    2 tr Σ - 2 tr sqrtm(Σ · diag(Σ)[:, None])."""
    cov = np.asarray(cov, dtype=np.float64)
    sqrtm = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    return float(np.real(2 * np.trace(cov) - 2 * np.trace(sqrtm)))


def unsupervised_scores(codes, n_bins: int = 20) -> dict:
    """Scores of codes [N, L] (L >= 2), from Σ = np.cov(codes.T) (ddof=1):
    gaussian_total_correlation, gaussian_wasserstein_correlation, its normalised form
    (divided by tr Σ), and mutual_info_score = mean over pairs i != j of I(z_i; z_j) between the
    ``n_bins``-bin histogram-discretised codes. A constant code makes Σ (near-)singular: the
    Gaussian scores are then NaN, inf or huge, exactly as in the reference.
    """
    codes = check_codes(codes, min_samples=2, min_codes=2)
    L = codes.shape[1]
    cov = np.cov(codes.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = gaussian_total_correlation(cov)
        wc = gaussian_wasserstein_correlation(cov)
        wc_norm = wc / np.sum(np.diag(cov))
    d = histogram_discretize(codes, n_bins)
    mi = discrete_mutual_info(d, d)
    np.fill_diagonal(mi, 0)
    return {"gaussian_total_correlation": tc,
            "gaussian_wasserstein_correlation": wc,
            "gaussian_wasserstein_correlation_norm": float(wc_norm),
            "mutual_info_score": float(np.sum(mi) / (L ** 2 - L))}


# ---- the score registry (varstruct.metrics.registry) ----------------------------------------
SCORERS = (Scorer(
    "unsupervised",
    {"gaussian_total_correlation": Variable((), "Gaussian total correlation", "nat"),
     "gaussian_wasserstein_correlation": Variable((), "Gaussian Wasserstein correlation", None),
     "gaussian_wasserstein_correlation_norm": Variable((), "normalised Gaussian Wasserstein correlation"),
     "mutual_info_score": Variable((), "mean pairwise mutual information of the codes", "nat")},
    lambda ctx: unsupervised_scores(ctx.codes)),)
