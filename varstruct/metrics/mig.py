"""Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

Reference: disentanglement_lib/evaluation/metrics/mig.py (``compute_mig``) with the study's
``discretizer.num_bins = 20`` histogram discretiser.
"""
from __future__ import annotations

import numpy as np

from .utils import check_inputs, discrete_entropy, discrete_mutual_info, histogram_discretize


def mig_per_factor(codes, factors, n_bins: int = 20) -> np.ndarray:
    """Per-factor gap [K]: (I_(1) - I_(2)) / H(v_k), where I_(1) >= I_(2) are the two largest
    mutual informations I(z_i; v_k) between the histogram-discretised codes (``n_bins``
    equal-width bins each) and factor k, and H(v_k) the factor's entropy (nats).

    codes float [N, L] (L >= 2), factors int [N, K]. A constant code has zero mutual information.
    """
    codes, factors = check_inputs(codes, factors, min_samples=2, min_codes=2)
    m = discrete_mutual_info(histogram_discretize(codes, n_bins), factors)  # [L, K]
    entropy = discrete_entropy(factors)
    sorted_m = np.sort(m, axis=0)[::-1]
    return (sorted_m[0] - sorted_m[1]) / entropy


def mig(codes, factors, n_bins: int = 20) -> float:
    """MIG = mean over factors of :func:`mig_per_factor` (the reference's ``discrete_mig``)."""
    return float(np.mean(mig_per_factor(codes, factors, n_bins)))
