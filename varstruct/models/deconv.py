"""``conv_transpose2d`` computed through faster CPU kernels: the same sums, other kernels.

oneDNN (PyTorch 2.13's CPU convolutions) is slow on two parts of the transposed convolutions
of the conv decoder: the weight gradient (a deconvolution-specific kernel, ~4x slower in bf16
than the forward-convolution kernels on the same shapes) and the forward pass of the last layer
(32 -> C <= 4 channels, ~15 GFLOP/s). Two exact rewrites, selected per call:

* **adjoint backward** (any kernel): y = convᵀ(x, W) (stride s, padding p) is the adjoint of
  c(u) = conv2d(u, W), so  ∂x = conv2d(∂y, W),  ∂W = c's weight gradient at input ∂y and output
  gradient x,  ∂b = Σ_{batch, rows, cols} ∂y.
* **sub-pixel** (kernel 4, stride 2, padding 1, few output channels): per axis, output pixel
  2i+a sums two input taps, y[2i] = x[i-1]·W[3] + x[i]·W[1] and y[2i+1] = x[i]·W[2] + x[i+1]·W[0];
  so y is the stride-1 2x2 convolution of x (padded by 1) with the 4 phase kernels
  K[(a, b, c)] = W's taps [[3, 1], [2, 0]][a] x [[3, 1], [2, 0]][b] (a permutation of W's
  16 taps; 4·C output channels, bias repeated 4 times), phase (a, b) read at offset (a, b) and
  interleaved. Its backward de-interleaves ∂y and runs the 2x2 convolution's backward.

Shapes: x [B, Cin, n, m], W [Cin, C, kh, kw] (PyTorch's transposed layout), b [C] or None.
Works in any dtype (the caller casts for autocast) and under ``torch.func`` (jvp, vmap).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SUBPIXEL_MAX_CHANNELS = 4  # sub-pixel forward for C <= this (the decoder's last layer)
_TAPS = [[3, 1], [2, 0]]  # phase a -> W's taps at offsets 0, 1 (per axis); self-inverse as a flat permutation
_FLAT = [3, 1, 2, 0]


def phase_kernel(w: torch.Tensor) -> torch.Tensor:
    """[Cin, C, 4, 4] -> the 4 phase kernels [4·C, Cin, 2, 2], output channel (a, b, c)."""
    t = torch.tensor(_TAPS, device=w.device)
    k = w[:, :, t][:, :, :, :, t]  # [Cin, C, a, u, b, v]
    return k.permute(2, 4, 1, 0, 3, 5).reshape(4 * w.shape[1], w.shape[0], 2, 2)


def phase_kernel_grad(gk: torch.Tensor, cin: int, c: int) -> torch.Tensor:
    """The gradient of :func:`phase_kernel`: [4·C, Cin, 2, 2] -> [Cin, C, 4, 4]."""
    g = gk.reshape(2, 2, c, cin, 2, 2).permute(3, 2, 0, 4, 1, 5).reshape(cin, c, 4, 4)
    idx = torch.tensor(_FLAT, device=gk.device)
    return g[:, :, idx][:, :, :, idx]


def uses_subpixel(w: torch.Tensor, stride, padding, output_padding) -> bool:
    return (tuple(w.shape[2:]) == (4, 4) and tuple(stride) == (2, 2) and tuple(padding) == (1, 1)
            and tuple(output_padding) == (0, 0) and w.shape[1] <= SUBPIXEL_MAX_CHANNELS)


def _fmt(x: torch.Tensor) -> torch.memory_format:
    """channels-last if x is stored so (and not also plain contiguous), else contiguous (also
    under ``vmap``, where a batched tensor cannot be asked about other memory formats)."""
    try:
        cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    except RuntimeError:  # vmap: "NYI: querying is_contiguous inside of vmap for memory_format ..."
        return torch.contiguous_format
    return torch.channels_last if cl else torch.contiguous_format


def _subpixel(x, w, b):
    B, _, n, m = x.shape
    c = w.shape[1]
    k = phase_kernel(w).contiguous(memory_format=_fmt(x))
    y = F.conv2d(x, k, None if b is None else b.repeat(4), 1, 1)  # [B, 4C, n+1, m+1]
    yh = y.permute(0, 2, 3, 1).unflatten(3, (2, 2, c))  # [B, n+1, m+1, a, b, C] (a view when channels-last)
    rows = [torch.stack([yh[:, a:a + n, bb:bb + m, a, bb] for bb in (0, 1)], 3) for a in (0, 1)]  # [B, n, m, b, C]
    out = torch.stack(rows, 2)  # [B, n, a, m, b, C]: output pixel (2i+a, 2j+b)
    return out.reshape(B, 2 * n, 2 * m, c).permute(0, 3, 1, 2)  # channels-last


def _forward(x, w, b, stride, padding, output_padding):
    if uses_subpixel(w, stride, padding, output_padding):
        return _subpixel(x, w, b)
    return F.conv_transpose2d(x, w, b, stride, padding, output_padding)


class _ConvTranspose2d(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, w, b, stride, padding, output_padding):
        return _forward(x, w, b, stride, padding, output_padding)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, b, stride, padding, output_padding = inputs
        ctx.save_for_backward(x, w)
        ctx.save_for_forward(x, w)
        ctx.conf = (stride, padding, output_padding, b is not None)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        stride, padding, output_padding, has_bias = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        cb = torch.ops.aten.convolution_backward
        if uses_subpixel(w, stride, padding, output_padding):
            B, cin, n, m = x.shape
            c = w.shape[1]
            gh = g.permute(0, 2, 3, 1).reshape(B, n, 2, m, 2, c)  # [B, n, a, m, b, C]
            gy = torch.stack([F.pad(gh[:, :, a, :, bb], (0, 0, bb, 1 - bb, a, 1 - a)) for a in (0, 1) for bb in (0, 1)], 3)
            gy = gy.reshape(B, n + 1, m + 1, 4 * c).permute(0, 3, 1, 2)  # [B, 4C, n+1, m+1], channel (a, b, c)
            fmt = _fmt(x)
            gy, k = gy.contiguous(memory_format=fmt), phase_kernel(w).contiguous(memory_format=fmt)
            gx, gk, gb4 = cb(gy, x, k, [4 * c] if has_bias else None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                             (need_x, need_w, has_bias and need_b))
            if need_w:
                gw = phase_kernel_grad(gk, cin, c)
            if has_bias and need_b:
                gb = gb4.reshape(4, c).sum(0)
            return gx, gw, gb, None, None, None
        if need_x:
            gx = F.conv2d(g, w, None, stride, padding)
        if need_w:
            gw = cb(x, g, w, None, list(stride), list(padding), [1, 1], False, [0, 0], 1, (False, True, False))[1]
        if has_bias and need_b:
            gb = g.sum((0, 2, 3))
        return gx, gw, gb, None, None, None

    @staticmethod
    def jvp(ctx, dx, dw, db, *_):
        x, w = ctx.saved_tensors
        stride, padding, output_padding, _ = ctx.conf
        out = None
        if dx is not None:
            out = _forward(dx, w, None, stride, padding, output_padding)
        if dw is not None:
            t = _forward(x, dw, None, stride, padding, output_padding)
            out = t if out is None else out + t
        if db is not None:
            t = db[None, :, None, None]
            if out is None:
                size = [(i - 1) * s - 2 * p + k + o for i, s, p, k, o in
                         zip(x.shape[2:], stride, padding, w.shape[2:], output_padding)]
                t = t.expand(x.shape[0], -1, *size)
            out = t if out is None else out + t
        return out


def conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)) -> torch.Tensor:
    """``F.conv_transpose2d(x, w, b, stride, padding, output_padding)`` (groups 1, dilation 1)
    through the kernels above; under autocast the inputs are cast to its dtype first (as
    autocast does for a convolution)."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        dt = torch.get_autocast_dtype(dev)
        x, w, b = (t if t is None or t.dtype == torch.float64 else t.to(dt) for t in (x, w, b))
        with torch.autocast(dev, enabled=False):
            return _ConvTranspose2d.apply(x, w, b, tuple(stride), tuple(padding), tuple(output_padding))
    return _ConvTranspose2d.apply(x, w, b, tuple(stride), tuple(padding), tuple(output_padding))
