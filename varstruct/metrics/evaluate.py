"""``evaluate(model, ds)``: every disentanglement score of a model, as one labelled xr.Dataset.

The representation is the encoder mean on ``n_train`` train and ``n_test`` test points drawn
uniformly from the dataset's factor grid with ``np.random.default_rng(seed)`` (fresh nuisances
per image). Scores that need one set (MIG, IRS, unsupervised) use the train points. The
sampling-based scores draw their own points with the same seed: ``n_train`` training (and
FactorVAE variance-estimation) points and ``n_test`` evaluation points of 64-image batches, the
reference's 10,000 / 5,000 by default. The result follows the one result schema
(:mod:`varstruct.schema`, docs/results.md); the scores are defined in docs/measures.md#scores.
``active_mig`` is MIG with the latents whose mean KL to the prior on the train points
(``latent_kl``) is below ``active_threshold`` held constant; it needs a model with
``encode(x) -> (mean, logvar)``.
"""
from __future__ import annotations

import numpy as np

from .. import catalog
from ..errors import VarstructError
from ..progress import ProgressArg, progress_bar
from ..validate import check_float, check_int, check_seed
from .dci import SCORERS as _DCI
from .irs import SCORERS as _IRS
from .mig import SCORERS as _MIG, latent_kl
from .modularity import SCORERS as _MODULARITY
from .registry import CODES, KL, TEST_CODES, TEST_POINTS, ScoreContext
from .sampling import SCORERS as _SAMPLING
from .sap import SCORERS as _SAP
from .unsupervised import SCORERS as _UNSUPERVISED

METRICS = catalog.METRICS
# metric name -> its Scorer (varstruct.metrics.registry), in METRICS order
REGISTRY = {s.name: s for s in (*_MIG, *_DCI, *_SAP, *_MODULARITY, *_IRS, *_UNSUPERVISED, *_SAMPLING)}
REGISTRY = {name: REGISTRY[name] for name in METRICS}
CHUNK = 1024  # images rendered + encoded per call
ACTIVE_THRESHOLD = 0.05  # mean KL (nats) below which a latent counts as inactive for active_mig


def check_metrics(metrics) -> list[str]:
    """None -> every metric; otherwise the names, checked (VarstructError naming the unknown ones)."""
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",") if m.strip()]
    metrics = [m.strip() for m in metrics]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise VarstructError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    if not metrics:
        raise VarstructError("no metric given")
    return list(dict.fromkeys(metrics))


def encoder_of(model):
    """``encode(images [B, H, W, C]) -> codes [B, L]``: the encoder mean of a model with
    ``encode(x) -> (mean, logvar)`` (:func:`varstruct.tensors.mean_encoder`: batched, in the
    model's dtype and on its device, fp32 codes), or ``model`` itself if it is such a function."""
    if hasattr(model, "encode"):
        from ..tensors import mean_encoder
        return mean_encoder(model)
    if callable(model):
        return model
    raise VarstructError("model must have encode(x) -> (mean, logvar) or be a function images -> codes")


def representation(ds, encode, n: int, rng: np.random.Generator):
    """(codes float64 [n, L], factors int64 [n, K]) for n uniform grid points."""
    factors = ds.sample_factors(n, rng)
    codes = []
    for s in range(0, n, CHUNK):
        idx = factors[s:s + CHUNK]
        z = np.asarray(encode(ds.render(idx, rng=rng)), dtype=np.float64)
        if z.ndim != 2 or z.shape[0] != len(idx):
            raise VarstructError(f"encode returned shape {z.shape} for {len(idx)} images (expected [B, L])")
        codes.append(z)
    codes = np.concatenate(codes)
    if not np.all(np.isfinite(codes)):
        raise VarstructError("the model's codes contain NaN or infinite values")
    return codes, factors


def _kl_recording_encoder(model):
    """Like :func:`varstruct.tensors.mean_encoder` (same batches, same codes), and also keeps
    each call's KL(N(mean, e^logvar) || N(0, 1)) summed over points per latent in ``.kl``."""
    from ..tensors import encode_batches

    sums = []

    def encode(images):
        mean, logvar = encode_batches(model, images)
        if logvar is None:
            raise VarstructError("active_mig needs a model whose encode(x) returns (mean, logvar)")
        sums.append(latent_kl(mean, logvar) * len(mean))
        return mean
    encode.kl = sums
    return encode


