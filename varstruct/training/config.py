"""The training configuration and its resolution into (dataset, objective, config.json dict)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, RunDirError
from ..validate import check_choice, check_float, check_int, check_seed

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
    return check_int(name, v, lo, error=ConfigError)


def resolve(cfg: TrainConfig):
    """Validate ``cfg``; return (dataset, objective, record) where record is the config.json dict."""
    from .. import __version__, data
    from ..models.nets import ARCHS, DEFAULT_HIDDEN, default_arch
    from ..models.masked import MASK_MODES
    from ..models.objectives import make_objective
    from .precision import resolve_precision

    seed = check_seed("seed", cfg.seed, error=ConfigError)
    steps = _int("steps", cfg.steps, 1)
    batch = _int("batch_size", cfg.batch_size, 2)
    latents = _int("latent_dim", cfg.latent_dim, 1)
    log_every = _int("log_every", cfg.log_every, 1)
    ckpt = _int("checkpoint_every", cfg.checkpoint_every, 1)
    lr = check_float("lr", cfg.lr, 0.0, lo_open=True, error=ConfigError)
    prec = resolve_precision(cfg.precision)
    if not isinstance(cfg.hparams, dict) or not isinstance(cfg.dataset_params or {}, dict):
        raise ConfigError("hparams and dataset_params must be dicts")
    from ..models.objectives import objective_class

    pairs = objective_class(cfg.method).pairs
    data_file = str(Path(cfg.data_file).expanduser().resolve()) if cfg.data_file else None
    ds = data.get(cfg.dataset, data_file=data_file, **(cfg.dataset_params or {}))
    shape = [int(v) for v in ds.image_shape]
    arch = cfg.arch or default_arch(shape)
    check_choice("arch", arch, ARCHS, error=ConfigError)
    if arch == "conv" and shape[:2] != [64, 64]:
        raise ConfigError(f"the conv architecture takes 64x64 images; {cfg.dataset} has {shape[0]}x{shape[1]} (use arch mlp)")
    hidden = None
    if arch == "mlp":
        hidden = list(cfg.hidden) if cfg.hidden else list(DEFAULT_HIDDEN)
        if not hidden:
            raise ConfigError(f"hidden must be a list of positive integers, got {cfg.hidden!r}")
        hidden = [check_int("hidden", h, 1, error=ConfigError) for h in hidden]
    mask = None
    if cfg.mask:
        if not isinstance(cfg.mask, dict) or set(cfg.mask) - {"mode", "l1"}:
            raise ConfigError(f"mask must be a dict with keys mode, l1; got {cfg.mask!r}")
        mask = {"mode": check_choice("mask mode", cfg.mask.get("mode", "continuous"), MASK_MODES, error=ConfigError),
                "l1": check_float("mask l1", cfg.mask.get("l1", 0.0), 0.0, error=ConfigError)}
    from ..resources import check_train_memory

    check_train_memory({"image_shape": shape, "arch": arch, "hidden": hidden, "latent_dim": latents,
                        "batch_size": batch, "method": cfg.method}, pairs)
    import torch

    with torch.random.fork_rng(devices=[]):  # validation only: leave the caller's RNG alone
        objective = make_objective(cfg.method, cfg.hparams, latents, recon=cfg.recon, recon_var=cfg.recon_var)
    if objective.pairs:  # fail now, not at the first batch: e.g. k larger than the number of factors
        try:
            ds.sample_pairs(2, 0, k=objective.hparams["k"], changeable=objective.hparams.get("changeable"))
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
    from ..rundir import RunDir

    rd = RunDir(run_dir)
    if cfg.precision != "auto" or not rd.config_path.is_file():
        return record
    try:
        recorded = rd.read_config().get("precision", IMPLIED["precision"])
    except (RunDirError, AttributeError):
        return record  # an unreadable config.json is reported where the run dir is checked
    return {**record, "precision": recorded} if recorded in ("fp32", "bf16", "fp64") else record


def differences(a: dict, b: dict) -> list[str]:
    """Names of the identity fields on which two config.json dicts differ."""
    keys = (set(a) | set(b)) - set(NON_IDENTITY)
    return sorted(k for k in keys if a.get(k, IMPLIED.get(k)) != b.get(k, IMPLIED.get(k)))
