"""Conv layers with TensorFlow's "same" padding, and TF-style (Glorot uniform) initialisation.

TF "same" for a stride-s conv with kernel k on an input of size n: output ceil(n / s), total
padding  p = max((ceil(n / s) - 1)·s + k - n, 0), split left = floor(p / 2), right = ceil(p / 2)
(the extra pixel goes right/bottom, unlike PyTorch's symmetric ``padding``). For n divisible
by s this is p = max(k - s, 0): 2 (1 + 1) for k4 s2, 0 for k2 s2, 1 (0 + 1) for k3 s2.

The transposed conv is TF's ``conv2d_transpose(padding="same")``: output n·s, i.e. the
adjoint of the "same" conv from n·s to n, whose padding is p = max(k - s, 0); the full
transposed output is cropped from ``floor(p / 2)`` on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .deconv import conv_transpose2d


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """(left, right) padding of TF "same" for input size n, kernel k, stride s."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def glorot_(layer: nn.Module) -> nn.Module:
    """TF defaults: Glorot-uniform weights (fans include the kernel area), zero biases."""
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TF "same" padding (asymmetric where TF pads asymmetrically)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        glorot_(self)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph, pw = same_pads(x.shape[-2], kh, sh), same_pads(x.shape[-1], kw, sw)
        w = self.effective_weight()
        if ph[0] == ph[1] and pw[0] == pw[1]:
            return F.conv2d(x, w, self.bias, self.stride, (ph[0], pw[0]))
        return F.conv2d(F.pad(x, (pw[0], pw[1], ph[0], ph[1])), w, self.bias, self.stride)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` matching TF ``conv2d_transpose(padding="same")``: [B,C,n,m] -> [B,C',n·s,m·s]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        glorot_(self)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        H, W = x.shape[-2] * sh, x.shape[-1] * sw
        plh, prh = same_pads(H, kh, sh)
        plw, prw = same_pads(W, kw, sw)
        w = self.effective_weight()
        # PyTorch crops `padding` from both ends; TF crops floor(p/2) left, ceil(p/2) right.
        oph, opw = max(sh - kh, 0), max(sw - kw, 0)
        y = conv_transpose2d(x, w, self.bias, self.stride, (plh, plw), (oph, opw))  # faster backward
        if y.shape[-2] != H or y.shape[-1] != W:
            y = y[..., :H, :W]
        return y


class Linear(nn.Linear):
    """``nn.Linear`` with TF's default initialisation."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        glorot_(self)

    def effective_weight(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)

