"""Interventional Robustness Score (Suter et al. 2019, "Robustly Disentangled Causal
Mechanisms: Validating Deep Representations for Interventional Robustness").

Reference: disentanglement_lib/evaluation/metrics/irs.py (``compute_irs``,
``_drop_constant_dims``, ``scalable_disentanglement_score``) with the study's
``diff_quantile=0.99`` and 20-bin histogram discretisation of the factors.
"""
from __future__ import annotations

import numpy as np

from .utils import check_inputs, histogram_discretize
from .registry import Scorer, ScoreContext, Variable


def irs_details(codes, factors, diff_quantile: float = 0.99, n_bins: int = 20) -> dict:
    """IRS of codes [N, L] for factors int [N, K].

    Factors are histogram-discretised (``n_bins``); constant codes are dropped. For active
    code i and factor k: D[i, k] = mean over the values g of factor k of the ``diff_quantile``
    quantile of |z_i - E[z_i | v_k = g]| within that group; IRS matrix R = 1 - D / max|z_i - E z_i|;
    per-code score s_i = max_k R[i, k]; IRS = Σ_i s_i max_dev_i / Σ_i max_dev_i.
    Returns {irs, num_active_dims, per_code [L] (NaN for dropped codes), matrix [L, K]}; with no
    active code the IRS is 0.
    """
    codes, factors = check_inputs(codes, factors)
    if not 0.0 <= float(diff_quantile) <= 1.0:
        raise ValueError(f"diff_quantile must lie in [0, 1], got {diff_quantile}")
    L, K = codes.shape[1], factors.shape[1]
    ys = histogram_discretize(factors, n_bins)
    active = codes.var(axis=0) > 0.0
    per_code = np.full(L, np.nan)
    matrix = np.full((L, K), np.nan)
    if not active.any():
        return {"irs": 0.0, "num_active_dims": 0, "per_code": per_code, "matrix": matrix}
    z = codes[:, active]
    max_dev = np.max(np.abs(z - z.mean(axis=0)), axis=0)
    cum = np.zeros((z.shape[1], K))
    for k in range(K):
        values = np.unique(ys[:, k])
        for g in values:
            zg = z[ys[:, k] == g]
            cum[:, k] += np.percentile(np.abs(zg - zg.mean(axis=0)), q=diff_quantile * 100, axis=0)
        cum[:, k] /= len(values)
    r = 1.0 - cum / max_dev[:, None]
    scores = r.max(axis=1)
    irs = np.average(scores, weights=max_dev) if np.sum(max_dev) > 0 else np.mean(scores)
    per_code[active] = scores
    matrix[active] = r
    return {"irs": float(irs), "num_active_dims": int(active.sum()), "per_code": per_code, "matrix": matrix}


def irs(codes, factors, diff_quantile: float = 0.99, n_bins: int = 20) -> float:
    """The IRS score of :func:`irs_details`."""
    return irs_details(codes, factors, diff_quantile, n_bins)["irs"]


# ---- the score registry (varstruct.metrics.registry) ----------------------------------------
def _score(ctx: ScoreContext) -> dict:
    r = irs_details(ctx.codes, ctx.factors)
    return {"irs": r["irs"], "irs_num_active_dims": r["num_active_dims"], "irs_per_code": r["per_code"]}


SCORERS = (Scorer("irs", {"irs": Variable((), "interventional robustness score"),
                          "irs_num_active_dims": Variable((), "IRS active codes"),
                          "irs_per_code": Variable(("latent",), "IRS per code")},
                  _score),)
