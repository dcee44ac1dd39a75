"""Training objectives: one small class per method, each computing and logging its loss terms.

Every objective minimises  recon + regulariser  with ``recon`` the Bernoulli loss (Σ over
pixels of BCE with logits, mean over the batch, as disentanglement_lib) or, with
``recon="gaussian"``, the fixed-variance Gaussian loss of :func:`losses.gaussian_recon`.
KL terms are Σ over latent dims, mean over the batch.

=============  ============================================  ==================================
method         loss                                          hyper-parameters (default)
=============  ============================================  ==================================
ae             recon(decode(mean))                           -
beta_vae       recon + β·KL                                  beta (4)
annealed_vae   recon + γ·|KL − C(t)|, C = min(C_max,         c_max (25), gamma (1000),
               C_max·t / iteration_threshold)                iteration_threshold (100000)
beta_tcvae     recon + KL + (β − 1)·TC (minibatch estimate)  beta (6)
factor_vae     recon + KL + γ·E[D₀(z) − D₁(z)]; D trained    gamma (30)
               to tell z from dim-permuted z
dip_vae_i      recon + KL + λ_od Σ_{i≠j} C_ij² + λ_d Σ (C_ii−1)², C = Cov[mean]      lambda_od (10), lambda_d (10·λ_od)
dip_vae_ii     same with C = Cov[mean] + E[diag σ²]          lambda_od (10), lambda_d (λ_od)
ada_gvae       β-VAE on both images of a pair after adaptive  beta (1), k (1: changed factors
               averaging of the shared dims                  per pair, or "random")
ordered_ae     recon(decode(mean ⊙ keep_b)), b ~ Geom(p)     p (0.1)
=============  ============================================  ==================================

Objectives compute losses; they never optimise (that is :mod:`varstruct.training.optim`).
``loss(model, batch, step) -> (loss, terms)``; ``compute(model, batch, step) -> Losses``:
the model's loss (+ the mask penalty of a masked model), the logged terms (dict of 0-d
tensors, "loss" first) and ``aux``, the losses of the objective's own parameter groups
(``aux_groups()``: FactorVAE's discriminator). The batch is x [B, C, H, W], or the pair
(x1, x2) for ``ada_gvae``. Randomness comes from torch's global generator (the trainer seeds
it per step). ``amp`` is the context the objective's own networks run in (the trainer sets
it to its autocast for bf16); their outputs are cast back to fp32, so every loss is fp32.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import losses as L
from .errors import ConfigError
from .layers import Linear
from .methods import DETERMINISTIC

RECON = ("bernoulli", "gaussian")


def _number(name, value, lo=0.0, lo_open=False, hi=None):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"hyper-parameter {name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < lo or (lo_open and v == lo) or (hi is not None and v > hi):
        rng = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
        raise ConfigError(f"hyper-parameter {name} must be {rng}, got {value!r}")
    return v


@dataclass
class Losses:
    """One step's losses: ``loss`` (0-d, minimised by the model's optimiser), ``terms`` (logged,
    detached 0-d tensors, "loss" first), ``aux`` (name -> 0-d loss of that auxiliary group)."""

    loss: torch.Tensor
    terms: dict
    aux: dict = field(default_factory=dict)


class Objective(nn.Module):
    name = ""
    deterministic = False  # an autoencoder: no posterior variance, no sampling (set from methods.DETERMINISTIC)
    pairs = False  # trained on pairs (x1, x2) of the dataset's weak-supervision sampler
    defaults: dict = {}
    terms: tuple = ("recon",)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.deterministic = cls.name in DETERMINISTIC

    def __init__(self, latent_dim: int = 10, recon: str = "bernoulli", recon_var: float = 0.02, **hparams):
        super().__init__()
        self.amp = contextlib.nullcontext
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            allowed = ", ".join(self.defaults) or "none"
            raise ConfigError(f"{self.name}: unknown hyper-parameter(s) {', '.join(unknown)} (allowed: {allowed})")
        if recon not in RECON:
            raise ConfigError(f"recon must be one of {', '.join(RECON)}, got {recon!r}")
        self.latent_dim, self.recon = int(latent_dim), recon
        self.recon_var = _number("recon_var", recon_var, lo_open=True)
        self.hparams = self.check({**self.defaults, **hparams})

    def check(self, hp: dict) -> dict:
        """Validate and normalise the hyper-parameters (raise ConfigError)."""
        return {k: _number(k, v) for k, v in hp.items()}

    def term_names(self, masked: bool = False) -> tuple:
        return ("loss",) + self.terms + (("mask_penalty",) if masked else ())

    def reconstruction(self, logits, x):
        if self.recon == "bernoulli":
            return L.bernoulli_recon(logits, x)
        return L.gaussian_recon(logits, x, self.recon_var)

    def loss(self, model, batch, step: int):
        """(loss 0-d, terms dict) for one batch at 0-based step ``step``."""
        raise NotImplementedError

    def aux_groups(self) -> dict:
        """The objective's own parameter groups, name -> {"params": [...], optimiser options}
        (FactorVAE's discriminator); the trainer builds and steps their optimisers."""
        return {}

    def compute(self, model, batch, step: int) -> Losses:
        """The step's :class:`Losses` (the mask penalty of a masked model added to the loss)."""
        loss, terms = self.loss(model, batch, step)
        return self._finish(model, loss, terms)

    @staticmethod
    def _finish(model, loss, terms, aux=None) -> Losses:
        if getattr(model, "masked", False):
            terms["mask_penalty"] = model.mask_penalty()
            loss = loss + terms["mask_penalty"]
        logged = {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
        return Losses(loss, logged, aux or {})

    # shared pieces
    def _vae_forward(self, model, x):
        mean, logvar = model.encode(x)
        z = L.sample_gaussian(mean, logvar)
        return mean, logvar, z, model.decode(z)


class AE(Objective):
    name = "ae"

    def loss(self, model, x, step):
        recon = self.reconstruction(model.decode(model.encode(x)[0]), x)
        return recon, {"recon": recon}


class BetaVAE(Objective):
    name, defaults, terms = "beta_vae", {"beta": 4.0}, ("recon", "kl")

    def loss(self, model, x, step):
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        return recon + self.hparams["beta"] * kl, {"recon": recon, "kl": kl}


class AnnealedVAE(Objective):
    name, terms = "annealed_vae", ("recon", "kl", "capacity")
    defaults = {"c_max": 25.0, "gamma": 1000.0, "iteration_threshold": 100000}

    def check(self, hp):
        out = super().check(hp)
        if out["iteration_threshold"] < 1 or out["iteration_threshold"] != int(out["iteration_threshold"]):
            raise ConfigError(f"hyper-parameter iteration_threshold must be an integer >= 1, got {hp['iteration_threshold']!r}")
        out["iteration_threshold"] = int(out["iteration_threshold"])
        return out

    def loss(self, model, x, step):
        hp = self.hparams
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        c = L.anneal(hp["c_max"], step, hp["iteration_threshold"])
        return recon + hp["gamma"] * (kl - c).abs(), {"recon": recon, "kl": kl, "capacity": torch.tensor(c)}


class BetaTCVAE(Objective):
    name, defaults, terms = "beta_tcvae", {"beta": 6.0}, ("recon", "kl", "tc")

    def loss(self, model, x, step):
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        tc = L.total_correlation(z, mean, logvar)
        return recon + kl + (self.hparams["beta"] - 1.0) * tc, {"recon": recon, "kl": kl, "tc": tc}


class DIPVAE(Objective):
    dip_type = "i"
    terms = ("recon", "kl", "dip")

    def check(self, hp):
        hp = dict(hp)
        if hp.get("lambda_d") is None:
            hp["lambda_d"] = (10.0 if self.dip_type == "i" else 1.0) * float(hp["lambda_od"])
        return super().check(hp)

    def loss(self, model, x, step):
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        dip = L.dip_regulariser(L.dip_covariance(mean, logvar, self.dip_type),
                                self.hparams["lambda_od"], self.hparams["lambda_d"])
        return recon + kl + dip, {"recon": recon, "kl": kl, "dip": dip}


class DIPVAEI(DIPVAE):
    name, dip_type, defaults = "dip_vae_i", "i", {"lambda_od": 10.0, "lambda_d": None}


class DIPVAEII(DIPVAE):
    name, dip_type, defaults = "dip_vae_ii", "ii", {"lambda_od": 10.0, "lambda_d": None}


def discriminator(latent_dim: int) -> nn.Sequential:
    """Kim & Mnih's FactorVAE discriminator: 6 dense layers of 1000, LeakyReLU(0.2), 2 logits."""
    layers, d = [], latent_dim
    for _ in range(6):
        layers += [Linear(d, 1000), nn.LeakyReLU(0.2)]
        d = 1000
    return nn.Sequential(*layers, Linear(d, 2))


class FactorVAE(Objective):
    """VAE loss + γ·E_q(z)[D₀(z) − D₁(z)] (the density-ratio estimate of TC); the discriminator
    D (logit 0: "from q(z)", logit 1: "from Π q(z_l)") minimises
    −½E[log p₀(z)] − ½E[log p₁(perm(z))] (probabilities clipped to [1e-6, 1-1e-6]), returned as
    ``aux["disc"]`` and stepped by the trainer with its own Adam (the run's ``lr``, betas
    (0.5, 0.9), as disentanglement_lib's study, where both optimisers use 1e-4); both updates
    use the same batch and D's gradients come from its own loss only."""

    name, defaults, terms = "factor_vae", {"gamma": 30.0}, ("recon", "kl", "tc", "disc_loss")
    DISC_BETAS = (0.5, 0.9)

    def __init__(self, latent_dim: int = 10, **kw):
        super().__init__(latent_dim, **kw)
        self.disc = discriminator(self.latent_dim)

    def aux_groups(self):
        return {"disc": {"params": list(self.disc.parameters()), "betas": self.DISC_BETAS}}

    def _d(self, z: torch.Tensor) -> torch.Tensor:
        with self.amp():
            return self.disc(z).float()

    def _loss_and_z(self, model, x):
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        d = self._d(z)
        tc = (d[:, 0] - d[:, 1]).mean()
        return recon + kl + self.hparams["gamma"] * tc, {"recon": recon, "kl": kl, "tc": tc}, z

    def loss(self, model, x, step):
        loss, terms, _ = self._loss_and_z(model, x)
        return loss, terms

    def discriminator_loss(self, z: torch.Tensor) -> torch.Tensor:
        zd = z.detach()
        logp = F.log_softmax(self._d(torch.cat([zd, L.permute_dims(zd)])), dim=1)
        logp = logp.clamp(math.log(1e-6), math.log1p(-1e-6))
        B = zd.shape[0]
        return -(0.5 * logp[:B, 0].mean() + 0.5 * logp[B:, 1].mean())

    def compute(self, model, x, step):
        loss, terms, z = self._loss_and_z(model, x)
        d_loss = self.discriminator_loss(z)
        terms["disc_loss"] = d_loss
        return self._finish(model, loss, terms, {"disc": d_loss})


class AdaGVAE(Objective):
    name, pairs, terms = "ada_gvae", True, ("recon", "kl", "shared")
    # changeable: None (any factor may change) or the factor names that may (the longitudinal
    # mode of the pair sampler); recorded only when given, so older config.json files still match
    defaults = {"beta": 1.0, "k": 1, "changeable": None}

    def check(self, hp):
        k = hp["k"]
        if k != "random":
            if isinstance(k, bool) or not isinstance(k, (int, float, str)):
                raise ConfigError(f"hyper-parameter k must be an integer >= 1 or 'random', got {k!r}")
            try:
                kf = float(k)
            except ValueError:
                raise ConfigError(f"hyper-parameter k must be an integer >= 1 or 'random', got {k!r}") from None
            if kf != int(kf) or kf < 1:
                raise ConfigError(f"hyper-parameter k must be an integer >= 1 or 'random', got {k!r}")
            k = int(kf)
        out = {"beta": _number("beta", hp["beta"]), "k": k}
        ch = hp["changeable"]
        if ch is not None:
            if (not isinstance(ch, (list, tuple)) or not ch
                    or not all(isinstance(c, str) and c for c in ch) or len(set(ch)) != len(ch)):
                raise ConfigError(f"hyper-parameter changeable must be a non-empty list of distinct factor names, "
                                  f"got {ch!r}")
            out["changeable"] = list(ch)
        return out

    def loss(self, model, batch, step):
        x1, x2 = batch
        B = x1.shape[0]
        x = torch.cat([x1, x2])
        mean, logvar = model.encode(x)
        m1, v1, m2, v2, shared = L.ada_gvae_aggregate(mean[:B], logvar[:B], mean[B:], logvar[B:])
        mean, logvar = torch.cat([m1, m2]), torch.cat([v1, v2])
        logits = model.decode(L.sample_gaussian(mean, logvar))
        # mean over the 2B images = ½(term of image 1) + ½(term of image 2)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        return recon + self.hparams["beta"] * kl, {"recon": recon, "kl": kl,
                                                   "shared": shared.float().sum(1).mean()}


class OrderedAE(Objective):
    """Nested dropout (Rippel et al. 2014): keep code units 1..b, b ~ Geometric(p) truncated at L."""

    name, terms = "ordered_ae", ("recon", "kept")
    defaults = {"p": 0.1}

    def check(self, hp):
        return {"p": _number("p", hp["p"], lo=0.0, lo_open=True, hi=1.0)}

    def loss(self, model, x, step):
        mean = model.encode(x)[0]
        keep = L.nested_dropout_mask(mean.shape[0], mean.shape[1], self.hparams["p"], device=mean.device)
        recon = self.reconstruction(model.decode(mean * keep), x)
        return recon, {"recon": recon, "kept": keep.sum(1).mean()}


METHODS: dict[str, type[Objective]] = {c.name: c for c in (
    AE, BetaVAE, AnnealedVAE, BetaTCVAE, FactorVAE, DIPVAEI, DIPVAEII, AdaGVAE, OrderedAE)}


def objective_class(method: str) -> type[Objective]:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    return METHODS[method]


def make_objective(method: str, hparams: dict | None = None, latent_dim: int = 10,
                   recon: str = "bernoulli", recon_var: float = 0.02) -> Objective:
    """The objective ``method`` with hyper-parameters ``hparams`` (defaults filled in)."""
    return objective_class(method)(latent_dim, recon=recon, recon_var=recon_var, **(hparams or {}))
