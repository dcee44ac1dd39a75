"""Channel-masked layers: the weight is multiplied by a mask M ∈ R^{out×in} before the operation.

M is broadcast over the kernel (M[o, i] gates every tap from input channel i to output channel
o), so M[o, i] = 0 makes output channel o exactly independent of input channel i.

Mask modes (``mode``), each with penalty strength ``l1`` (λ):
- ``continuous``: M = m, a free parameter initialised at 1; penalty λ·Σ|m|.
- ``ste``: binary M = 1[s > 0] in the forward pass, gradients through σ(s) (straight-through
  estimator); s initialised at 3; penalty λ·Σ σ(s) (the relaxed count of open gates).
- ``hard_concrete``: the L0 gate of Louizos et al. 2018 (β = 2/3, γ = -0.1, ζ = 1.1): in training
  M = clip(σ((log u - log(1-u) + log α) / β)·(ζ-γ) + γ, 0, 1), u ~ U(0, 1), one draw per forward
  pass; in eval M = clip(σ(log α)·(ζ-γ) + γ, 0, 1). log α initialised at 3; penalty
  λ·Σ σ(log α - β·log(-γ/ζ)) (the expected number of non-zero gates).

``sparsity()`` is the fraction of mask entries whose deterministic (eval) value has |M| < 1e-3.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..catalog import MASK_MODES
from .layers import Linear, SameConv2d, SameConvTranspose2d

SPARSITY_THRESHOLD = 1e-3
_HC_BETA, _HC_GAMMA, _HC_ZETA = 2.0 / 3.0, -0.1, 1.1
_INIT_LOGIT = 3.0


class MaskedMixin:
    """Holds the mask parameter of shape [out, in] and turns it into M."""

    mask_mode: str
    l1: float

    def _init_mask(self, out_channels: int, in_channels: int, mode: str, l1: float) -> None:
        if mode not in MASK_MODES:
            raise ValueError(f"mask mode must be one of {', '.join(MASK_MODES)}, got {mode!r}")
        if not (l1 >= 0 and math.isfinite(l1)):
            raise ValueError(f"mask penalty l1 must be a finite number >= 0, got {l1}")
        self.mask_mode, self.l1 = mode, float(l1)
        init = 1.0 if mode == "continuous" else _INIT_LOGIT
        self.mask_param = nn.Parameter(torch.full((out_channels, in_channels), init))

    def mask(self) -> torch.Tensor:
        """M [out, in] as used by the forward pass (stochastic for hard_concrete in training)."""
        p = self.mask_param
        if self.mask_mode == "continuous":
            return p
        if self.mask_mode == "ste":
            soft = torch.sigmoid(p)
            return (p > 0).to(p.dtype) + soft - soft.detach()
        if self.training:
            u = torch.rand_like(p).clamp(1e-6, 1 - 1e-6)
            s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + p) / _HC_BETA)
        else:
            s = torch.sigmoid(p)
        return (s * (_HC_ZETA - _HC_GAMMA) + _HC_GAMMA).clamp(0.0, 1.0)

    @torch.no_grad()
    def mask_eval(self) -> torch.Tensor:
        """Deterministic M [out, in] (the eval-mode mask)."""
        p = self.mask_param
        if self.mask_mode == "continuous":
            return p.detach().clone()
        if self.mask_mode == "ste":
            return (p > 0).to(p.dtype)
        return (torch.sigmoid(p) * (_HC_ZETA - _HC_GAMMA) + _HC_GAMMA).clamp(0.0, 1.0)

    def penalty(self) -> torch.Tensor:
        p = self.mask_param
        if self.mask_mode == "continuous":
            return self.l1 * p.abs().sum()
        if self.mask_mode == "ste":
            return self.l1 * torch.sigmoid(p).sum()
        return self.l1 * torch.sigmoid(p - _HC_BETA * math.log(-_HC_GAMMA / _HC_ZETA)).sum()

    def sparsity(self) -> float:
        """Fraction of mask entries with |M| < 1e-3."""
        return float((self.mask_eval().abs() < SPARSITY_THRESHOLD).float().mean())


class MaskedLinear(MaskedMixin, Linear):
    """y = x (W ⊙ M)ᵀ + b, W and M [out, in]."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, mode: str = "continuous", l1: float = 0.0):
        super().__init__(in_features, out_features, bias=bias)
        self._init_mask(out_features, in_features, mode, l1)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.mask()


class MaskedConv2d(MaskedMixin, SameConv2d):
    """TF-"same" conv with weight W [out, in, kh, kw] ⊙ M[:, :, None, None]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True,
                 mode: str = "continuous", l1: float = 0.0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
        self._init_mask(out_channels, in_channels, mode, l1)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.mask()[:, :, None, None]


class MaskedConvTranspose2d(MaskedMixin, SameConvTranspose2d):
    """TF-"same" transposed conv; PyTorch stores W as [in, out, kh, kw], so W ⊙ Mᵀ[:, :, None, None]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True,
                 mode: str = "continuous", l1: float = 0.0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
        self._init_mask(out_channels, in_channels, mode, l1)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.mask().t()[:, :, None, None]


def masked_layers(module: nn.Module) -> list[MaskedMixin]:
    return [m for m in module.modules() if isinstance(m, MaskedMixin)]


def mask_penalty(module: nn.Module) -> torch.Tensor:
    """Σ of the penalties of every masked layer in ``module`` (a 0-d tensor; 0 if none)."""
    layers = masked_layers(module)
    if not layers:
        return torch.zeros(())
    return torch.stack([m.penalty() for m in layers]).sum()


def sparsity(module: nn.Module) -> float:
    """Fraction of all mask entries (pooled over the masked layers) with |M| < 1e-3; NaN if none."""
    layers = masked_layers(module)
    if not layers:
        return float("nan")
    n = sum(m.mask_param.numel() for m in layers)
    zeros = sum(int((m.mask_eval().abs() < SPARSITY_THRESHOLD).sum()) for m in layers)
    return zeros / n
