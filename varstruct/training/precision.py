"""Training precision: ``fp32``, ``bf16`` autocast or ``fp64``, and ``auto`` choosing fp32/bf16.

bf16 runs the networks' convolutions and matmuls under ``torch.autocast(dtype=bfloat16)``;
the master weights, the optimiser state, every loss and the KL stay fp32 (the networks'
outputs are cast back to fp32 before any loss), and the weights are saved in fp32.
``auto`` = bf16 where the hardware computes it natively (a CUDA device, or a CPU with
AVX512-BF16 or AMX-BF16), else fp32. ``fp64`` trains a float64 network end to end (weights,
batches, losses; saved in float64), for numerical checks. A run records its resolved precision
(fp32 | bf16 | fp64).
"""
from __future__ import annotations

import contextlib
import functools

import torch

from ..catalog import PRECISIONS, RESOLVED_PRECISIONS as RESOLVED  # noqa: F401
from ..errors import ConfigError
from ..validate import check_choice


def param_dtype(precision: str) -> torch.dtype:
    """The dtype of a run's weights (and batches): float64 for fp64, else float32."""
    return torch.float64 if precision == "fp64" else torch.float32


def cast(batch, dtype: torch.dtype):
    """A batch (a tensor or a tuple of tensors) in ``dtype``."""
    if isinstance(batch, tuple):
        return tuple(b.to(dtype) for b in batch)
    return batch.to(dtype)


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True if the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16)."""
    cap = ""
    try:
        cap = torch.backends.cpu.get_cpu_capability()  # e.g. "AVX512", "AVX512_BF16", "AMX"
    except Exception:  # noqa: BLE001 (older torch)
        pass
    if "BF16" in cap.upper() or "AMX" in cap.upper():
        return True
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """``fp32`` or ``bf16`` for ``precision`` in fp32|bf16|auto on ``device`` (cpu|cuda...)."""
    p = check_choice("precision", precision, PRECISIONS, ConfigError)
    if p != "auto":
        return p
    if str(device).startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(precision: str, device: str = "cpu"):
    """A factory of the context the networks run in: autocast to bf16, or nothing for fp32."""
    if precision == "bf16":
        return functools.partial(torch.autocast, str(device).split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext


def to_device(batch, device):
    """A batch (a tensor or a tuple of tensors) on ``device`` (memory format kept)."""
    if isinstance(batch, tuple):
        return tuple(b.to(device, non_blocking=True) for b in batch)
    return batch.to(device, non_blocking=True)


class Autocast:
    """``model`` seen through ``amp``: ``encode``/``decode`` run in ``amp()`` and return fp32
    tensors; every other attribute is the model's own (``masked``, ``mask_penalty``, ...)."""

    def __init__(self, model, amp):
        self.model, self.amp = model, amp

    def encode(self, x):
        with self.amp():
            mean, logvar = self.model.encode(x)
        return mean.float(), logvar.float()

    def decode(self, z):
        with self.amp():
            return self.model.decode(z).float()

    def __getattr__(self, name):
        if name in ("model", "amp"):  # not yet set (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)


def wrap(model, precision: str, device: str = "cpu"):
    """The model as the objective should call it: :class:`Autocast` for bf16, else itself."""
    return Autocast(model, autocast(precision, device)) if precision == "bf16" else model
