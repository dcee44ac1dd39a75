"""Modularity and explicitness (Ridgeway & Zemel 2018, "Learning Deep Disentangled Embeddings
With the F-Statistic Loss").

Reference: disentanglement_lib/evaluation/metrics/modularity_explicitness.py
(``compute_modularity_explicitness``, ``modularity``, ``explicitness_per_factor``) with the
study's 20-bin histogram discretiser.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from ._parallel import thread_map
from .utils import check_train_test, discrete_mutual_info, histogram_discretize
from .registry import Scorer, ScoreContext, Variable


def modularity_per_code(mutual_information: np.ndarray) -> np.ndarray:
    """Per-code modularity [L] from a mutual-information matrix [L, K] (K >= 2):
    1 - (Σ_k m_ik² - max_k m_ik²) / ((K - 1) max_k m_ik²); 0 for a code with no information."""
    mi = np.asarray(mutual_information, dtype=np.float64)
    if mi.ndim != 2 or mi.shape[1] < 2:
        raise ValueError(f"modularity needs a [L, K] matrix with K >= 2 factors, got shape {mi.shape}")
    sq = np.square(mi)
    mx = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (sq.sum(axis=1) - mx) / (mx * (sq.shape[1] - 1.0))
    score[mx == 0.0] = 0.0
    return score


def explicitness_per_factor(x_train, y_train, x_test, y_test):
    """(train, test) macro one-vs-rest ROC-AUC of ``LogisticRegression()`` (scikit-learn
    defaults) predicting factor y [N] from the normalised codes x [N, L]."""
    clf = LogisticRegression().fit(x_train, y_train)
    p_train, p_test = clf.predict_proba(x_train), clf.predict_proba(x_test)
    mlb = MultiLabelBinarizer()
    roc_train = roc_auc_score(mlb.fit_transform(np.expand_dims(y_train, 1)), p_train)
    roc_test = roc_auc_score(mlb.fit_transform(np.expand_dims(y_test, 1)), p_test)
    return float(roc_train), float(roc_test)


def modularity_explicitness(codes_train, factors_train, codes_test, factors_test,
                            n_bins: int = 20, n_jobs: int | None = None) -> dict:
    """Modularity and explicitness of codes [N, L] for factors int [N, K] (K >= 2).

    - modularity: mean of :func:`modularity_per_code` over the mutual information between the
      ``n_bins``-bin histogram-discretised train codes and the train factors;
    - explicitness: codes standardised with the train mean/std (np.std, ddof=0), then per factor
      :func:`explicitness_per_factor`; mean over factors.

    Returns {modularity, explicitness_train, explicitness_test, modularity_per_code [L],
    explicitness_train_per_factor [K], explicitness_test_per_factor [K]}.
    Every test factor must take the same set of values as in the train set (else ValueError).
    A constant train code is standardised to 0 (the reference divides by its zero std).
    """
    ctr, ftr, cte, fte = check_train_test(codes_train, factors_train, codes_test, factors_test)
    K = ftr.shape[1]
    if K < 2:
        raise ValueError("modularity needs at least 2 factors")
    for j in range(K):
        if not np.array_equal(np.unique(ftr[:, j]), np.unique(fte[:, j])):
            raise ValueError(f"factor {j} takes different values in the train and test sets "
                             "(draw more test points)")
    mi = discrete_mutual_info(histogram_discretize(ctr, n_bins), ftr)
    per_code = modularity_per_code(mi)
    mean, std = ctr.mean(axis=0), ctr.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    xtr, xte = (ctr - mean) / std, (cte - mean) / std
    with warnings.catch_warnings():  # (process-wide filters: set here, not in the worker threads)
        warnings.simplefilter("ignore")  # lbfgs ConvergenceWarning at max_iter=100, as the reference
        roc = np.array(thread_map(lambda j: explicitness_per_factor(xtr, ftr[:, j], xte, fte[:, j]),
                                  range(K), n_jobs))
    return {"modularity": float(np.mean(per_code)),
            "explicitness_train": float(np.mean(roc[:, 0])),
            "explicitness_test": float(np.mean(roc[:, 1])),
            "modularity_per_code": per_code,
            "explicitness_train_per_factor": roc[:, 0],
            "explicitness_test_per_factor": roc[:, 1]}


# ---- the score registry (varstruct.metrics.registry) ----------------------------------------
_VARIABLES = {
    "modularity": Variable((), "modularity"),
    "explicitness_train": Variable((), "explicitness (train AUC)"),
    "explicitness_test": Variable((), "explicitness (test AUC)"),
    "modularity_per_code": Variable(("latent",), "modularity per code"),
    "explicitness_test_per_factor": Variable(("factor",), "explicitness (test AUC) per factor"),
}


def _score(ctx: ScoreContext) -> dict:
    r = modularity_explicitness(ctx.codes, ctx.factors, ctx.codes_test, ctx.factors_test, n_jobs=ctx.n_jobs)
    return {k: r[k] for k in _VARIABLES}


SCORERS = (Scorer("modularity_explicitness", _VARIABLES, _score),)
