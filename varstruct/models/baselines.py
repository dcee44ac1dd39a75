"""Fitted baselines: linear encoders from PCA, FastICA and the oracle readout, as model weights.

Each baseline is a ``linear``-architecture model (:class:`varstruct.models.nets.VAE`: one affine
map each way) whose weights are fitted in closed form instead of trained, so a baseline run dir
is an ordinary run dir: ``evaluate``, ``measure model``, ``collect`` and ``correlate`` take it
as they take a trained model. The untrained-network baseline needs no fitting: a run of
``steps = 0`` keeps the seeded initial weights.

The fit sample: ``n_fit`` images of factor combinations drawn uniformly from the grid with
``numpy.random.default_rng(seed)`` (nuisances from the same generator), flattened in the
networks' (C, H, W) order into X [N, D]. Codes are standardised on that sample (mean 0, variance
1 per latent), so a deterministic code's KL to the prior, μ²/2, averages ½ nat per latent and
every latent counts as active.

- ``pca``: the top-L principal directions u_l with variances λ_l (scikit-learn ``PCA``,
  ``random_state = seed`` for its randomized solver on large images):
  z_l = ⟨x − μ, u_l⟩ / √λ_l;  x̂ = μ + Σ_l √λ_l z_l u_l.
- ``fastica``: scikit-learn ``FastICA`` (unit-variance whitening, the kurtosis contrast
  ``fun="cube"``, tol 1e-4, at most 2000 iterations, ``random_state = seed``; not converged:
  ConfigError) on the whitened top-L PCA
  codes above (the subspace FastICA's own whitening keeps, fitted in L dimensions):
  z = W P (x − μ) − W m;  x̂ = μ + P⁺ (A z + m), A = its mixing: z = W (x − μ) with W its unmixing matrix; x̂ = μ + A z, A = its mixing.
- ``oracle``: the dataset's readout directions g_k (``ds.oracle_directions()`` [K, D]: the
  pixel pattern that factor k's value scales, e.g. each toy blob): u_k = ⟨x − ½, g_k⟩,
  z_k = (u_k − mean u_k) / sd u_k; x̂: the least-squares affine map z -> x on the fit sample.
  L = K. The ceiling of a readout: each code is exactly the coefficient its factor drives
  (where another factor also scales the same pattern, as C scales B's blob in ``toy_context``,
  the code carries both, as the data do).

The decoder returns x̂ itself (the Gaussian recon's mean, not Bernoulli logits): a baseline's
config records ``recon = "gaussian"``.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError

# FastICA's contrast and stopping rule: the kurtosis contrast G(u) = u⁴/4 ("cube"), suited to the
# sub-Gaussian (uniform) factors of grid datasets (logcosh did not converge in 2000 iterations on
# dsprites' top 10 components; cube in 26); scikit-learn's default tolerance
FUN, TOL, MAX_ITER = "cube", 1e-4, 2000


def fit_sample(ds, n: int, seed: int) -> np.ndarray:
    """X [n, D] float64: ``n`` uniform grid images, flattened in (C, H, W) order."""
    rng = np.random.default_rng(seed)
    x = np.asarray(ds.render(ds.sample_factors(n, rng), rng=rng), dtype=np.float64)  # [n, H, W, C]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(n, -1)


def fit(kind: str, ds, latent_dim: int, n_fit: int, seed: int, threads: int | None = None) -> dict:
    """The affine maps of baseline ``kind`` on dataset ``ds`` (BLAS limited to ``threads`` while
    fitting; None: the process's setting).

    Returns {"enc_w": [L, D], "enc_b": [L], "dec_w": [D, L], "dec_b": [D], "recon": mean squared
    reconstruction error per image on the fit sample (Σ over pixels)}, all float64.
    """
    from ..threads import limit_threads

    with limit_threads(threads, blas_only=True):
        return _fit(kind, ds, int(latent_dim), n_fit, seed)


def _fit(kind: str, ds, L: int, n_fit: int, seed: int) -> dict:
    X = fit_sample(ds, n_fit, seed)
    mu = X.mean(axis=0)
    if kind in ("pca", "fastica"):
        from sklearn.decomposition import PCA

        p = PCA(n_components=L, random_state=seed).fit(X)  # randomized SVD where D is large (seeded)
        sd = np.sqrt(np.maximum(p.explained_variance_, np.finfo(np.float64).tiny))
        enc_w, dec_w, mu = p.components_ / sd[:, None], (p.components_ * sd[:, None]).T, p.mean_
        if kind == "fastica":
            return _with_recon(X, *_ica_on_whitened(X, enc_w, dec_w, mu, L, seed, ds.name, n_fit))
    elif kind == "oracle":
        g = oracle_directions(ds)
        if L != len(g):
            raise ConfigError(f"the oracle of {ds.name} has one code per readout direction ({len(g)}); "
                              f"latent_dim is {L}", param="latent_dim")
        u = (X - 0.5) @ g.T
        m, s = u.mean(axis=0), u.std(axis=0)
        s = np.where(s > 0, s, 1.0)
        enc_w = g / s[:, None]
        enc_b = -(0.5 * g.sum(axis=1) + m) / s
        Z = X @ enc_w.T + enc_b
        A = np.column_stack([Z, np.ones(len(Z))])
        coef = np.linalg.lstsq(A, X, rcond=None)[0]  # [L + 1, D]
        dec_w, dec_b = coef[:-1].T, coef[-1]
        return _with_recon(X, enc_w, enc_b, dec_w, dec_b)
    else:
        from .. import catalog

        raise ConfigError(f"baseline kind must be one of {', '.join(catalog.BASELINES)}, got {kind!r}",
                          param="baseline.kind")
    return _with_recon(X, enc_w, -enc_w @ mu, dec_w, mu)


def _ica_on_whitened(X, pca_w, pca_dec, mu, L: int, seed: int, name: str, n_fit: int):
    """FastICA in the whitened top-L principal subspace: Z = P (x − μ) (unit variance), s = W (Z − m)
    (scikit-learn ``FastICA`` on Z), so z = W P x − W P μ − W m and x̂ = μ + P⁺ (A s + m) with A its
    mixing. The same subspace and whitening as FastICA's own, at the cost of an L-dimensional fit."""
    import warnings

    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    Z = (X - mu) @ pca_w.T
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            ica = FastICA(n_components=L, whiten="unit-variance", fun=FUN, random_state=seed, max_iter=MAX_ITER,
                          tol=TOL).fit(Z)
        except ConvergenceWarning:
            raise ConfigError(f"fastica did not converge in {MAX_ITER} iterations (tol {TOL:g}) on {name} "
                              f"(latent_dim {L}, n_fit {n_fit}); try fewer latents") from None
    W, A, m = ica.components_, ica.mixing_, ica.mean_
    enc_w = W @ pca_w
    return enc_w, -enc_w @ mu - W @ m, pca_dec @ A, mu + pca_dec @ m


def _with_recon(X, enc_w, enc_b, dec_w, dec_b) -> dict:
    Z = X @ enc_w.T + enc_b
    err = float(np.mean(np.sum((Z @ dec_w.T + dec_b - X) ** 2, axis=1)))
    return {"enc_w": enc_w, "enc_b": enc_b, "dec_w": dec_w, "dec_b": dec_b, "recon": err}


def oracle_directions(ds) -> np.ndarray:
    """[K, D] float64: the readout direction of each factor (``ds.oracle_directions()``), in the
    networks' (C, H, W) flattening; ConfigError for a dataset that has none."""
    get = getattr(ds, "oracle_directions", None)
    if get is None:
        raise ConfigError(f"{ds.name} has no oracle readout (defined for the toy datasets whose images are "
                          f"½ + Σ_k coef_k·g_k: toy_linear, toy_blobs, toy_context)", param="baseline.kind")
    g = np.asarray(get(), dtype=np.float64)
    H, W, C = ds.image_shape
    return np.ascontiguousarray(g.reshape(len(g), H, W, C).transpose(0, 3, 1, 2)).reshape(len(g), -1)


def state_dict(maps: dict, latent_dim: int) -> dict:
    """The ``linear`` VAE's state dict (float32 tensors) holding ``maps``: the encoder's mean head
    is the fitted map, its log-variance head zero (the codes are deterministic)."""
    import torch

    L = int(latent_dim)
    D = maps["enc_w"].shape[1]
    w = np.zeros((2 * L, D))
    b = np.zeros(2 * L)
    w[:L], b[:L] = maps["enc_w"], maps["enc_b"]
    t = {"encoder.head.weight": w, "encoder.head.bias": b,
         "decoder.head.weight": maps["dec_w"], "decoder.head.bias": maps["dec_b"]}
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in t.items()}
