"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A Framework
for the Quantitative Evaluation of Disentangled Representations").

Reference: disentanglement_lib/evaluation/metrics/dci.py (``compute_importance_gbt``,
``disentanglement``, ``completeness``): one ``GradientBoostingClassifier()`` (scikit-learn
defaults) per factor. See docs/dci.md.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.stats

from ..errors import VarstructError
from ..validate import check_choice
from ._gbt import GradientBoosting, n_trees_per_stage, tree_seeds
from ._parallel import n_workers, thread_map
from .utils import check_train_test
from .registry import Scorer, ScoreContext, Variable

BACKENDS = ("fast", "sklearn")
# scikit-learn versions on which the fast backend reproduces the recorded reference outputs
# (tests/test_dci_reference.py run on 1.4.2, 1.5.2, 1.6.1, 1.7.2, 1.8.0 and 1.9.1): it replays
# the classifiers with scikit-learn's private loss and initialisation code, which may change.
FAST_SKLEARN = ((1, 4), (1, 10))  # [low, high)
_warned: set = set()


def fast_backend_problem() -> str | None:
    """None when the fast backend can run here; else why not (one line)."""
    import sklearn

    try:
        version = tuple(int(p) for p in sklearn.__version__.split(".")[:2])
    except ValueError:
        return f"scikit-learn {sklearn.__version__}: version not understood"
    lo, hi = FAST_SKLEARN
    if not lo <= version < hi:
        return (f"scikit-learn {sklearn.__version__} is outside the range the fast backend is checked on "
                f"(>= {lo[0]}.{lo[1]}, < {hi[0]}.{hi[1]})")
    try:
        from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss  # noqa: F401
        from sklearn.ensemble._gb import _init_raw_predictions  # noqa: F401
    except ImportError as e:
        return f"scikit-learn {sklearn.__version__}: a private module the fast backend needs is missing ({e})"
    return None


def resolve_backend(backend: str) -> str:
    """``backend``, or "sklearn" with one warning (per reason and process) when "fast" cannot run."""
    backend = check_choice("backend", backend, BACKENDS)
    if backend == "fast":
        why = fast_backend_problem()
        if why:
            if why not in _warned:
                import warnings
                warnings.warn(f"DCI: {why}; using the scikit-learn backend (same definition, slower)", stacklevel=3)
                _warned.add(why)
            return "sklearn"
    return backend


def _fit_factor(backend, rng, x_train, y_train, x_test, y_test, seeds=None, pool=None, n_chunks=1):
    """(|feature importances| [L], train accuracy, test accuracy) of one factor's classifier."""
    if backend == "fast":
        model = GradientBoosting().fit(x_train, y_train, pool, n_chunks, seeds=seeds)
        pred_train = model.train_predictions_
    else:
        from sklearn.ensemble import GradientBoostingClassifier
        model = GradientBoostingClassifier(random_state=rng).fit(x_train, y_train)
        pred_train = model.predict(x_train)
    return (np.abs(model.feature_importances_), float(np.mean(pred_train == y_train)),
            float(np.mean(model.predict(x_test) == y_test)))


def importance_gbt(codes_train, factors_train, codes_test, factors_test, backend: str = "fast",
                   n_jobs: int | None = None, random_state=0):
    """Importance matrix R [L, K] (column k = feature importances of factor k's gradient-boosted
    classifier on the train codes) and per-factor train / test accuracies [K], [K].

    As the reference: ``GradientBoostingClassifier()`` per factor, fitted in factor order, all
    drawing from one generator: ``random_state`` s gives the reference's result after
    ``np.random.seed(s)``; None draws from numpy's global generator, as the reference.
    backend "fast" (default): :class:`varstruct.metrics._gbt.GradientBoosting`, the same
    classifiers (same trees, bit for bit, ties included) compiled with numba, on ``n_jobs``
    threads (default: every core; the factors run concurrently and the trees of each boosting
    stage are split over the threads; the result does not depend on n_jobs).
    backend "sklearn": ``sklearn.ensemble.GradientBoostingClassifier``, one factor after the
    other (n_jobs is not used). "fast" falls back to "sklearn" with one warning where scikit-learn
    is outside :data:`FAST_SKLEARN` or lacks the private modules the fast backend uses.
    """
    from sklearn.utils import check_random_state

    backend = resolve_backend(backend)
    ctr, ftr, cte, fte = check_train_test(codes_train, factors_train, codes_test, factors_test,
                                          min_samples=2, min_codes=2)
    K = ftr.shape[1]
    n_classes = [len(np.unique(ftr[:, k])) for k in range(K)]   # >= 2 (checked above)
    workers = n_workers(n_jobs, 1 << 30)
    rng = check_random_state(random_state)
    if backend == "sklearn":
        out = [_fit_factor(backend, rng, ctr, ftr[:, k], cte, fte[:, k]) for k in range(K)]
    else:
        # the seeds the reference's trees draw, factor after factor, stage after stage
        seeds = [tree_seeds(rng, 100, n_trees_per_stage(c)) for c in n_classes]
        order = sorted(range(K), key=lambda k: -n_classes[k])   # longest fits first
        if workers > 1:
            # one driver thread per factor; the trees of each stage run as tasks on a shared pool
            with ThreadPoolExecutor(max_workers=workers) as pool:
                res = thread_map(lambda k: _fit_factor(backend, None, ctr, ftr[:, k], cte, fte[:, k],
                                                       seeds[k], pool, workers), order, K)
        else:
            res = [_fit_factor(backend, None, ctr, ftr[:, k], cte, fte[:, k], seeds[k]) for k in order]
        out = [None] * K
        for k, r in zip(order, res):
            out[k] = r
    importance = np.stack([r[0] for r in out], axis=1)
    return importance, np.array([r[1] for r in out]), np.array([r[2] for r in out])


def disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    """D_i = 1 - H_K(R[i, :] / Σ_k R[i, k]) (entropy with base K, 1e-11 added) -> [L]."""
    return 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])


def completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    """C_k = 1 - H_L(R[:, k] / Σ_i R[i, k]) (entropy with base L, 1e-11 added) -> [K]."""
    return 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])


def disentanglement(importance: np.ndarray) -> float:
    """Σ_i ρ_i D_i with code weights ρ_i = Σ_k R[i, k] / Σ R (uniform if R == 0)."""
    per_code = disentanglement_per_code(importance)
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    return float(np.sum(per_code * importance.sum(axis=1) / importance.sum()))


def completeness(importance: np.ndarray) -> float:
    """Σ_k ρ_k C_k with factor weights ρ_k = Σ_i R[i, k] / Σ R (uniform if R == 0)."""
    per_factor = completeness_per_factor(importance)
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    return float(np.sum(per_factor * importance.sum(axis=0) / importance.sum()))


def dci(codes_train, factors_train, codes_test, factors_test, backend: str = "fast",
        n_jobs: int | None = None, random_state=0) -> dict:
    """DCI scores of codes [N, L] (L >= 2) for factors int [N, K] (K >= 2).

    Returns {disentanglement, completeness, informativeness_train, informativeness_test (mean
    classifier accuracies, as the reference), disentanglement_per_code [L],
    completeness_per_factor [K], informativeness_train_per_factor [K],
    informativeness_test_per_factor [K], importance_matrix [L, K]}.
    A constant code gets zero importance.
    """
    if np.ndim(factors_train) == 2 and np.shape(factors_train)[1] < 2:
        raise VarstructError("factors: DCI needs at least 2 factors (columns)")
    imp, acc_train, acc_test = importance_gbt(codes_train, factors_train, codes_test, factors_test,
                                              backend, n_jobs, random_state)
    return {"disentanglement": disentanglement(imp),
            "completeness": completeness(imp),
            "informativeness_train": float(np.mean(acc_train)),
            "informativeness_test": float(np.mean(acc_test)),
            "disentanglement_per_code": disentanglement_per_code(imp),
            "completeness_per_factor": completeness_per_factor(imp),
            "informativeness_train_per_factor": acc_train,
            "informativeness_test_per_factor": acc_test,
            "importance_matrix": imp}


# ---- the score registry (varstruct.metrics.registry) ----------------------------------------
_VARIABLES = {
    "dci_disentanglement": Variable((), "DCI disentanglement"),
    "dci_completeness": Variable((), "DCI completeness"),
    "dci_informativeness_train": Variable((), "DCI informativeness (train accuracy)"),
    "dci_informativeness_test": Variable((), "DCI informativeness (test accuracy)"),
    "dci_disentanglement_per_code": Variable(("latent",), "DCI disentanglement per code"),
    "dci_completeness_per_factor": Variable(("factor",), "DCI completeness per factor"),
    "dci_informativeness_train_per_factor": Variable(("factor",), "DCI train accuracy per factor"),
    "dci_informativeness_test_per_factor": Variable(("factor",), "DCI test accuracy per factor"),
    "dci_importance": Variable(("latent", "factor"), "DCI importance of each code for each factor"),
}


def _score(ctx: ScoreContext) -> dict:
    r = dci(ctx.codes, ctx.factors, ctx.codes_test, ctx.factors_test, n_jobs=ctx.n_jobs)
    r["importance"] = r.pop("importance_matrix")
    return {k: r[k[4:]] for k in _VARIABLES}


SCORERS = (Scorer("dci", _VARIABLES, _score),)
