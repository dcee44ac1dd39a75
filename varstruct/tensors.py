"""The one place where dataset images (numpy [B, H, W, C]) meet model tensors (torch [B, C, H, W]).

- :func:`to_torch` / :func:`to_numpy`: layout conversion.
- :func:`model_dtype_device`, :func:`images_to_model`: images in the model's dtype and on its device.
- :func:`encode_batches`: the one encoder-batching helper (metrics, measures): encoder mean and
  log-variance of numpy images, batched, without gradients, returned as float64 numpy.
- :func:`mean_encoder`: ``images -> codes`` for the metrics, built on :func:`encode_batches`.
- :func:`limit_threads` (from :mod:`varstruct.threads`, the one thread limiter): torch and
  BLAS/OpenMP threads for the length of one library call, restored after.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from .catalog import ENCODE_PRECISIONS as PRECISIONS
from .threads import check_threads, limit_threads  # noqa: F401  (re-exported)


def to_torch(images: np.ndarray, device=None, dtype=None) -> torch.Tensor:
    """float32 numpy [B, H, W, C] -> torch [B, C, H, W] (contiguous; float32 unless ``dtype``)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    if device is not None or dtype is not None:
        x = x.to(device=device, dtype=dtype)
    return x.contiguous()


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """torch [B, C, H, W] -> float32 numpy [B, H, W, C]."""
    return x.detach().permute(0, 2, 3, 1).cpu().numpy().astype(np.float32, copy=False)


def model_dtype_device(model) -> tuple[torch.dtype, torch.device]:
    """dtype and device of the model's first floating parameter or buffer (float32/CPU if none,
    or if ``model`` is not a torch Module)."""
    if isinstance(model, torch.nn.Module):
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                return t.dtype, t.device
    return torch.float32, torch.device("cpu")


def images_to_model(model, images: np.ndarray) -> torch.Tensor:
    """numpy [B, H, W, C] -> torch [B, C, H, W] in the model's dtype and on its device."""
    dtype, device = model_dtype_device(model)
    return to_torch(images, device=device, dtype=dtype)


def _autocast(model, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        from .errors import VarstructError

        raise VarstructError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    _, device = model_dtype_device(model)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def encode_batches(model, images: np.ndarray, batch_size: int = 256, precision: str = "fp32"):
    """Encoder mean and log-variance of images [N, H, W, C] -> (float64 [N, L], float64 [N, L] or None).

    ``model.encode(x [B, C, H, W]) -> (mean [B, L], logvar [B, L] or None)`` runs under
    ``torch.no_grad`` on batches of ``batch_size`` images cast to the model's dtype and moved to
    its device (a float64 or CUDA model works as a float32 CPU one). logvar is None if encode
    returns None for it. ``precision='bf16'`` runs the encoder under bfloat16 autocast (see
    :func:`mean_encoder` for why the metrics do not use it)."""
    batch_size = int(batch_size)
    means, logvars = [], []
    with torch.no_grad(), _autocast(model, precision):
        for s in range(0, len(images), batch_size):
            mean, logvar = model.encode(images_to_model(model, images[s:s + batch_size]))
            means.append(mean.detach().double().cpu().numpy())
            if logvar is not None:
                logvars.append(logvar.detach().double().cpu().numpy())
    if not means:
        return np.zeros((0, 0)), None
    mean = np.concatenate(means)
    return mean, (np.concatenate(logvars) if len(logvars) == len(means) else None)


def mean_encoder(model, batch_size: int = 512, precision: str = "fp32"):
    """Wrap ``model.encode`` as ``f(images np [B, H, W, C]) -> codes np float64 [B, L]`` (the
    encoder mean, batched by :func:`encode_batches`): the representation the metrics score.

    The metrics use the model's own precision (fp32 for a trained model, no autocast);
    ``precision='bf16'`` is an explicit opt-in only.
    bf16 autocast codes were compared with fp32 codes on trained models
    (benchmarks/bench_encode_precision.py, 2,000 train / 1,000 test points): on the dSprites
    β-VAE |ΔMIG| = 8.6e-4 but |ΔDCI| up to 4.0e-3; on two toy_blobs β-VAEs |ΔMIG| up to 1.7e-2
    and |ΔDCI disentanglement| up to 0.30. bf16 keeps 8 bits of mantissa: on collapsed latents
    the rounding is larger than the code's own spread, and histogram bins and tree splits then
    follow the rounding. Both exceed the 1e-3 allowed, so fp32 stays."""
    _autocast(model, precision)  # validate now, not at the first call

    def encode(images: np.ndarray) -> np.ndarray:
        return encode_batches(model, images, batch_size, precision)[0]
    return encode


def torch_threads(n: int | None):
    """The one thread limiter, :func:`varstruct.threads.limit_threads` (kept under this name
    for the training loop, which should call ``limit_threads`` directly)."""
    return limit_threads(n)
