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


HALF_DTYPES = (torch.float16, torch.bfloat16)
MANIFEST = "manifest.csv"
SHA_SUFFIX = ".sha256"


def upcast_half(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every float16 / bfloat16 tensor as float32 (half-precision weights files load as float32)."""
    return {k: v.float() if v.dtype in HALF_DTYPES else v for k, v in tensors.items()}


def file_sha256(path) -> str:
    """The sha256 hex digest of a file's bytes."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_sha256(path) -> Path:
    """Write ``<path>.sha256`` beside a weights file (``sha256sum`` format: digest, two spaces, name)."""
    from ..io import write_text

    path = Path(path)
    return write_text(path.with_name(path.name + SHA_SUFFIX), f"{file_sha256(path)}  {path.name}\n")


def expected_sha256(path) -> tuple[str, str] | None:
    """(digest, where it is recorded) for a weights file: its ``<name>.sha256`` sidecar, else the
    ``weights_sha256`` column of the row of the nearest ``manifest.csv`` above it whose ``path``
    is the run dir (relative to the manifest's folder); None when neither records one."""
    import csv

    path = Path(path)
    side = path.with_name(path.name + SHA_SUFFIX)
    if side.is_file():
        try:
            digest = side.read_text().split()[0].lower()
        except (OSError, UnicodeDecodeError, IndexError):
            raise RunDirError(f"{side}: unreadable sha256 file (expected '<hex digest>  {path.name}')") from None
        return digest, str(side)
    run = path.parent.resolve()
    for folder in run.parents:
        manifest = folder / MANIFEST
        if not manifest.is_file():
            continue
        rel = run.relative_to(folder).as_posix()
        try:
            with open(manifest, newline="") as f:
                for row in csv.DictReader(f):
                    if row.get("path") == rel and row.get("weights_sha256"):
                        return row["weights_sha256"].strip().lower(), str(manifest)
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise RunDirError(f"{manifest}: unreadable manifest ({first_line(e)})") from None
        return None  # the nearest manifest does not list this run
    return None


def verify_sha256(path) -> None:
    """RunDirError (one line) if the weights file's sha256 differs from the one recorded for it."""
    rec = expected_sha256(path)
    if rec is not None and file_sha256(path) != rec[0]:
        raise RunDirError(f"{path}: sha256 mismatch with {rec[1]} (the weights file was changed or replaced; "
                          f"restore it or re-run the manifest)")


def write_weights(path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> Path:
    """Atomically write tensors to a safetensors file."""
    from safetensors.torch import save

    from ..io import write_bytes

    return write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata))


def load_model(run_dir: str | os.PathLike):
    """``RunDir(run_dir).load_model()``: the trained model in eval mode with ``.config``."""
    from ..rundir import RunDir

    return RunDir(run_dir).load_model()
