"""Shared pieces of the disentanglement metrics: input checks, histogram discretisation and
discrete mutual information / entropy.

Reference: disentanglement_lib/evaluation/metrics/utils.py (``_histogram_discretize``,
``discrete_mutual_info``, ``discrete_entropy``). The reference works on transposed
[num_codes, num_points] arrays; here every array is [N, ·] (scikit-learn layout).
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import mutual_info_score


def check_codes(codes, name: str = "codes", min_samples: int = 2, min_codes: int = 1) -> np.ndarray:
    """``codes`` as float [N, L] (float32 kept, anything else as float64); ValueError for a wrong
    shape, NaN/inf, too few points or codes."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, L], got shape {codes.shape}")
    if not (np.issubdtype(codes.dtype, np.number) or codes.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {codes.dtype}")
    if codes.dtype not in (np.float32, np.float64):   # float32 stays float32, as the reference
        codes = codes.astype(np.float64)                # would see it (histogram edges, IRS means)
    bad = ~np.isfinite(codes)
    if bad.any():
        raise ValueError(f"{name} contain {int(bad.sum())} NaN or infinite value(s)")
    if codes.shape[0] < min_samples:
        raise ValueError(f"{name}: {codes.shape[0]} points, this metric needs at least {min_samples}")
    if codes.shape[1] < min_codes:
        raise ValueError(f"{name}: {codes.shape[1]} code dimension(s), this metric needs "
                         f"at least {min_codes}")
    return codes


def check_factors(factors, n: int, name: str = "factors", single_ok: bool = False) -> np.ndarray:
    """``factors`` as int64 [N, K] with N == n; ValueError for non-integer values, a length
    mismatch or (unless ``single_ok``) a factor that takes a single value."""
    factors = np.asarray(factors)
    if factors.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, K], got shape {factors.shape}")
    if factors.shape[0] != n:
        raise ValueError(f"{name} have {factors.shape[0]} points but the codes have {n}")
    if factors.shape[1] < 1:
        raise ValueError(f"{name} have no columns")
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.issubdtype(factors.dtype, np.number) or not np.all(np.isfinite(factors)) \
                or not np.all(np.mod(factors, 1) == 0):
            raise ValueError(f"{name} must be integer class labels")
    factors = factors.astype(np.int64, copy=False)
    if not single_ok:
        single = [j for j in range(factors.shape[1]) if np.all(factors[:, j] == factors[0, j])]
        if single:
            raise ValueError(f"{name}: factor(s) {single} take a single value in these {n} points; "
                             "every factor needs at least two values")
    return factors


def check_inputs(codes, factors, min_samples: int = 2, min_codes: int = 1, suffix: str = ""):
    """Validate one (codes [N, L], factors [N, K]) pair; returns (float64, int64) arrays."""
    codes = check_codes(codes, "codes" + suffix, min_samples, min_codes)
    return codes, check_factors(factors, codes.shape[0], "factors" + suffix)


def check_train_test(codes_train, factors_train, codes_test, factors_test, min_samples=2, min_codes=1):
    """Validate a train and a test pair with the same L and K."""
    ctr, ftr = check_inputs(codes_train, factors_train, min_samples, min_codes, "_train")
    cte = check_codes(codes_test, "codes_test", 1, min_codes)
    fte = check_factors(factors_test, cte.shape[0], "factors_test", single_ok=True)
    if cte.shape[1] != ctr.shape[1]:
        raise ValueError(f"codes_test have {cte.shape[1]} dimensions, codes_train {ctr.shape[1]}")
    if fte.shape[1] != ftr.shape[1]:
        raise ValueError(f"factors_test have {fte.shape[1]} factors, factors_train {ftr.shape[1]}")
    return ctr, ftr, cte, fte


def histogram_discretize(x: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Equal-width binning of each column: ``np.digitize(x[:, j], np.histogram(x[:, j],
    n_bins)[1][:-1])`` -> int64 [N, L] with values in 1..n_bins (reference
    ``_histogram_discretize``). A constant column falls into a single bin."""
    x = np.asarray(x)
    n_bins = int(n_bins)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        out[:, j] = np.digitize(x[:, j], np.histogram(x[:, j], n_bins)[1][:-1])
    return out


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """I(a_i; b_j) in nats for discrete columns a [N, L], b [N, K] -> [L, K]
    (``sklearn.metrics.mutual_info_score``, as the reference)."""
    m = np.zeros((a.shape[1], b.shape[1]))
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            m[i, j] = mutual_info_score(b[:, j], a[:, i])
    return m


def discrete_entropy(y: np.ndarray) -> np.ndarray:
    """H(y_j) in nats of each discrete column of y [N, K] -> [K] (= I(y_j; y_j))."""
    return np.array([mutual_info_score(y[:, j], y[:, j]) for j in range(y.shape[1])], dtype=np.float64)
