"""Model measures (docs/measures.md#model-measures): which latent encodes which factor, where, and how consistently.

``measure_model(model, ds)`` works on any object with

- ``encode(x) -> (mean, logvar)``: x float [B, C, H, W] in [0, 1] (PyTorch layout), mean and
  logvar [B, L]; a deterministic autoencoder sets ``model.deterministic = True`` (its logvar is
  ignored; ``None`` is accepted too) and its active latents are those with latent_variance > 1e-4;
- ``decode(z) -> logits``: z [B, L] -> [B, C, H, W].

Both must be batch-wise and differentiable (torch.func transforms them). To measure an encoder
of your own, wrap it::

    class Wrapped(torch.nn.Module):
        def __init__(self, enc, dec):
            super().__init__()
            self.enc, self.dec = enc, dec
        def encode(self, x):             # x [B, C, H, W]
            h = self.enc(x)              # e.g. [B, 2L]
            return h[:, :L], h[:, L:]    # mean, logvar
        def decode(self, z):
            return self.dec(z)           # logits [B, C, H, W]

    varstruct.measure_model(Wrapped(enc, dec).eval(), varstruct.datasets.get("dsprites"))

Computation: anchors ``grid.sample_anchors(ds, n_anchors, seed)`` (the same for every model of a
dataset) with nuisances frozen per anchor; latent statistics from ``n_variance`` images drawn
with seed [seed, 2]; the decoder Jacobian at μ(x) for the first ``n_decoder`` of those images.
The encoder runs in the model's own dtype and on its device (:func:`varstruct.tensors.encode_batches`;
never bf16: the responses and Jacobians stay in full precision). The result follows the one
result schema of :mod:`varstruct.schema` (docs/results.md).
"""
from __future__ import annotations


import numpy as np
import torch
import xarray as xr

from .. import catalog
from . import encoding as enc
from . import grid
from ..errors import VarstructError
from ..progress import ProgressArg, progress_bar
from ..schema import call_string, describe, provenance, to_json
from ..tensors import encode_batches, images_to_model
from ..threads import limit_threads
from ..validate import check_choice, check_int, check_seed
from .jacobian import decoder_cosines, encoder_jvp

ACTIVE_POSTERIOR_VARIANCE = 0.8
ACTIVE_LATENT_VARIANCE = 1e-4  # deterministic models
RESPONSES = catalog.RESPONSES
RENDER_CHUNK = 1024  # images rendered at once for the traversals


