"""The training configuration and its resolution into (dataset, objective, config.json dict)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..models.errors import ConfigError

# Fields that do not change the trained weights (ignored when a resumed run is compared).
NON_IDENTITY = ("checkpoint_every", "version")
# Values of fields that config.json files written before the field existed imply.
IMPLIED = {"precision": "fp32"}
# auto by default: bf16 kept recon, KL and MIG within fp32's seed-to-seed spread on the dSprites
# β-VAE and on toy_blobs (benchmarks/bench_precision_quality.py; numbers in benchmarks/README.md).
DEFAULT_PRECISION = "auto"


@dataclass
class TrainConfig:
    """Everything that defines a training run (Locatello et al. 2019 defaults).

    dataset / dataset_params / data_file: what ``varstruct.datasets.get`` builds.
    method / hparams: the objective (:mod:`varstruct.models.objectives`); missing
    hyper-parameters take the method's defaults. arch: "conv" (64x64 only) or "mlp"; None
    picks conv for 64x64 images, else mlp. hidden: mlp layer sizes. recon: "bernoulli" or
    "gaussian" (fixed variance recon_var). mask: None, or {"mode": continuous|ste|hard_concrete,
    "l1": λ} to channel-mask every layer. precision: "fp32", "bf16" or "auto"
    (:mod:`varstruct.training.precision`; config.json records the resolved fp32|bf16 and a
    run resumes only with the same). log_every: steps per train_log.csv row (the mean of
    the steps since the last row). checkpoint_every: steps between checkpoints. out: the model dir.
    """

    dataset: str
    method: str
    hparams: dict = field(default_factory=dict)
    dataset_params: dict = field(default_factory=dict)
    data_file: str | None = None
    seed: int = 0
    steps: int = 10000
    batch_size: int = 64
    latent_dim: int = 10
    arch: str | None = None
    hidden: list | None = None
    lr: float = 1e-4
    recon: str = "bernoulli"
    recon_var: float = 0.02
    mask: dict | None = None
    precision: str = DEFAULT_PRECISION
    log_every: int = 10
    checkpoint_every: int = 500
    out: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if isinstance(d, TrainConfig):
            return d
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a dict or TrainConfig, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        ignored = {"image_shape", "version"}  # derived fields of a config.json
        unknown = sorted(set(d) - names - ignored)
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}")
        for req in ("dataset", "method"):
            if req not in d:
                raise ConfigError(f"config needs a {req!r}")
        return cls(**{k: v for k, v in d.items() if k in names})


def _int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or int(v) < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


def resolve(cfg: TrainConfig):
    """Validate ``cfg``; return (dataset, objective, record) where record is the config.json dict."""
    from .. import __version__, data
    from ..models.nets import ARCHS, DEFAULT_HIDDEN, default_arch
    from ..models.masked import MASK_MODES
    from ..models.objectives import make_objective
    from .precision import resolve_precision

    seed = _int("seed", cfg.seed, 0)
    steps = _int("steps", cfg.steps, 1)
    batch = _int("batch_size", cfg.batch_size, 2)
    latents = _int("latent_dim", cfg.latent_dim, 1)
    log_every = _int("log_every", cfg.log_every, 1)
    ckpt = _int("checkpoint_every", cfg.checkpoint_every, 1)
    try:
        lr = float(cfg.lr)
    except (TypeError, ValueError):
        raise ConfigError(f"lr must be a number, got {cfg.lr!r}") from None
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"lr must be > 0, got {cfg.lr!r}")
    prec = resolve_precision(cfg.precision)
    if not isinstance(cfg.hparams, dict) or not isinstance(cfg.dataset_params or {}, dict):
        raise ConfigError("hparams and dataset_params must be dicts")
    import torch

    with torch.random.fork_rng(devices=[]):  # validation only: leave the caller's RNG alone
        objective = make_objective(cfg.method, cfg.hparams, latents, recon=cfg.recon, recon_var=cfg.recon_var)
    data_file = str(Path(cfg.data_file).expanduser().resolve()) if cfg.data_file else None
    ds = data.get(cfg.dataset, data_file=data_file, **(cfg.dataset_params or {}))
    shape = [int(v) for v in ds.image_shape]
    arch = cfg.arch or default_arch(shape)
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if arch == "conv" and shape[:2] != [64, 64]:
        raise ConfigError(f"the conv architecture takes 64x64 images; {cfg.dataset} has {shape[0]}x{shape[1]} (use arch mlp)")
    hidden = None
    if arch == "mlp":
        hidden = list(cfg.hidden) if cfg.hidden else list(DEFAULT_HIDDEN)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ConfigError(f"hidden must be a list of positive integers, got {cfg.hidden!r}")
    mask = None
    if cfg.mask:
        if not isinstance(cfg.mask, dict) or set(cfg.mask) - {"mode", "l1"}:
            raise ConfigError(f"mask must be a dict with keys mode, l1; got {cfg.mask!r}")
        mask = {"mode": cfg.mask.get("mode", "continuous"), "l1": float(cfg.mask.get("l1", 0.0))}
        if mask["mode"] not in MASK_MODES:
            raise ConfigError(f"mask mode must be one of {', '.join(MASK_MODES)}, got {mask['mode']!r}")
        if not (mask["l1"] >= 0 and math.isfinite(mask["l1"])):
            raise ConfigError(f"mask l1 must be >= 0, got {cfg.mask.get('l1')!r}")
    if objective.pairs:  # fail now, not at the first batch: e.g. k larger than the number of factors
        try:
            ds.sample_pairs(2, 0, k=objective.hparams["k"])
        except (AttributeError, NotImplementedError):
            raise ConfigError(f"{cfg.method} needs pairs, which {cfg.dataset} cannot sample") from None
    record = {
        "dataset": cfg.dataset, "dataset_params": dict(cfg.dataset_params or {}), "data_file": data_file,
        "method": cfg.method, "hparams": dict(objective.hparams), "seed": seed, "steps": steps,
        "batch_size": batch, "arch": arch, "hidden": hidden, "latent_dim": latents, "image_shape": shape,
        "lr": lr, "recon": cfg.recon, "recon_var": objective.recon_var, "mask": mask,
        "precision": prec, "log_every": log_every, "checkpoint_every": ckpt, "version": __version__,
    }
    return ds, objective, record


def adopt_run_precision(cfg: TrainConfig, record: dict, run_dir) -> dict:
    """``record`` with the precision of the run in ``run_dir`` when ``cfg`` asks for "auto" (auto
    means: the run's own choice, so resuming with the default never trips over it; an explicit
    fp32/bf16 that differs from the run's is still refused)."""
    p = Path(run_dir) / "config.json"
    if cfg.precision != "auto" or not p.is_file():
        return record
    import json

    try:
        recorded = json.loads(p.read_text()).get("precision", IMPLIED["precision"])
    except (OSError, ValueError, AttributeError):
        return record  # an unreadable config.json is reported where the run dir is checked
    return {**record, "precision": recorded} if recorded in ("fp32", "bf16") else record


def differences(a: dict, b: dict) -> list[str]:
    """Names of the identity fields on which two config.json dicts differ."""
    keys = (set(a) | set(b)) - set(NON_IDENTITY)
    return sorted(k for k in keys if a.get(k, IMPLIED.get(k)) != b.get(k, IMPLIED.get(k)))
