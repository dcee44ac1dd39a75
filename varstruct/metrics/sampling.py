"""The sampling-based scores: BetaVAE (Higgins et al. 2017) and FactorVAE (Kim & Mnih 2018).

References: disentanglement_lib/evaluation/metrics/beta_vae.py (``compute_beta_vae_sklearn``)
and factor_vae.py (``compute_factor_vae``, ``_prune_dims``), with the study configs
(unsupervised_study_v1 metric_configs: batch_size 64, num_train 10000, num_eval 5000,
num_variance_estimate 10000, ``prune_dims.threshold = 0.05``).

``encode(images float32 [B, H, W, C]) -> codes [B, L]`` (e.g. :func:`varstruct.tensors.mean_encoder`).
Training points are drawn in chunks (one render and one encode call per chunk) from one
``np.random.default_rng(seed)``; the same seed gives the same scores.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..progress import ProgressArg, progress_bar
from .registry import Scorer, ScoreContext, Variable

CHUNK_IMAGES = 2048  # images rendered + encoded per call


def _check_counts(ds, batch_size, **counts):
    if ds.num_factors < 2:
        raise ValueError(f"{ds.name}: the sampling-based scores need at least 2 factors")
    if int(batch_size) < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    for name, n in counts.items():
        if int(n) < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")


def _encode(encode, images: np.ndarray, n_expected: int) -> np.ndarray:
    codes = np.asarray(encode(images), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != n_expected:
        raise ValueError(f"encode returned shape {codes.shape} for {n_expected} images (expected [B, L])")
    if not np.all(np.isfinite(codes)):
        raise ValueError("encode returned NaN or infinite codes")
    return codes


def _beta_vae_points(ds, encode, rng, batch_size, n_points, advance):
    """n_points (feature [L] = mean_b |z(x1_b) - z(x2_b)| over pairs sharing factor y, label y)."""
    B, K = batch_size, ds.num_factors
    per_chunk = max(1, CHUNK_IMAGES // (2 * B))
    feats, labels = [], []
    for s in range(0, n_points, per_chunk):
        m = min(per_chunk, n_points - s)
        y = rng.integers(K, size=m)
        f1 = ds.sample_factors(m * B, rng).reshape(m, B, K)
        f2 = ds.sample_factors(m * B, rng).reshape(m, B, K)
        f2[np.arange(m), :, y] = f1[np.arange(m), :, y]
        images = ds.render(np.concatenate([f1.reshape(-1, K), f2.reshape(-1, K)]), rng=rng)
        z = _encode(encode, images, 2 * m * B)
        z1, z2 = z[:m * B].reshape(m, B, -1), z[m * B:].reshape(m, B, -1)
        feats.append(np.mean(np.abs(z1 - z2), axis=1))
        labels.append(y)
        advance(m)
    return np.concatenate(feats), np.concatenate(labels)


def beta_vae_score(ds, encode, seed: int = 0, batch_size: int = 64, n_train: int = 10000,
                   n_eval: int = 5000, progress: ProgressArg = False) -> dict:
    """BetaVAE score: a training point picks a factor y uniformly, draws ``batch_size`` pairs of
    factor vectors that share factor y (everything else independent and uniform) and has the
    feature mean_b |z(x1_b) - z(x2_b)| [L]; ``LogisticRegression(random_state=seed)``
    (scikit-learn defaults) predicts y. Returns {train_accuracy, eval_accuracy} on ``n_train``
    training and ``n_eval`` fresh evaluation points.
    """
    from sklearn.linear_model import LogisticRegression

    _check_counts(ds, batch_size, n_train=n_train, n_eval=n_eval)
    rng = np.random.default_rng(seed)
    with progress_bar(progress, n_train + n_eval, "BetaVAE score") as advance:
        x_train, y_train = _beta_vae_points(ds, encode, rng, int(batch_size), int(n_train), advance)
        x_eval, y_eval = _beta_vae_points(ds, encode, rng, int(batch_size), int(n_eval), advance)
    if len(np.unique(y_train)) < 2:
        raise ValueError("BetaVAE score: the training points cover a single factor; raise n_train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs ConvergenceWarning, as the reference
        model = LogisticRegression(random_state=seed).fit(x_train, y_train)
    return {"train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
            "eval_accuracy": float(model.score(x_eval, y_eval))}


def _factor_vae_votes(ds, encode, rng, batch_size, n_points, global_var, active, advance):
    """Votes [K, n_active]: per point a factor y, a batch sharing y's value and the active code
    with the smallest local / global variance."""
    B, K = batch_size, ds.num_factors
    per_chunk = max(1, CHUNK_IMAGES // B)
    votes = np.zeros((K, int(active.sum())), dtype=np.int64)
    for s in range(0, n_points, per_chunk):
        m = min(per_chunk, n_points - s)
        y = rng.integers(K, size=m)
        f = ds.sample_factors(m * B, rng).reshape(m, B, K)
        f[np.arange(m), :, y] = f[np.arange(m), 0, y][:, None]
        z = _encode(encode, ds.render(f.reshape(-1, K), rng=rng), m * B).reshape(m, B, -1)
        local_var = np.var(z, axis=1, ddof=1)
        argmin = np.argmin(local_var[:, active] / global_var[active], axis=1)
        np.add.at(votes, (y, argmin), 1)
        advance(m)
    return votes


def factor_vae_score(ds, encode, seed: int = 0, batch_size: int = 64, n_train: int = 10000,
                     n_eval: int = 5000, n_variance: int = 10000, prune_threshold: float = 0.05,
                     progress: ProgressArg = False) -> dict:
    """FactorVAE score: global code variances (ddof=1) from ``n_variance`` points; codes whose
    std is below ``prune_threshold`` are dropped (none active: both accuracies 0). A point picks
    a factor y, draws ``batch_size`` factor vectors sharing y's value and votes for the active
    code with the smallest variance normalised by its global variance; the classifier maps each
    code to its majority factor (ties: lowest factor index). Accuracy = majority votes / votes.
    Returns {train_accuracy, eval_accuracy, num_active_dims}.
    """
    _check_counts(ds, batch_size, n_train=n_train, n_eval=n_eval, n_variance=n_variance)
    if int(n_variance) < 2:
        raise ValueError(f"n_variance must be >= 2, got {n_variance}")
    rng = np.random.default_rng(seed)
    total = int(n_variance) + int(n_train) + int(n_eval)
    with progress_bar(progress, total, "FactorVAE score") as advance:
        zs = []
        for s in range(0, int(n_variance), CHUNK_IMAGES):
            m = min(CHUNK_IMAGES, int(n_variance) - s)
            zs.append(_encode(encode, ds.render(ds.sample_factors(m, rng), rng=rng), m))
            advance(m)
        global_var = np.var(np.concatenate(zs), axis=0, ddof=1)
        active = np.sqrt(global_var) >= prune_threshold
        if not active.any():
            return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
        B = int(batch_size)
        train_votes = _factor_vae_votes(ds, encode, rng, B, int(n_train), global_var, active, advance)
        eval_votes = _factor_vae_votes(ds, encode, rng, B, int(n_eval), global_var, active, advance)
    classifier = np.argmax(train_votes, axis=0)
    cols = np.arange(train_votes.shape[1])
    return {"train_accuracy": float(train_votes[classifier, cols].sum() / train_votes.sum()),
            "eval_accuracy": float(eval_votes[classifier, cols].sum() / eval_votes.sum()),
            "num_active_dims": int(active.sum())}


# ---- the score registry (varstruct.metrics.registry) ----------------------------------------
def _score_beta_vae(ctx: ScoreContext) -> dict:
    r = beta_vae_score(ctx.ds, ctx.encode, seed=ctx.seed, n_train=ctx.n_train, n_eval=ctx.n_test)
    return {"beta_vae_train_accuracy": r["train_accuracy"], "beta_vae_eval_accuracy": r["eval_accuracy"]}


def _score_factor_vae(ctx: ScoreContext) -> dict:
    r = factor_vae_score(ctx.ds, ctx.encode, seed=ctx.seed, n_train=ctx.n_train, n_eval=ctx.n_test,
                         n_variance=ctx.n_train)
    return {f"factor_vae_{k}": r[k] for k in ("train_accuracy", "eval_accuracy", "num_active_dims")}


SCORERS = (
    Scorer("beta_vae", {"beta_vae_train_accuracy": Variable((), "BetaVAE score (train accuracy)"),
                        "beta_vae_eval_accuracy": Variable((), "BetaVAE score (evaluation accuracy)")},
           _score_beta_vae),
    Scorer("factor_vae", {"factor_vae_train_accuracy": Variable((), "FactorVAE score (train accuracy)"),
                          "factor_vae_eval_accuracy": Variable((), "FactorVAE score (evaluation accuracy)"),
                          "factor_vae_num_active_dims": Variable((), "FactorVAE active codes")},
           _score_factor_vae),
)