def evaluate(model, ds, metrics=None, seed: int = 0, n_train: int = 10000, n_test: int = 5000,
             progress: ProgressArg = False, n_jobs: int | None = None, threads: int | None = None,
             active_threshold: float = ACTIVE_THRESHOLD):
    """Scores of ``model`` (an encoder module, or a function images -> codes) on dataset ``ds``.

    Returns an xr.Dataset: scalar scores (``mig``, ``dci_disentanglement``, ``sap``, ...),
    per-factor scores (dim ``factor``), per-code scores (dim ``latent``) and the DCI
    ``dci_importance`` matrix (dims ``latent``, ``factor``); the provenance attrs of
    docs/results.md plus metrics, points_train, points_test (and ``active_threshold`` with
    active_mig; with ``metrics=None`` a plain function of images skips active_mig). ``threads``: torch and BLAS threads
    for this call (None: the process's setting), restored after; ``n_jobs``: workers of the
    metrics' thread pools (default: ``threads``, else every core). ``progress``: False, True (a
    bar) or a :class:`varstruct.progress.Progress` callback (one unit per metric, plus the
    encoding of the train and of the test points).
    """
    from ..threads import limit_threads

    with limit_threads(threads):
        return _evaluate(model, ds, metrics, seed, n_train, n_test, progress,
                         threads if n_jobs is None else n_jobs, active_threshold)


def _evaluate(model, ds, metrics, seed, n_train, n_test, progress, n_jobs, active_threshold):
    import xarray as xr

    given = metrics is not None
    metrics = check_metrics(metrics)
    if not hasattr(model, "encode"):
        needs_kl = [m for m in metrics if KL in REGISTRY[m].needs]
        if needs_kl and given:
            raise VarstructError(f"{needs_kl[0]} needs a model with encode(x) -> (mean, logvar), "
                                 "not a function of images")
        metrics = [m for m in metrics if m not in needs_kl]
    scorers = [REGISTRY[m] for m in metrics]
    needs = set().union(*(s.needs for s in scorers))
    active_threshold = check_float("active_threshold", active_threshold, 0)
    seed = check_seed("seed", seed)
    n_train = check_int("n_train", n_train, 2)
    n_test = check_int("n_test", n_test, 1 if needs & {TEST_CODES, TEST_POINTS} else 0)
    encode = encoder_of(model)
    rng = np.random.default_rng(seed)
    out: dict[str, tuple] = {}
    with progress_bar(progress, len(scorers) + 2, "evaluate") as advance:
        advance(0, "encoding train points")
        codes = factors = ctest = ftest = kl = None
        if needs & {CODES, KL}:
            kl_encode = _kl_recording_encoder(model) if KL in needs else None
            codes, factors = representation(ds, kl_encode or encode, n_train, rng)
            if kl_encode is not None:
                kl = np.sum(kl_encode.kl, axis=0) / n_train
        advance(1, "encoding test points")
        if TEST_CODES in needs:
            ctest, ftest = representation(ds, encode, n_test, rng)
        ctx = ScoreContext(ds=ds, encode=encode, seed=seed, n_train=n_train, n_test=n_test, n_jobs=n_jobs,
                           active_threshold=active_threshold, codes=codes, factors=factors,
                           codes_test=ctest, factors_test=ftest, kl=kl)
        advance(1)
        for scorer in scorers:
            advance(0, scorer.name)
            values = scorer.score(ctx)
            if set(values) != set(scorer.variables):
                raise RuntimeError(f"{scorer.name} returned {sorted(values)}, declared {sorted(scorer.variables)}")
            out.update((k, (var.dims, values[k])) for k, var in scorer.variables.items())
            advance(1)
    coords = {"factor": list(ds.factor_names)}
    if codes is not None:
        coords["latent"] = np.arange(codes.shape[1])
    result = xr.Dataset({k: (dims, np.asarray(v)) for k, (dims, v) in out.items()}, coords=coords)
    result = _stamp(result, ds, scorers, seed, n_train, n_test)
    if any(KL in s.needs for s in scorers):
        result.attrs["active_threshold"] = active_threshold
    return result


def _stamp(result, ds, scorers, seed, n_train, n_test):
    from ..schema import call_string, describe, provenance

    describe(result, {k: (v.long_name, v.units, s.anchor) for s in scorers for k, v in s.variables.items()})
    describe(result, {"factor": ("factor", None, None), "latent": ("latent (code) index", None, None)})
    metrics = [s.name for s in scorers]
    return provenance(
        result, title="varstruct disentanglement scores", dataset=ds.name, dataset_params=ds.params, seed=seed,
        command=call_string("varstruct.evaluate", ds=ds.name, metrics=",".join(metrics), seed=int(seed),
                            n_train=n_train, n_test=n_test),
        metrics=",".join(metrics), points_train=n_train, points_test=n_test,
        metric_reference="disentanglement_lib (Locatello et al. 2019) metric definitions")
