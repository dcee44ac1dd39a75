"""What a run dir holds, as objects: its model (:func:`load_model`) and its dataset
(:func:`load_dataset`), defined once, above :mod:`varstruct.runs.layout` (the files) and
:mod:`varstruct.runs.weights` (the safetensors and their hashes).

``varstruct.load_model(dir)`` is :func:`load_model`. Only safetensors and JSON are read: nothing is
unpickled. Importing this module does not import torch (:func:`load_model` does).
"""
from __future__ import annotations

import os

from ..errors import RunDirError, first_line
from ..runs.layout import RunDir


def upcast_half(tensors: dict) -> dict:
    """Every float16 / bfloat16 torch tensor as float32, the others unchanged (half-precision
    weights files load as float32; the float32 values are exactly the half values)."""
    import torch

    half = (torch.float16, torch.bfloat16)
    return {k: v.float() if v.dtype in half else v for k, v in tensors.items()}


def load_model(run_dir: str | os.PathLike | RunDir, device: str = "cpu"):
    """The trained model of a run dir in eval mode with ``.config`` (the run's config dict)
    attached; ``encode(x [B,C,H,W]) -> (mean, logvar)``, ``decode(z) -> logits``. ``device``
    (cpu, cuda, cuda:N or auto; :mod:`varstruct.devices`): where the model is put; the metrics
    and measures move their images to it.

    The weights are checked against their recorded sha256 (sidecar or manifest row), upcast to
    float32 if stored in half precision, and loaded strictly (every parameter, no extra). The
    network is built under a forked torch RNG, so loading does not move the global torch seed.
    RunDirError (one line) for a missing dir, a missing/invalid config or missing, corrupt or
    mismatched weights; ResourceError if the model does not fit in memory."""
    import torch

    from ..devices import check_device
    from .nets import build_model

    device = check_device(device)
    rd = RunDir(run_dir)
    cfg = rd.read_config()
    if rd.is_released:
        raise RunDirError(f"{rd.path}: results without weights (released): train its config.json again to "
                          f"restore them (bit for bit on CPU; {rd.WEIGHTS_SHA} checks them)")
    if not rd.weights_path.is_file():
        rd.require("trained")
    check_model_size(rd, cfg)
    state = upcast_half(rd.read_weights())
    try:
        with torch.random.fork_rng(devices=[]):
            model = build_model(cfg)
    except (ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{rd.config_path}: cannot build the model ({first_line(e)})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RunDirError(f"{rd.weights_path}: weights do not match the config ({_state_dict_error(e)})") from None
    model.eval()
    if device != "cpu":
        from ..devices import resolve_device

        model.to(resolve_device(device))
    model.config = cfg
    return model


def load_dataset(run_dir: str | os.PathLike | RunDir, config: dict | None = None):
    """The dataset the run was trained on, from its config (``config``, or the dir's
    config.json): ``varstruct.datasets.get(config["dataset"], data_file=config["data_file"],
    **config["dataset_params"])``. RunDirError if ``dataset_params`` is not a JSON object."""
    cfg = RunDir(run_dir).read_config() if config is None else config
    return dataset_from_config(cfg)


def dataset_from_config(config: dict):
    """``varstruct.datasets.get(config["dataset"], data_file=..., **config["dataset_params"])``."""
    from ..data.registry import get

    params = config.get("dataset_params") or {}
    if not isinstance(params, dict):
        raise RunDirError(f"dataset_params must be a JSON object, got {params!r}")
    return get(config["dataset"], data_file=config.get("data_file"), **params)


def check_model_size(run_dir: str | os.PathLike | RunDir, config: dict | None = None) -> int:
    """Bytes the config's model needs (``config``, or the dir's config.json); ResourceError
    naming the config if twice that exceeds the available memory, RunDirError if its sizes are
    not numbers."""
    from ..resources import model_bytes, require

    rd = RunDir(run_dir)
    cfg = rd.read_config() if config is None else config
    try:
        n = model_bytes(cfg)
    except (TypeError, ValueError, AttributeError) as e:
        raise RunDirError(f"{rd.config_path}: bad image_shape, latent_dim or hidden ({first_line(e)})") from None
    require(f"{rd.config_path} (latent_dim, hidden)", 2 * n, "the model's weights")
    return n


def _state_dict_error(e: BaseException) -> str:
    """The informative line of torch's load_state_dict error (its first line is a bare header)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    detail = [ln for ln in lines[1:] if ln]
    return detail[0].rstrip(".") if detail else (lines[0] if lines else type(e).__name__)
