"""Safetensors weights files, read and written (the model-dir layout lives in :mod:`varstruct.rundir`).

Only safetensors is ever read: nothing is unpickled or executed.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import RunDirError, first_line


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A safetensors file as a dict of tensors; RunDirError if missing or corrupt."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path.parent}: no {path.name} (training unfinished? finish it with "
                          f"`varstruct train --resume --out {path.parent}`)")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise RunDirError(f"{path}: corrupt weights file ({first_line(e)})") from None


def write_weights(path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> Path:
    """Atomically write tensors to a safetensors file."""
    from safetensors.torch import save

    from ..io import write_bytes

    return write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata))


def load_model(run_dir: str | os.PathLike):
    """``RunDir(run_dir).load_model()``: the trained model in eval mode with ``.config``."""
    from ..rundir import RunDir

    return RunDir(run_dir).load_model()
