"""Model dirs: ``config.json`` + ``model.safetensors`` (+ ``train_log.csv``), read and written.

Only JSON and safetensors are ever read: nothing in a model dir is unpickled or executed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .errors import ModelDirError

CONFIG, WEIGHTS, LOG, CHECKPOINT = "config.json", "model.safetensors", "train_log.csv", "checkpoint.safetensors"
REQUIRED_KEYS = ("dataset", "dataset_params", "data_file", "method", "hparams", "seed", "steps", "batch_size",
                 "arch", "latent_dim", "image_shape", "version")


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def read_config(run_dir: str | os.PathLike) -> dict:
    """The run's config dict; ModelDirError if the dir or a valid config.json is missing."""
    d = Path(run_dir)
    if not d.is_dir():
        raise ModelDirError(f"{d}: no such model dir")
    p = d / CONFIG
    if not p.is_file():
        raise ModelDirError(f"{d}: no {CONFIG}")
    try:
        cfg = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelDirError(f"{p}: not a valid JSON config ({_first_line(e)})") from None
    if not isinstance(cfg, dict):
        raise ModelDirError(f"{p}: not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        raise ModelDirError(f"{p}: missing field(s) {', '.join(missing)}")
    return cfg


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A safetensors file as a dict of tensors; ModelDirError if missing or corrupt."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelDirError(f"{path.parent}: no {path.name} (training unfinished? finish it with --resume)")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ModelDirError(f"{path}: corrupt weights file ({_first_line(e)})") from None


def write_weights(path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> Path:
    """Atomically write tensors to a safetensors file."""
    from safetensors.torch import save_file

    from ..io import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return Path(path)


def load_model(run_dir: str | os.PathLike):
    """The trained model of a model dir, in eval mode, with ``.config`` (the dict) and
    ``.deterministic``; ``encode(x [B,C,H,W]) -> (mean, logvar)``, ``decode(z) -> logits``.

    Raises ModelDirError (one line) for a missing dir, a missing/invalid config or a
    missing/corrupt/mismatched weights file."""
    from .nets import build_model

    d = Path(run_dir)
    cfg = read_config(d)
    state = read_weights(d / WEIGHTS)
    try:
        with torch.random.fork_rng(devices=[]):
            model = build_model(cfg)
    except (ValueError, KeyError, TypeError) as e:
        raise ModelDirError(f"{d / CONFIG}: cannot build the model ({_first_line(e)})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelDirError(f"{d / WEIGHTS}: weights do not match the config ({_first_line(e)})") from None
    model.eval()
    model.config = cfg
    return model


def load_run_dataset(config: dict):
    """The dataset a run was trained on (``varstruct.datasets.get`` with its name, params, file)."""
    from .. import data

    return data.get(config["dataset"], data_file=config.get("data_file"), **(config.get("dataset_params") or {}))
