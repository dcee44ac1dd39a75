"""Encoder/decoder networks and the VAE module that joins them.

``conv`` (64x64xC images) is the network of Locatello et al. 2019 exactly as
disentanglement_lib's ``conv_encoder`` / ``deconv_decoder`` build it:

    encoder  conv 32 k4 s2 -> conv 32 k4 s2 -> conv 64 k2 s2 -> conv 64 k2 s2 (ReLU, TF "same")
             -> flatten 1024 -> dense 256 ReLU -> dense L (mean), dense L (log-variance)
    decoder  dense 256 ReLU -> dense 1024 ReLU -> reshape [64, 4, 4]
             -> deconv 64 k4 s2 -> deconv 32 k4 s2 -> deconv 32 k4 s2 (ReLU) -> deconv C k4 s2
             -> Bernoulli logits [B, C, 64, 64]

This is disentanglement_lib's variant with **2x2 kernels in the 3rd and 4th encoder convs**; it
is *not* disent's ``EncoderConv64``, which uses 4x4 kernels throughout. Weights use TF's
default (Glorot-uniform) initialisation. (TF flattens/reshapes in HWC order, PyTorch in CHW:
a fixed permutation of the dense layer's units, the same family of functions.)

``mlp`` (any HxWxC, meant for small toy images): flatten D -> hidden ReLU layers -> 2 heads of
L; decoder L -> hidden (reversed) ReLU layers -> D logits.

``linear`` (any HxWxC): flatten D -> dense 2L (mean, log-variance); decoder L -> dense D. The
architecture of the fitted baselines (:mod:`varstruct.models.baselines`: PCA, FastICA, the oracle
readout), trainable like the others.

With ``mask`` = {"mode": ..., "l1": λ} every conv/linear layer is channel-masked
(:mod:`varstruct.models.masked`). The ReLUs work in place (the same values and gradients,
~10-20% faster training steps on CPU): nothing may hold on to a layer's pre-activation output.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import catalog
from .layers import Linear, SameConv2d, SameConvTranspose2d
from .masked import MaskedConv2d, MaskedConvTranspose2d, MaskedLinear, mask_penalty, sparsity

ARCHS, DEFAULT_HIDDEN = catalog.ARCHS, catalog.DEFAULT_HIDDEN


class _Factory:
    """Builds plain or masked layers."""

    def __init__(self, mask: dict | None):
        self.mask = dict(mask) if mask else None

    def _kw(self):
        return {"mode": self.mask.get("mode", "continuous"), "l1": float(self.mask.get("l1", 0.0))}

    def linear(self, i, o):
        return MaskedLinear(i, o, **self._kw()) if self.mask else Linear(i, o)

    def conv(self, i, o, k, s):
        return MaskedConv2d(i, o, k, s, **self._kw()) if self.mask else SameConv2d(i, o, k, s)

    def deconv(self, i, o, k, s):
        return MaskedConvTranspose2d(i, o, k, s, **self._kw()) if self.mask else SameConvTranspose2d(i, o, k, s)


class ConvEncoder(nn.Module):
    """[B, C, 64, 64] -> (mean [B, L], logvar [B, L])."""

    def __init__(self, channels: int, latent_dim: int, f: _Factory):
        super().__init__()
        self.convs = nn.Sequential(
            f.conv(channels, 32, 4, 2), nn.ReLU(inplace=True),
            f.conv(32, 32, 4, 2), nn.ReLU(inplace=True),
            f.conv(32, 64, 2, 2), nn.ReLU(inplace=True),
            f.conv(64, 64, 2, 2), nn.ReLU(inplace=True),
            nn.Flatten(), f.linear(1024, 256), nn.ReLU(inplace=True))
        self.mean = f.linear(256, latent_dim)
        self.logvar = f.linear(256, latent_dim)

    def forward(self, x):
        h = self.convs(x)
        return self.mean(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """[B, L] -> logits [B, C, 64, 64]."""

    def __init__(self, channels: int, latent_dim: int, f: _Factory):
        super().__init__()
        self.net = nn.Sequential(
            f.linear(latent_dim, 256), nn.ReLU(inplace=True),
            f.linear(256, 1024), nn.ReLU(inplace=True),
            nn.Unflatten(1, (64, 4, 4)),
            f.deconv(64, 64, 4, 2), nn.ReLU(inplace=True),
            f.deconv(64, 32, 4, 2), nn.ReLU(inplace=True),
            f.deconv(32, 32, 4, 2), nn.ReLU(inplace=True),
            f.deconv(32, channels, 4, 2))

    def forward(self, z):
        return self.net(z)


class MLPEncoder(nn.Module):
    """[B, C, H, W] -> (mean, logvar) through dense ReLU layers of sizes ``hidden``."""

    def __init__(self, image_shape, latent_dim: int, hidden: Sequence[int], f: _Factory):
        super().__init__()
        H, W, C = image_shape
        layers, d = [nn.Flatten()], H * W * C
        for h in hidden:
            layers += [f.linear(d, h), nn.ReLU(inplace=True)]
            d = h
        self.body = nn.Sequential(*layers)
        self.mean = f.linear(d, latent_dim)
        self.logvar = f.linear(d, latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mean(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """[B, L] -> logits [B, C, H, W]."""

    def __init__(self, image_shape, latent_dim: int, hidden: Sequence[int], f: _Factory):
        super().__init__()
        H, W, C = image_shape
        layers, d = [], latent_dim
        for h in reversed(list(hidden)):
            layers += [f.linear(d, h), nn.ReLU(inplace=True)]
            d = h
        layers += [f.linear(d, H * W * C), nn.Unflatten(1, (C, H, W))]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class LinearEncoder(nn.Module):
    """x [B, C, H, W] -> (mean [B, L], logvar [B, L]): one affine map of the flattened image."""

    def __init__(self, image_shape, latent_dim: int, f: _Factory):
        super().__init__()
        H, W, C = image_shape
        self.latent_dim = latent_dim
        self.head = f.linear(H * W * C, 2 * latent_dim)

    def forward(self, x):
        h = self.head(x.flatten(1))
        return h[:, :self.latent_dim], h[:, self.latent_dim:]


class LinearDecoder(nn.Module):
    """z [B, L] -> [B, C, H, W]: one affine map."""

    def __init__(self, image_shape, latent_dim: int, f: _Factory):
        super().__init__()
        H, W, C = image_shape
        self.shape = (C, H, W)
        self.head = f.linear(latent_dim, H * W * C)

    def forward(self, z):
        return self.head(z).view(-1, *self.shape)


class VAE(nn.Module):
    """Gaussian encoder + Bernoulli-logit decoder.

    ``encode(x [B, C, H, W]) -> (mean [B, L], logvar [B, L])`` (logvar all zeros when
    ``deterministic``, i.e. for the autoencoders), ``decode(z [B, L]) -> logits [B, C, H, W]``.
    """

    def __init__(self, image_shape, latent_dim: int, arch: str = "conv", hidden: Sequence[int] = DEFAULT_HIDDEN,
                 mask: dict | None = None, deterministic: bool = False):
        super().__init__()
        H, W, C = (int(v) for v in image_shape)
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
        if arch == "conv" and (H, W) != (64, 64):
            raise ValueError(f"the conv architecture takes 64x64 images, got {H}x{W} (use arch 'mlp')")
        f = _Factory(mask)
        if arch == "conv":
            self.encoder, self.decoder = ConvEncoder(C, latent_dim, f), ConvDecoder(C, latent_dim, f)
        elif arch == "linear":
            self.encoder = LinearEncoder((H, W, C), latent_dim, f)
            self.decoder = LinearDecoder((H, W, C), latent_dim, f)
        else:
            self.encoder = MLPEncoder((H, W, C), latent_dim, hidden, f)
            self.decoder = MLPDecoder((H, W, C), latent_dim, hidden, f)
        self.image_shape, self.latent_dim, self.arch = (H, W, C), int(latent_dim), arch
        self.deterministic = bool(deterministic)
        self.masked = bool(mask)
        self.mask_config = dict(mask) if mask else None
        self.config: dict = {}

    def encode(self, x: torch.Tensor):
        mean, logvar = self.encoder(x)
        if self.deterministic:
            logvar = torch.zeros_like(mean)
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits from the encoder mean."""
        return self.decode(self.encode(x)[0])

    def mask_penalty(self) -> torch.Tensor:
        return mask_penalty(self)

    def sparsity(self) -> float:
        """Fraction of channel-mask entries below 1e-3 (NaN without masks)."""
        return sparsity(self)


default_arch = catalog.default_arch


def build_model(config: dict) -> VAE:
    """The untrained network a config describes (fields image_shape, latent_dim, arch, hidden,
    mask, method; float64 weights when precision is fp64, else float32)."""
    model = VAE(config["image_shape"], config["latent_dim"], config.get("arch") or default_arch(config["image_shape"]),
                hidden=tuple(config.get("hidden") or DEFAULT_HIDDEN), mask=config.get("mask"),
                deterministic=catalog.method(config["method"]).deterministic)
    return model.double() if config.get("precision") == "fp64" else model
