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

import contextlib

import numpy as np

from .. import catalog
from ..errors import VarstructError
from ..validate import check_float, check_int, check_seed
from .dci import dci
from .irs import irs_details
from .mig import active_mig_per_factor, latent_kl, mig_per_factor
from .modularity import modularity_explicitness
from .sampling import beta_vae_score, factor_vae_score
from .sap import sap_per_factor
from .unsupervised import unsupervised_scores

METRICS = catalog.METRICS
_NEEDS_TEST = set(catalog.METRICS_WITH_TEST)
_NEEDS_CODES = set(catalog.METRICS_ON_CODES)
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


@contextlib.contextmanager
def _steps(enabled: bool, total: int):
    if not enabled:
        yield lambda text: None
        return
    from rich.progress import Progress
    with Progress(transient=True) as bar:
        task = bar.add_task("evaluate", total=total)
        first = [True]

        def step(text):
            if not first[0]:
                bar.advance(task)
            first[0] = False
            bar.update(task, description=text)
        yield step
        bar.advance(task)


def evaluate(model, ds, metrics=None, seed: int = 0, n_train: int = 10000, n_test: int = 5000,
             progress: bool = False, n_jobs: int | None = None, threads: int | None = None,
             active_threshold: float = ACTIVE_THRESHOLD):
    """Scores of ``model`` (an encoder module, or a function images -> codes) on dataset ``ds``.

    Returns an xr.Dataset: scalar scores (``mig``, ``dci_disentanglement``, ``sap``, ...),
    per-factor scores (dim ``factor``), per-code scores (dim ``latent``) and the DCI
    ``dci_importance`` matrix (dims ``latent``, ``factor``); the provenance attrs of
    docs/results.md plus metrics, points_train, points_test (and ``active_threshold`` with
    active_mig; with ``metrics=None`` a plain function of images skips active_mig). ``threads``: torch and BLAS threads
    for this call (None: the process's setting), restored after; ``n_jobs``: workers of the
    metrics' thread pools (default: ``threads``, else every core).
    """
    from ..tensors import limit_threads

    with limit_threads(threads):
        return _evaluate(model, ds, metrics, seed, n_train, n_test, progress,
                         threads if n_jobs is None else n_jobs, active_threshold)


def _evaluate(model, ds, metrics, seed, n_train, n_test, progress, n_jobs, active_threshold):
    import xarray as xr

    given = metrics is not None
    metrics = check_metrics(metrics)
    if "active_mig" in metrics and not hasattr(model, "encode"):
        if given:
            raise VarstructError("active_mig needs a model with encode(x) -> (mean, logvar), not a function of images")
        metrics.remove("active_mig")
    active_threshold = check_float("active_threshold", active_threshold, 0)
    seed = check_seed("seed", seed)
    n_train = check_int("n_train", n_train, 2)
    needs_test = bool((_NEEDS_TEST | (set(METRICS) - _NEEDS_CODES)) & set(metrics))  # the sampled ones test too
    n_test = check_int("n_test", n_test, 1 if needs_test else 0)
    encode = encoder_of(model)
    rng = np.random.default_rng(seed)
    out: dict[str, tuple] = {}
    with _steps(progress, len(metrics) + 2) as step:
        step("encoding train points")
        codes = factors = ctest = ftest = None
        if _NEEDS_CODES & set(metrics):
            kl_encode = _kl_recording_encoder(model) if "active_mig" in metrics else None
            codes, factors = representation(ds, kl_encode or encode, n_train, rng)
        step("encoding test points")
        if _NEEDS_TEST & set(metrics):
            ctest, ftest = representation(ds, encode, n_test, rng)
        for name in metrics:
            step(name)
            if name == "mig":
                per = mig_per_factor(codes, factors)
                out["mig"] = ((), float(np.mean(per)))
                out["mig_per_factor"] = (("factor",), per)
            elif name == "active_mig":
                kl = np.sum(kl_encode.kl, axis=0) / n_train
                per = active_mig_per_factor(codes, factors, kl, active_threshold)
                out["active_mig"] = ((), float(np.mean(per)))
                out["active_mig_per_factor"] = (("factor",), per)
                out["latent_kl"] = (("latent",), kl)
            elif name == "dci":
                r = dci(codes, factors, ctest, ftest, n_jobs=n_jobs)
                for key in ("disentanglement", "completeness", "informativeness_train",
                            "informativeness_test"):
                    out[f"dci_{key}"] = ((), r[key])
                out["dci_disentanglement_per_code"] = (("latent",), r["disentanglement_per_code"])
                for key in ("completeness_per_factor", "informativeness_train_per_factor",
                            "informativeness_test_per_factor"):
                    out[f"dci_{key}"] = (("factor",), r[key])
                out["dci_importance"] = (("latent", "factor"), r["importance_matrix"])
            elif name == "sap":
                per = sap_per_factor(codes, factors, ctest, ftest, n_jobs=n_jobs)
                out["sap"] = ((), float(np.mean(per)))
                out["sap_per_factor"] = (("factor",), per)
            elif name == "modularity_explicitness":
                r = modularity_explicitness(codes, factors, ctest, ftest, n_jobs=n_jobs)
                for key in ("modularity", "explicitness_train", "explicitness_test"):
                    out[key] = ((), r[key])
                out["modularity_per_code"] = (("latent",), r["modularity_per_code"])
                out["explicitness_test_per_factor"] = (("factor",), r["explicitness_test_per_factor"])
            elif name == "irs":
                r = irs_details(codes, factors)
                out["irs"] = ((), r["irs"])
                out["irs_num_active_dims"] = ((), r["num_active_dims"])
                out["irs_per_code"] = (("latent",), r["per_code"])
            elif name == "unsupervised":
                for key, v in unsupervised_scores(codes).items():
                    out[key] = ((), v)
            elif name == "beta_vae":
                r = beta_vae_score(ds, encode, seed=seed, n_train=n_train, n_eval=n_test)
                out["beta_vae_train_accuracy"] = ((), r["train_accuracy"])
                out["beta_vae_eval_accuracy"] = ((), r["eval_accuracy"])
            elif name == "factor_vae":
                r = factor_vae_score(ds, encode, seed=seed, n_train=n_train, n_eval=n_test,
                                     n_variance=n_train)
                out["factor_vae_train_accuracy"] = ((), r["train_accuracy"])
                out["factor_vae_eval_accuracy"] = ((), r["eval_accuracy"])
                out["factor_vae_num_active_dims"] = ((), r["num_active_dims"])
    coords = {"factor": list(ds.factor_names)}
    if codes is not None:
        coords["latent"] = np.arange(codes.shape[1])
    result = xr.Dataset({k: (dims, np.asarray(v)) for k, (dims, v) in out.items()}, coords=coords)
    result = _stamp(result, ds, metrics, seed, n_train, n_test)
    if "active_mig" in metrics:
        result.attrs["active_threshold"] = active_threshold
    return result