def _check_model(model, ds) -> int:
    """Raise VarstructError unless model encodes ds's images to [1, L] and decodes back to D values; return L."""
    for name in ("encode", "decode"):
        if not callable(getattr(model, name, None)):
            raise VarstructError(f"model has no {name}() method (see varstruct.measures.model for the interface)")
    shape = "x".join(map(str, ds.image_shape))
    cfg = getattr(model, "config", None)
    if isinstance(cfg, dict) and cfg.get("image_shape") is not None and \
            tuple(int(v) for v in cfg["image_shape"]) != tuple(ds.image_shape):
        theirs = "x".join(str(v) for v in cfg["image_shape"])
        raise VarstructError(f"model was trained on {theirs} images but dataset {ds.name} renders {shape}")
    x = images_to_model(model, ds.render(ds.sample_factors(2, 0), rng=0))
    try:
        with torch.no_grad():
            mean, logvar = model.encode(x)
            out = model.decode(mean)
    except (RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise VarstructError(f"model cannot encode/decode {ds.name} images ({shape}): {first}") from None
    if mean.ndim != 2 or mean.shape[0] != 2:
        raise VarstructError(f"model.encode must return mean [B, L]; got shape {tuple(mean.shape)}")
    if logvar is not None and tuple(logvar.shape) != tuple(mean.shape):
        raise VarstructError(f"model.encode returned logvar {tuple(logvar.shape)} for mean {tuple(mean.shape)}")
    if out.shape[0] != 2 or out[0].numel() != ds.n_pixels:
        raise VarstructError(f"model.decode returns {tuple(out.shape[1:])} per image, dataset {ds.name} has {shape}")
    return int(mean.shape[1])


def _check_args(ds, n_anchors, response, n_variance, n_decoder, batch_size, anchors):
    check_choice("response", response, RESPONSES)
    if anchors is None:
        check_int("n_anchors", n_anchors, 1)
    n_variance = check_int("n_variance", n_variance, 2)
    check_int("n_decoder", n_decoder, 1, n_variance)
    check_int("batch_size", batch_size, 1)
    if anchors is not None:
        anchors = ds.validate_indices(anchors)
        if not len(anchors):
            raise VarstructError("anchors must hold at least one anchor")
    return anchors


def latent_statistics(model, images: np.ndarray, deterministic: bool, batch_size: int = 256):
    """(mean codes [N, L], latent_variance [L], posterior_variance [L], active [L]) for images [N, H, W, C].

    latent_variance = Var_x μ_l(x) (ddof 0); posterior_variance = mean_x exp(s_l(x)) (NaN for a
    deterministic model); active = posterior_variance < 0.8, or latent_variance > 1e-4 when
    deterministic (or when encode returns no logvar)."""
    mu, logvar = encode_batches(model, images, batch_size)
    lat_var = mu.var(axis=0)
    if deterministic or logvar is None:
        post_var = np.full(mu.shape[1], np.nan)
        active = lat_var > ACTIVE_LATENT_VARIANCE
    else:
        post_var = np.exp(logvar).mean(axis=0)
        active = post_var < ACTIVE_POSTERIOR_VARIANCE
    return mu, lat_var, post_var, active


def traversal_response(model, ds, anchors, nuisance, latent_variance, active, batch_size=256, advance=None):
    """Var_t μ_l(X_j(c_a))[t] / latent_variance_l for active l with latent_variance_l > 0, else 0
    -> (float64 [A, K, L], and the dataset's V [A, K] of ``grid.traversal_variance`` from the same
    rendered traversals)."""
    A, K, L = len(anchors), ds.num_factors, len(latent_variance)
    R, V = np.zeros((A, K, L)), np.zeros((A, K))
    scale = np.where(active & (latent_variance > 0), 1.0 / np.where(latent_variance > 0, latent_variance, 1.0), 0.0)
    for j in range(K):
        n_j = int(ds.factor_sizes[j])
        per = max(1, RENDER_CHUNK // n_j)
        for s in range(0, A, per):
            sl = slice(s, min(s + per, A))
            nz = None if nuisance is None else nuisance[sl]
            X = grid.render_traversal(ds, anchors[sl], j, nz)  # [a, n_j, H, W, C]
            a = X.shape[0]
            V[sl, j] = grid.traversal_spread(X)
            mu, _ = encode_batches(model, X.reshape((a * n_j,) + X.shape[2:]), batch_size)
            R[sl, j] = mu.reshape(a, n_j, L).var(axis=1) * scale
            if advance:
                advance(a * n_j)
    return R, V


def jacobian_response(model, ds, anchors, nuisance, n_latents: int, batch_size=256, advance=None):
    """|J_μ(g(c_a)) · d_j(c_a)| by forward-mode autograd -> float64 [A, K, L]; NaN for categorical
    factors. d_j is ``grid.factor_directions`` (central differences, one-sided at borders)."""
    A, K = len(anchors), ds.num_factors
    cols = [j for j in range(K) if ds.factor_types[j] != "categorical"]
    out = np.full((A, K, int(n_latents)), np.nan)
    if not cols:
        return out
    per = max(1, int(batch_size) // len(cols))  # anchors per call: batch_size (anchor, direction) pairs
    for s in range(0, A, per):
        sl = slice(s, min(s + per, A))
        nz = None if nuisance is None else nuisance[sl]
        x = grid.render_at(ds, anchors[sl][:, None, :], nz)[:, 0]  # [a, H, W, C]
        d = grid.factor_directions(ds, anchors[sl], nz)[:, cols]  # [a, K_o, D]
        out[sl][:, cols] = np.abs(encoder_jvp(model, x, d, batch_size))  # [a, K_o, L]
        if advance:
            advance(len(x) * len(cols))
    return out


def measure_model(model, ds, n_anchors: int = 200, seed: int = 0, response: str = "traversal",
                  n_variance: int = 10000, n_decoder: int = 1000, progress: ProgressArg = False,
                  batch_size: int = 256, anchors: np.ndarray | None = None, threads: int | None = None) -> xr.Dataset:
    """Every model measure of docs/measures.md#model-measures for ``model`` on dataset ``ds`` -> xr.Dataset.

    Dims anchor [A], factor [K], latent [L], angle_bin [18]. ``response`` ('traversal' or
    'jacobian') feeds encoding_dim and everything computed from it; both responses are stored.
    The chosen response is used as stored (the traversal response is 0 on inactive latents; the
    Jacobian response is not masked). encoding_dim is -1 where it is undefined (NaN or all-zero
    response, e.g. categorical factors under the Jacobian response) and such cells are left out
    of the counts.
    ``anchors`` (int [A, K]) overrides the seeded anchor draw. ``batch_size`` bounds images per
    encoder call and (image, direction) pairs per Jacobian call (256 suits one or two CPU threads;
    larger batches pay off with more threads or a GPU). ``threads``: torch and BLAS threads for
    this call (None: the process's setting), restored after. ``progress``: False, True (a bar) or a
    :class:`varstruct.progress.Progress` callback. Raises VarstructError for bad input.
    The result carries the provenance attrs of docs/results.md plus response, n_variance,
    n_decoder, deterministic (0/1), model_config (JSON) and the rules used.
    """
    anchors = _check_args(ds, n_anchors, response, n_variance, n_decoder, batch_size, anchors)
    seed = check_seed("seed", seed)
    anchors_given = anchors is not None
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    try:
        with limit_threads(threads):
            L = _check_model(model, ds)
            if anchors is None:
                anchors = grid.sample_anchors(ds, int(n_anchors), seed)
            A = len(anchors)
            nuisance = grid.anchor_nuisance(ds, A, seed)
            k_o = sum(t != "categorical" for t in ds.factor_types)
            total = int(n_variance + A * ds.factor_sizes.sum() + A * k_o + n_decoder)
            with progress_bar(progress, total, "latent statistics") as advance:
                _, images = ds.sample(int(n_variance), np.random.default_rng([int(seed), 2]))
                deterministic = bool(getattr(model, "deterministic", False))
                mu, lat_var, post_var, active = latent_statistics(model, images, deterministic, batch_size)
                deterministic = deterministic or np.isnan(post_var).all()
                advance(int(n_variance), "traversal responses")
                R_tr, V = traversal_response(model, ds, anchors, nuisance, lat_var, active, batch_size, advance)
                advance(0, "Jacobian responses")
                R_jac = jacobian_response(model, ds, anchors, nuisance, L, batch_size, advance)
                advance(0, "decoder Jacobians")
                lat = np.flatnonzero(active)
                C = decoder_cosines(model, mu[:int(n_decoder)], lat, batch_size) if len(lat) >= 2 \
                    else np.zeros((int(n_decoder), len(lat), len(lat)))
                advance(int(n_decoder))
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    R = R_tr if response == "traversal" else R_jac
    out = _assemble(ds, anchors, R_tr, R_jac, R, V, lat_var, post_var, active, C, bool(deterministic))
    cfg = getattr(model, "config", None)
    return _stamp(out, ds, A, seed, response, int(n_variance), int(n_decoder), bool(deterministic),
                  to_json(cfg) if cfg is not None else None, anchors_given)


def _assemble(ds, anchors, R_tr, R_jac, R, V, lat_var, post_var, active, C, deterministic) -> xr.Dataset:
    A, _, L = R.shape
    dim = enc.encoding_dim(R)
    n_active = int(active.sum())
    purity = enc.encoding_purity(R)
    incons = enc.encoding_inconsistency(dim)
    entropy = enc.encoding_entropy(dim, n_active)
    disc = enc.discordance_effect(dim, V)
    edges = enc.ANGLE_EDGES
    AKL, AK = ("anchor", "factor", "latent"), ("anchor", "factor")
    out = xr.Dataset(
        {
            "latent_variance": ("latent", lat_var),
            "posterior_variance": ("latent", post_var),
            "active": ("latent", active.astype(bool)),
            "traversal_response": (AKL, R_tr),
            "jacobian_response": (AKL, R_jac),
            "encoding_dim": (AK, dim),
            "encoding_purity": (AK, purity),
            "encoding_mode": ("factor", enc.encoding_mode(dim)),
            "encoding_inconsistency": ("factor", incons),
            "encoding_entropy": ("factor", entropy),
            "encoding_collision": ((), enc.encoding_collision(dim)),
            "discordance_effect": ("factor", disc),
            "discordant_fraction": ("factor", enc.discordant(V).mean(0)),
            "decoder_orthogonality": ((), enc.decoder_orthogonality(C)),
            "decoder_angles": ("angle_bin", enc.decoder_angles(C)),
            "n_active": ((), n_active),
        },
        coords={
            "anchor": np.arange(A),
            "factor": list(ds.factor_names),
            "latent": np.arange(L),
            "angle_bin": edges[:-1],
            "angle_lo": ("angle_bin", edges[:-1]),
            "angle_hi": ("angle_bin", edges[1:]),
            "factor_type": ("factor", list(ds.factor_types)),
            "factor_size": ("factor", np.asarray(ds.factor_sizes, dtype=np.int64)),
            "anchor_factors": (AK, np.asarray(anchors, dtype=np.int64)),
        },
    )
    with np.errstate(invalid="ignore"):
        for name in ("encoding_inconsistency", "encoding_entropy", "discordance_effect", "encoding_purity"):
            v = out[name].values
            out[f"{name}_mean"] = ((), float(np.nanmean(v)) if np.isfinite(v).any() else np.nan)
    out["decoder_angles"].attrs["comment"] = "fraction of (image, latent pair) angles per 5 degree bin"
    out.attrs.update(
        active_rule=(f"latent_variance > {ACTIVE_LATENT_VARIANCE}" if deterministic
                     else f"posterior_variance < {ACTIVE_POSTERIOR_VARIANCE}"),
        direction_scheme="central", freeze_nuisance=1, encoding_dim_undefined=enc.UNDEFINED,
        discordance_min_anchors=enc.DISCORDANCE_MIN_ANCHORS, decoder_angles_normalisation="fraction of pairs",
        summary_means="nanmean over factors (encoding_purity_mean: over anchors and factors)",
    )
    return out


# variable -> (long_name, units, docs/measures.md anchor)
VARIABLES = {
    "latent_variance": ("variance of the encoder mean over images", "1", "latent_variance"),
    "posterior_variance": ("mean posterior variance exp(logvar)", "1", "posterior_variance"),
    "active": ("latent is active (1) or collapsed (0)", None, "active"),
    "traversal_response": ("response of each latent to a factor traversal (normalised variance)", "1",
                           "traversal_response"),
    "jacobian_response": ("|encoder Jacobian x factor direction|", "1", "jacobian_response"),
    "encoding_dim": ("latent encoding the factor at the anchor (-1: undefined)", None, "encoding_dim"),
    "encoding_purity": ("share of the response in the largest latent", "1", "encoding_purity"),
    "encoding_mode": ("most frequent encoding latent over anchors (-1: undefined)", None, "encoding_mode"),
    "encoding_inconsistency": ("fraction of anchors whose encoding latent is not the mode", "1",
                               "encoding_inconsistency"),
    "encoding_entropy": ("normalised entropy of the encoding latent over anchors", "1", "encoding_entropy"),
    "encoding_collision": ("mean share of factors sharing a latent with another factor locally", "1",
                           "encoding_collision"),
    "discordance_effect": ("inconsistency on discordant minus concordant anchors", "1", "discordance_effect"),
    "discordant_fraction": ("fraction of anchors where the factor's local variance rank differs from its global rank",
                            "1", "discordant_fraction"),
    "decoder_orthogonality": ("1 - mean |cosine| between decoder Jacobian columns", "1", "decoder_orthogonality"),
    "decoder_angles": ("histogram of angles between decoder Jacobian columns", "1", "decoder_angles"),
    "n_active": ("number of active latents", "1", "active"),
    "encoding_inconsistency_mean": ("mean encoding inconsistency over factors", "1", "encoding_inconsistency"),
    "encoding_entropy_mean": ("mean encoding entropy over factors", "1", "encoding_entropy"),
    "discordance_effect_mean": ("mean discordance effect over factors", "1", "discordance_effect"),
    "encoding_purity_mean": ("mean encoding purity over anchors and factors", "1", "encoding_purity"),
}
COORDS = {
    "anchor": ("anchor index", None, None),
    "factor": ("ground-truth factor", None, None),
    "latent": ("latent index", None, None),
    "angle_bin": ("angle bin (lower edge)", "degree", None),
    "angle_lo": ("lower edge of the angle bin", "degree", None),
    "angle_hi": ("upper edge of the angle bin", "degree", None),
    "factor_type": ("factor type (ordinal, circular, categorical)", None, None),
    "factor_size": ("number of values of the factor", None, None),
    "anchor_factors": ("factor indices of each anchor on the factor grid", None, None),
}


def _stamp(out, ds, A, seed, response, n_variance, n_decoder, deterministic, model_config, anchors_given):
    describe(out, VARIABLES)
    describe(out, COORDS)
    return provenance(
        out, title="varstruct model measures", dataset=ds.name, dataset_params=ds.params, seed=seed, n_anchors=A,
        command=call_string("varstruct.measure_model", ds=ds.name, n_anchors=A, seed=seed, response=response,
                            n_variance=n_variance, n_decoder=n_decoder),
        response=response, n_variance=n_variance, n_decoder=n_decoder, deterministic=deterministic,
        anchors=("given by the caller" if anchors_given else "uniform on the factor grid, rng seed [seed, 0]")
        + "; frozen nuisances seed [seed, 1]; latent statistics images seed [seed, 2]",
        model_config=model_config)
