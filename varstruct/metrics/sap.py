"""SAP score (Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations", Sec. 3).

Reference: disentanglement_lib/evaluation/metrics/sap_score.py (``_compute_score_matrix``,
``_compute_avg_diff_top_two``) with the study's ``continuous_factors=False``.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn import svm

from ._parallel import thread_map
from .registry import Scorer, ScoreContext, Variable
from .utils import check_train_test


def _svm_accuracy(x_train, y_train, x_test, y_test) -> float:
    clf = svm.LinearSVC(C=0.01, class_weight="balanced")
    clf.fit(x_train[:, None], y_train)
    return float(np.mean(clf.predict(x_test[:, None]) == y_test))


def sap_score_matrix(codes_train, factors_train, codes_test, factors_test,
                     continuous_factors: bool = False, n_jobs: int | None = None) -> np.ndarray:
    """Score matrix S [L, K].

    Discrete factors (default): S[i, k] = test accuracy of ``LinearSVC(C=0.01,
    class_weight="balanced")`` trained on code i alone (train set) to predict factor k.
    ``continuous_factors=True``: S[i, k] = Cov(z_i, v_k)^2 / (Var z_i Var v_k) on the train set
    (ddof=1), 0 where Var z_i <= 1e-12 (the test set is then unused).
    The L*K classifiers are independent; ``n_jobs`` threads train them (default: all cores).
    """
    ctr, ftr, cte, fte = check_train_test(codes_train, factors_train, codes_test, factors_test,
                                          min_samples=2, min_codes=2)
    L, K = ctr.shape[1], ftr.shape[1]
    if continuous_factors:
        s = np.zeros((L, K))
        for i in range(L):
            for j in range(K):
                c = np.cov(ctr[:, i], ftr[:, j], ddof=1)
                s[i, j] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 else 0.0
        return s
    pairs = [(i, j) for i in range(L) for j in range(K)]
    with warnings.catch_warnings():  # (process-wide filters: set here, not in the worker threads)
        warnings.simplefilter("ignore")  # liblinear ConvergenceWarning; the values are the reference's
        acc = thread_map(lambda p: _svm_accuracy(ctr[:, p[0]], ftr[:, p[1]], cte[:, p[0]], fte[:, p[1]]),
                         pairs, n_jobs)
    return np.asarray(acc, dtype=np.float64).reshape(L, K)


def sap_per_factor(codes_train, factors_train, codes_test, factors_test,
                   continuous_factors: bool = False, n_jobs: int | None = None) -> np.ndarray:
    """Per-factor gap [K] between the two largest entries of each column of the score matrix."""
    s = np.sort(sap_score_matrix(codes_train, factors_train, codes_test, factors_test,
                                 continuous_factors, n_jobs), axis=0)
    return s[-1] - s[-2]


def sap(codes_train, factors_train, codes_test, factors_test,
        continuous_factors: bool = False, n_jobs: int | None = None) -> float:
    """SAP = mean over factors of the top-two gap of :func:`sap_score_matrix` (codes [N, L],
    L >= 2; factors int [N, K])."""
    return float(np.mean(sap_per_factor(codes_train, factors_train, codes_test, factors_test,
                                        continuous_factors, n_jobs)))


# ---- the score registry (varstruct.metrics.registry) ----------------------------------------
def _score(ctx: ScoreContext) -> dict:
    per = sap_per_factor(ctx.codes, ctx.factors, ctx.codes_test, ctx.factors_test, n_jobs=ctx.n_jobs)
    return {"sap": float(np.mean(per)), "sap_per_factor": per}


SCORERS = (Scorer("sap", {"sap": Variable((), "separated attribute predictability"),
                          "sap_per_factor": Variable(("factor",), "SAP per factor")},
                  _score),)
