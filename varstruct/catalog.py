"""The one catalog of varstruct's names and bounds (torch-free: imports only ``errors`` and ``validate``).

Every table of names the library, the CLI, the study specs and the memory estimates use lives
here, once: the training methods (for each its hyper-parameters with defaults and bounds,
whether it is deterministic, whether it trains on pairs), the metrics, the precisions, the
architectures, the reconstruction losses, the mask modes and the model-measure responses.
Modules that implement them (objectives, networks, masks, metrics) import their names from here;
nothing else holds a copy.

A hyper-parameter (:class:`HParam`) is a finite number in its bounds (``kind`` "float": an int
is taken as a float; "int": an integer, an integral float taken as an int), ``k`` ("int or
random": an integer >= 1 or the string "random") or ``names`` (None or a non-empty list of
distinct non-empty strings). Booleans and numeric strings are never numbers. A hyper-parameter
with ``derived = (other, factor)`` defaults to ``factor * other`` when left None (DIP-VAE's
λ_d); ``omit_none`` ones are recorded only when given (Ada-GVAE's ``changeable``, so older
config.json files still match). :func:`check_hparams` is the one checker of a method's
hyper-parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError
from .validate import Interval, Names, Options, check_value

# ---- name tables -----------------------------------------------------------------------------------
#: the scores of ``varstruct.evaluate`` (varstruct/metrics/), in report order
METRICS = ("mig", "active_mig", "dci", "sap", "modularity_explicitness", "irs", "unsupervised", "beta_vae",
           "factor_vae")
#: the metrics computed from the codes of one train/test sample (the others draw their own batches)
METRICS_ON_CODES = ("mig", "active_mig", "dci", "sap", "modularity_explicitness", "irs", "unsupervised")
#: of those, the ones that score on a held-out test sample
METRICS_WITH_TEST = ("dci", "sap", "modularity_explicitness")
#: training precisions (varstruct/training/precision.py); ``auto`` resolves to fp32 or bf16
PRECISIONS = ("fp32", "bf16", "fp64", "auto")
#: the precisions a run records in config.json
RESOLVED_PRECISIONS = ("fp32", "bf16", "fp64")
#: where the networks run (varstruct/devices.py); ``cuda`` also as ``cuda:N``; ``auto`` = cuda if available
DEVICES = ("auto", "cpu", "cuda")
#: the arithmetic of encoding for the metrics and measures (varstruct/tensors.py)
ENCODE_PRECISIONS = ("fp32", "bf16")
#: network architectures (varstruct/models/nets.py): conv takes 64x64 images only; linear is one
#: affine map each way (the fitted baselines' architecture, also trainable)
ARCHS = ("conv", "mlp", "linear")
#: fitted (closed-form) baselines (varstruct/models/baselines.py): config field ``baseline``
BASELINES = ("pca", "fastica", "oracle")
#: hidden layer sizes of the mlp architecture when none are given
DEFAULT_HIDDEN = (256, 256)


def default_arch(image_shape) -> str:
    """The architecture when none is given: ``conv`` for 64x64 images, ``mlp`` otherwise."""
    return "conv" if tuple(int(v) for v in image_shape[:2]) == (64, 64) else "mlp"

#: reconstruction losses (varstruct/models/losses.py)
RECONS = ("bernoulli", "gaussian")
#: channel-mask gates (varstruct/models/masked.py)
MASK_MODES = ("continuous", "ste", "hard_concrete")
#: model-measure responses (varstruct/measures/model.py)
RESPONSES = ("traversal", "jacobian")
#: the forms of the training-config fields an objective takes (TrainConfig's constraints use these)
OBJECTIVE_FIELDS = {"latent_dim": [Interval(int, 1)], "recon": [Options(RECONS)],
                    "recon_var": [Interval(float, 0.0, lo_open=True)]}


# ---- training methods ------------------------------------------------------------------------------
@dataclass(frozen=True)
class HParam:
    """One hyper-parameter of a method: name, kind (float | int | k | names), default and bounds
    (``lo``/``hi`` inclusive unless ``lo_open``/``hi_open``); ``option``: it has its own
    `varstruct train` option (the others go through ``--hparam KEY=VALUE``)."""

    name: str
    kind: str
    default: object
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    derived: tuple | None = None   # (other hyper-parameter, factor): default factor * other
    omit_none: bool = False        # recorded only when given
    option: bool = True
    help: str = ""

    def constraints(self) -> list:
        """The accepted forms, for :func:`varstruct.validate.check_value`."""
        if self.kind == "float":
            c = [Interval(float, self.lo, self.hi, self.lo_open, self.hi_open)]
        elif self.kind == "int":
            c = [Interval(int, self.lo, self.hi, self.lo_open, self.hi_open)]
        elif self.kind == "k":
            c = [Interval(int, self.lo, self.hi), Options(("random",))]
        elif self.kind == "names":
            c = [Names()]
        else:  # pragma: no cover - a catalog entry of an unknown kind
            raise AssertionError(self.kind)
        return c + [None] if self.default is None else c

    def default_text(self) -> str:
        """The default as text: ``4``, ``10·lambda_od`` (derived), ``none``."""
        if self.derived:
            factor, other = self.derived[1], self.derived[0]
            return other if factor == 1 else f"{factor:g}·{other}"
        if self.default is None:
            return "none"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


@dataclass(frozen=True)
class Method:
    """A training objective: its hyper-parameters, whether it is an autoencoder without posterior
    variance (``deterministic``), whether it trains on pairs (x1, x2) (``pairs``), whether it
    trains a discriminator of its own (``discriminator``), and its loss in one line."""

    name: str
    hparams: tuple = ()
    deterministic: bool = False
    pairs: bool = False
    discriminator: bool = False
    loss: str = ""
    grid: tuple = ({},)   # the published sweep's settings (Locatello et al. 2019; 2020 for Ada-GVAE)

    def defaults(self) -> dict:
        return {h.name: h.default for h in self.hparams}

    def hparam(self, name: str) -> HParam:
        return {h.name: h for h in self.hparams}[name]


_HELP = {
    "beta": "β: weight of the KL term (beta_vae, ada_gvae) or of the TC term (beta_tcvae)",
    "gamma": "γ: weight of the TC term (factor_vae) or of the capacity term (annealed_vae)",
    "c_max": "Maximum capacity C_max, in nats",
    "iteration_threshold": "Steps to reach C_max",
    "lambda_od": "λ_od: weight of the off-diagonal covariance penalty",
    "lambda_d": "λ_d: weight of the diagonal covariance penalty",
    "k": "Factors changed per pair: an integer or 'random'",
    "changeable": "The factor names a pair may change (none: any factor)",
    "p": "Geometric p of nested dropout (the chance to stop at each unit)",
}


def _h(name, kind, default, lo=0.0, **kw) -> HParam:
    return HParam(name, kind, default, lo, help=_HELP[name], **kw)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("ae", (), deterministic=True, loss="recon(decode(mean))"),
    Method("beta_vae", (_h("beta", "float", 4.0),), loss="recon + β·KL",
           grid=tuple({"beta": b} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 16.0))),
    Method("annealed_vae", (_h("c_max", "float", 25.0), _h("gamma", "float", 1000.0),
                            _h("iteration_threshold", "int", 100000, lo=1)),
           loss="recon + γ·|KL − C(t)|, C = min(C_max, C_max·t / iteration_threshold)",
           grid=tuple({"c_max": c, "gamma": 1000.0, "iteration_threshold": 100000}
                      for c in (5.0, 10.0, 25.0, 50.0, 75.0, 100.0))),
    Method("beta_tcvae", (_h("beta", "float", 6.0),), loss="recon + KL + (β − 1)·TC (minibatch estimate)",
           grid=tuple({"beta": b} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 10.0))),
    Method("factor_vae", (_h("gamma", "float", 30.0),), discriminator=True,
           loss="recon + KL + γ·E[D₀(z) − D₁(z)]; D trained to tell z from dim-permuted z",
           grid=tuple({"gamma": g} for g in (10.0, 20.0, 30.0, 40.0, 50.0, 100.0))),
    Method("dip_vae_i", (_h("lambda_od", "float", 10.0), _h("lambda_d", "float", None, derived=("lambda_od", 10.0))),
           loss="recon + KL + λ_od Σ_{i≠j} C_ij² + λ_d Σ (C_ii−1)², C = Cov[mean]",
           grid=tuple({"lambda_od": x, "lambda_d": 10.0 * x} for x in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0))),
    Method("dip_vae_ii", (_h("lambda_od", "float", 10.0), _h("lambda_d", "float", None, derived=("lambda_od", 1.0))),
           loss="the same with C = Cov[mean] + E[diag σ²]",
           grid=tuple({"lambda_od": x, "lambda_d": x} for x in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0))),
    Method("ada_gvae", (_h("beta", "float", 1.0), _h("k", "k", 1, lo=1),
                        _h("changeable", "names", None, lo=None, omit_none=True, option=False)),
           pairs=True, loss="β-VAE on both images of a pair after adaptive averaging of the shared dims",
           grid=tuple({"beta": b, "k": 1} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 16.0))),
    Method("ordered_ae", (_h("p", "float", 0.1, lo_open=True, hi=1.0),), deterministic=True,
           loss="recon(decode(mean ⊙ keep_b)), b ~ Geom(p)", grid=tuple({"p": p} for p in (0.05, 0.1, 0.2))),
)}


def method(name) -> Method:
    """The catalog entry of method ``name`` (ConfigError naming the known ones)."""
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {name!r}", param="method")
    return METHODS[name]


def hparam_names() -> list[str]:
    """Every hyper-parameter name of any method, in catalog order, each once."""
    return list(dict.fromkeys(h.name for m in METHODS.values() for h in m.hparams))


def methods_taking(name: str) -> list[str]:
    """The methods that take hyper-parameter ``name``."""
    return [m.name for m in METHODS.values() if any(h.name == name for h in m.hparams)]


def hparam_help(name: str) -> str:
    return _HELP[name]


def check_hparams(method_name: str, hparams) -> dict:
    """The hyper-parameters of ``method_name`` checked and completed: ``hparams`` (a dict; None
    for none) with the method's defaults filled in, derived defaults computed, numbers normalised
    (float or int by kind) and ``omit_none`` ones left out when None. ConfigError with
    ``param="hparams.<name>"`` on the first problem, in catalog order."""
    m = method(method_name)
    if hparams is None:
        hparams = {}
    if not isinstance(hparams, dict):
        raise ConfigError(f"hparams must be a table of hyper-parameters, got {hparams!r}", param="hparams")
    known = [h.name for h in m.hparams]
    for key in hparams:
        if key not in known:
            takes = ", ".join(known) or "none"
            raise ConfigError(f"{key} is not a hyper-parameter of {m.name} (its hyper-parameters: {takes})",
                              param=f"hparams.{key}")
    out = {}
    for h in m.hparams:
        v = check_value(h.name, hparams.get(h.name, h.default), h.constraints(), param=f"hparams.{h.name}")
        if v is None and h.derived:
            v = float(h.derived[1]) * out[h.derived[0]]
        if v is None and h.omit_none:
            continue
        out[h.name] = v
    return out
