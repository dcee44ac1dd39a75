"""Where the networks run: ``cpu``, ``cuda`` (``cuda:N``) or ``auto``.

- ``auto`` (the default of ``train``, ``evaluate``, ``measure model`` and ``sweep``): the
  current CUDA device where torch sees one, else the CPU.
- ``cuda`` / ``cuda:N``: that GPU; refused with one line (:class:`ConfigError`) where torch
  has no CUDA or no such device.
- ``cpu``: the CPU.

The device is *not* part of a run's identity: a run trained on a GPU has the same config.json
(so a CPU run and a GPU run of one config can be compared, and either can be resumed on the
other), fp32 weights in model.safetensors (moved to the CPU when written) and the same files.
Precision ``auto`` resolves per device (bf16 on a GPU that supports it, see
:mod:`varstruct.training.precision`) and the resolved precision is recorded. Bit-identity holds
for one device and thread count: a GPU run is reproducible on that GPU (deterministic
algorithms, ``CUBLAS_WORKSPACE_CONFIG=:4096:8``), not bit-equal to a CPU run.

:func:`check_device` validates the spelling without importing torch (the CLI calls it before
any work); :func:`resolve_device` asks torch.
"""
from __future__ import annotations

import os
import re

from .catalog import DEVICES
from .errors import ConfigError

_SPELLING = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<index>\d+))?$")


def check_device(device, name: str = "device") -> str:
    """``device`` normalised (``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``); ConfigError
    naming ``name`` otherwise. Imports no torch."""
    text = "auto" if device is None else str(device).strip().lower()
    m = _SPELLING.match(text)
    if not m or m["kind"] not in DEVICES or (m["index"] is not None and m["kind"] != "cuda"):
        raise ConfigError(f"{name} must be one of {', '.join(DEVICES)} or cuda:N, not {device!r}")
    return text


def resolve_device(device="auto", name: str = "device"):
    """The :class:`torch.device` that ``device`` names on this machine.

    auto -> ``cuda:<current>`` if ``torch.cuda.is_available()`` else ``cpu``. cuda / cuda:N
    without CUDA, or N beyond the device count -> ConfigError (one line). For a CUDA device
    ``CUBLAS_WORKSPACE_CONFIG`` is set (unless already set) so cuBLAS is deterministic."""
    text = check_device(device, name)
    import torch

    kind, _, index = text.partition(":")
    if kind == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if kind == "auto":
        if not available:
            return torch.device("cpu")
        index = ""
    if not available:
        why = (f"torch {torch.__version__} is a CPU-only build" if torch.version.cuda is None
               else "torch sees no GPU")
        raise ConfigError(f"{name} {text}: no CUDA device here ({why}); use {name} cpu or auto")
    n = torch.cuda.device_count()
    if index and int(index) >= n:
        raise ConfigError(f"{name} {text}: this machine has {n} CUDA device{'s' if n != 1 else ''} "
                          f"(cuda:0{f'..cuda:{n - 1}' if n > 1 else ''})")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.device("cuda", int(index) if index else torch.cuda.current_device())


def describe(device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``: the device and, for a GPU, its name."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    return f"{device} ({torch.cuda.get_device_name(device)})"