# The scores' schema: variable -> (long_name, units); docs/measures.md anchor = the metric's name.
SCORES = {
    "mig": ("mutual information gap", "1"),
    "mig_per_factor": ("mutual information gap per factor", "1"),
    "active_mig": ("mutual information gap over the active latents", "1"),
    "active_mig_per_factor": ("active-latent MIG per factor", "1"),
    "latent_kl": ("mean KL of each latent's posterior to the prior", "nat"),
    "dci_disentanglement": ("DCI disentanglement", "1"),
    "dci_completeness": ("DCI completeness", "1"),
    "dci_informativeness_train": ("DCI informativeness (train accuracy)", "1"),
    "dci_informativeness_test": ("DCI informativeness (test accuracy)", "1"),
    "dci_disentanglement_per_code": ("DCI disentanglement per code", "1"),
    "dci_completeness_per_factor": ("DCI completeness per factor", "1"),
    "dci_informativeness_train_per_factor": ("DCI train accuracy per factor", "1"),
    "dci_informativeness_test_per_factor": ("DCI test accuracy per factor", "1"),
    "dci_importance": ("DCI importance of each code for each factor", "1"),
    "sap": ("separated attribute predictability", "1"),
    "sap_per_factor": ("SAP per factor", "1"),
    "modularity": ("modularity", "1"),
    "explicitness_train": ("explicitness (train AUC)", "1"),
    "explicitness_test": ("explicitness (test AUC)", "1"),
    "modularity_per_code": ("modularity per code", "1"),
    "explicitness_test_per_factor": ("explicitness (test AUC) per factor", "1"),
    "irs": ("interventional robustness score", "1"),
    "irs_num_active_dims": ("IRS active codes", "1"),
    "irs_per_code": ("IRS per code", "1"),
    "gaussian_total_correlation": ("Gaussian total correlation", "nat"),
    "gaussian_wasserstein_correlation": ("Gaussian Wasserstein correlation", None),
    "gaussian_wasserstein_correlation_norm": ("normalised Gaussian Wasserstein correlation", "1"),
    "mutual_info_score": ("mean pairwise mutual information of the codes", "nat"),
    "beta_vae_train_accuracy": ("BetaVAE score (train accuracy)", "1"),
    "beta_vae_eval_accuracy": ("BetaVAE score (evaluation accuracy)", "1"),
    "factor_vae_train_accuracy": ("FactorVAE score (train accuracy)", "1"),
    "factor_vae_eval_accuracy": ("FactorVAE score (evaluation accuracy)", "1"),
    "factor_vae_num_active_dims": ("FactorVAE active codes", "1"),
}
_FAMILY = {"modularity": "modularity_explicitness", "explicitness": "modularity_explicitness",
           "gaussian": "unsupervised", "mutual_info_score": "unsupervised", "latent_kl": "active_mig"}


# headings of docs/measures.md#scores: one per metric, named as the metric
SCORE_ANCHORS = METRICS


def score_anchor(name: str) -> str:
    """The docs/measures.md anchor of a score variable: its metric family's heading (the longest
    documented prefix), else the ``scores`` section."""
    for prefix, anchor in _FAMILY.items():
        if name.startswith(prefix):
            return anchor
    match = [a for a in SCORE_ANCHORS if name == a or name.startswith(a + "_")]
    return max(match, key=len) if match else "scores"


def _stamp(result, ds, metrics, seed, n_train, n_test):
    from ..schema import call_string, describe, provenance

    spec = {k: (*SCORES.get(k, (k.replace("_", " "), "1")), score_anchor(k)) for k in result.data_vars}
    describe(result, spec)
    describe(result, {"factor": ("factor", None, None), "latent": ("latent (code) index", None, None)})
    return provenance(
        result, title="varstruct disentanglement scores", dataset=ds.name, dataset_params=ds.params, seed=seed,
        command=call_string("varstruct.evaluate", ds=ds.name, metrics=",".join(metrics), seed=int(seed),
                            n_train=n_train, n_test=n_test),
        metrics=",".join(metrics), points_train=n_train, points_test=n_test,
        metric_reference="disentanglement_lib (Locatello et al. 2019) metric definitions")
