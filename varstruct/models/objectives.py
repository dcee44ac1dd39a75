"""Training objectives: one small class per method, each computing and logging its loss terms.

Every objective minimises  recon + regulariser  with ``recon`` the Bernoulli loss (Σ over
pixels of BCE with logits, mean over the batch, as disentanglement_lib) or, with
``recon="gaussian"``, the fixed-variance Gaussian loss of :func:`losses.gaussian_recon`.
KL terms are Σ over latent dims, mean over the batch.

The methods, their hyper-parameters (defaults, bounds), which are deterministic and which train
on pairs are listed once, in :data:`varstruct.catalog.METHODS` (docs/training.md renders it);
the hyper-parameters are checked there (:func:`varstruct.catalog.check_hparams`), never here.

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

from .. import catalog
from ..validate import check_params
from . import losses as L
from .layers import Linear

RECON = catalog.RECONS


@dataclass
class Losses:
    """One step's losses: ``loss`` (0-d, minimised by the model's optimiser), ``terms`` (logged,
    detached 0-d tensors, "loss" first), ``aux`` (name -> 0-d loss of that auxiliary group)."""

    loss: torch.Tensor
    terms: dict
    aux: dict = field(default_factory=dict)


class Objective(nn.Module):
    name = ""
    # from the catalog (set for each subclass): an autoencoder without posterior variance or
    # sampling; trained on pairs (x1, x2) of the dataset's weak-supervision sampler; the
    # hyper-parameters' defaults
    deterministic = False
    pairs = False
    defaults: dict = {}
    terms: tuple = ("recon",)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.name:
            m = catalog.method(cls.name)
            cls.deterministic, cls.pairs, cls.defaults = m.deterministic, m.pairs, m.defaults()

    def __init__(self, latent_dim: int = 10, recon: str = "bernoulli", recon_var: float = 0.02, **hparams):
        super().__init__()
        self.amp = contextlib.nullcontext
        args = check_params({"latent_dim": latent_dim, "recon": recon, "recon_var": recon_var},
                            catalog.OBJECTIVE_FIELDS)  # the config's own rules for these fields
        self.latent_dim, self.recon, self.recon_var = args["latent_dim"], args["recon"], args["recon_var"]
        self.hparams = catalog.check_hparams(self.name, hparams)

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
    name, terms = "beta_vae", ("recon", "kl")

    def loss(self, model, x, step):
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        return recon + self.hparams["beta"] * kl, {"recon": recon, "kl": kl}


class AnnealedVAE(Objective):
    name, terms = "annealed_vae", ("recon", "kl", "capacity")

    def loss(self, model, x, step):
        hp = self.hparams
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        c = L.anneal(hp["c_max"], step, hp["iteration_threshold"])
        return recon + hp["gamma"] * (kl - c).abs(), {"recon": recon, "kl": kl, "capacity": torch.tensor(c)}


class BetaTCVAE(Objective):
    name, terms = "beta_tcvae", ("recon", "kl", "tc")

    def loss(self, model, x, step):
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        tc = L.total_correlation(z, mean, logvar)
        return recon + kl + (self.hparams["beta"] - 1.0) * tc, {"recon": recon, "kl": kl, "tc": tc}


class DIPVAE(Objective):
    dip_type = "i"
    terms = ("recon", "kl", "dip")

    def loss(self, model, x, step):
        mean, logvar, z, logits = self._vae_forward(model, x)
        recon, kl = self.reconstruction(logits, x), L.gaussian_kl(mean, logvar)
        dip = L.dip_regulariser(L.dip_covariance(mean, logvar, self.dip_type),
                                self.hparams["lambda_od"], self.hparams["lambda_d"])
        return recon + kl + dip, {"recon": recon, "kl": kl, "dip": dip}


class DIPVAEI(DIPVAE):
    name, dip_type = "dip_vae_i", "i"


class DIPVAEII(DIPVAE):
    name, dip_type = "dip_vae_ii", "ii"


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

    name, terms = "factor_vae", ("recon", "kl", "tc", "disc_loss")
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
    # changeable: None (any factor may change) or the factor names that may (the longitudinal
    # mode of the pair sampler); recorded only when given, so older config.json files still match
    name, terms = "ada_gvae", ("recon", "kl", "shared")

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

    def loss(self, model, x, step):
        mean = model.encode(x)[0]
        keep = L.nested_dropout_mask(mean.shape[0], mean.shape[1], self.hparams["p"], device=mean.device)
        recon = self.reconstruction(model.decode(mean * keep), x)
        return recon, {"recon": recon, "kept": keep.sum(1).mean()}


_CLASSES = {c.name: c for c in (AE, BetaVAE, AnnealedVAE, BetaTCVAE, FactorVAE, DIPVAEI, DIPVAEII, AdaGVAE, OrderedAE)}
# the implementation of each catalog method, in catalog order (a method without one fails here)
METHODS: dict[str, type[Objective]] = {name: _CLASSES[name] for name in catalog.METHODS}


def objective_class(method: str) -> type[Objective]:
    """The objective class of a catalog method (ConfigError naming the known ones)."""
    return METHODS[catalog.method(method).name]


def make_objective(method: str, hparams: dict | None = None, latent_dim: int = 10,
                   recon: str = "bernoulli", recon_var: float = 0.02) -> Objective:
    """The objective ``method`` with hyper-parameters ``hparams`` (defaults filled in)."""
    return objective_class(method)(latent_dim, recon=recon, recon_var=recon_var, **(hparams or {}))
