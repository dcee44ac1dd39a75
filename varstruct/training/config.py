"""The training configuration: its one validation (:meth:`TrainConfig.validate`, torch-free) and its
resolution into (dataset, objective, config.json dict).

Validation is declarative (scikit-learn's ``_parameter_constraints`` is the model):
``TrainConfig._parameter_constraints`` maps each field to the list of forms it accepts
(:mod:`varstruct.validate`), the method's hyper-parameters come from :mod:`varstruct.catalog`,
and one checker applies both. Every error is a :class:`ConfigError` whose ``param`` names the
field (``"latent_dim"``, ``"hparams.beta"``, ``"mask.l1"``). The CLI, the sweep (before any
work), the trainer and the readers of config.json (:func:`validate_record`) all go through it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog
from ..errors import ConfigError, RunDirError
from ..validate import SEED_MAX, Interval, ListOf, Options, Table, Text, check_params, check_value

# Fields that do not change the trained weights (ignored when a resumed run is compared).
NON_IDENTITY = ("checkpoint_every", "version")
# Values of fields that config.json files written before the field existed imply.
IMPLIED = {"precision": "fp32"}
# auto by default: bf16 kept recon, KL and MIG within fp32's seed-to-seed spread on the dSprites
# β-VAE and on toy_blobs (benchmarks/bench_precision_quality.py; numbers in benchmarks/README.md).
DEFAULT_PRECISION = "auto"
# the entries of a mask table and their forms (None: mode continuous, l1 0)
MASK_CONSTRAINTS = {"mode": [Options(catalog.MASK_MODES)], "l1": [Interval(float, 0.0)]}
MASK_DEFAULTS = {"mode": "continuous", "l1": 0.0}
# the entries of an until_converged table: judge the convergence criterion every check_every steps
# from min_steps on (varstruct.training.convergence); stop at the first check that passes
# the entries of a baseline table (varstruct.models.baselines): the kind and the fit sample's size
BASELINE_CONSTRAINTS = {"kind": [Options(catalog.BASELINES)], "n_fit": [Interval(int, 2)]}
BASELINE_DEFAULTS = {"n_fit": 10000}
UNTIL_CONVERGED_CONSTRAINTS = {"min_steps": [Interval(int, 1)], "check_every": [Interval(int, 1)]}
# the derived fields a config.json holds besides TrainConfig's
RECORD_ONLY = ("image_shape", "version")


class _DatasetName(Options):
    """A dataset the registry knows (read on first use: ``varstruct.data.registry`` is torch-free)."""

    def __init__(self):
        pass

    @property
    def values(self):
        from ..data.registry import file_only_names, names

        return tuple(names() + file_only_names())


@dataclass
class TrainConfig:
    """Everything that defines a training run (Locatello et al. 2019 defaults).

    dataset / dataset_params / data_file: what ``varstruct.datasets.get`` builds.
    method / hparams: the objective (:mod:`varstruct.models.objectives`; names, defaults and
    bounds in :data:`varstruct.catalog.METHODS`); missing hyper-parameters take the method's
    defaults. arch: "conv" (64x64 only) or "mlp"; None picks conv for 64x64 images, else mlp.
    hidden: mlp layer sizes. recon: "bernoulli" or "gaussian" (fixed variance recon_var). mask:
    None, or {"mode": continuous|ste|hard_concrete, "l1": λ} to channel-mask every layer.
    precision: "fp32", "bf16", "fp64" or "auto" (:mod:`varstruct.training.precision`;
    config.json records the resolved fp32|bf16|fp64 and a run resumes only with the same).
    log_every: steps per train_log.csv row (the mean of the steps since the last row).
    checkpoint_every: steps between checkpoints. out: the model dir.
    until_converged: None (train ``steps`` steps), or {"min_steps": m, "check_every": c}: ``steps``
    is then the budget, the most steps; at every multiple of c from m on, the convergence criterion
    (:mod:`varstruct.training.convergence`) is judged on the log so far as if the run were that
    long, and the run ends at the first check that passes (its train_log.csv then ends there). A
    run stopped at step T is the run of ``steps`` = T without the option, bit for bit. c must be a
    multiple of log_every, and m <= steps.
    baseline: None, or {"kind": pca|fastica|oracle, "n_fit": N (default 10000)}: a fitted
    baseline (:mod:`varstruct.models.baselines`) instead of a trained model; it needs method "ae",
    arch "linear" (or None), recon "gaussian" and steps 0 (nothing is trained). steps = 0 without a
    baseline keeps the seeded initial weights: the untrained-network baseline.
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
    until_converged: dict | None = None
    baseline: dict | None = None
    out: str | None = None

    # field -> the forms it accepts (hparams: a table here, its entries by the catalog)
    _parameter_constraints = {
        "dataset": [_DatasetName()],
        "method": [Options(catalog.METHODS)],
        "hparams": [Table(), None],
        "dataset_params": [Table(), None],
        "data_file": [Text(path=True), None],
        "seed": [Interval(int, 0, SEED_MAX - 1)],
        "steps": [Interval(int, 0)],
        "batch_size": [Interval(int, 2)],
        "latent_dim": catalog.OBJECTIVE_FIELDS["latent_dim"],
        "arch": [Options(catalog.ARCHS), None],
        "hidden": [ListOf(Interval(int, 1)), None],
        "lr": [Interval(float, 0.0, lo_open=True)],
        "recon": catalog.OBJECTIVE_FIELDS["recon"],
        "recon_var": catalog.OBJECTIVE_FIELDS["recon_var"],
        "mask": [Table(), None],
        "precision": [Options(catalog.PRECISIONS)],
        "log_every": [Interval(int, 1)],
        "checkpoint_every": [Interval(int, 1)],
        "until_converged": [Table(), None],
        "baseline": [Table(), None],
        "out": [Text(path=True), None],
    }

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if isinstance(d, TrainConfig):
            return d
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a dict or TrainConfig, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - set(RECORD_ONLY))
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}", param=unknown[0])
        for req in ("dataset", "method"):
            if req not in d:
                raise ConfigError(f"config needs a {req!r}", param=req)
        return cls(**{k: v for k, v in d.items() if k in names})

    def validate(self) -> "TrainConfig":
        """This config checked, with its values normalised (ints, floats, the method's
        hyper-parameters completed with their defaults, mask as {"mode", "l1"} or None, data_file
        and out as strings); torch-free, reads no file. ConfigError (with ``param``) on the first
        problem, fields in declaration order, then the hyper-parameters."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out = check_params(values, self._parameter_constraints)
        out["hparams"] = catalog.check_hparams(out["method"], out["hparams"])
        out["dataset_params"] = dict(out["dataset_params"] or {})
        mask = out["mask"]
        out["mask"] = {**MASK_DEFAULTS, **check_params(mask, MASK_CONSTRAINTS, prefix="mask.")} if mask else None
        out["until_converged"] = _check_until_converged(out["until_converged"], out["steps"], out["log_every"])
        out["baseline"] = _check_baseline(out)
        return TrainConfig(**out)


def _check_baseline(values: dict) -> dict | None:
    """The baseline table normalised ({"kind", "n_fit"}), or None; a baseline's fields checked
    (method ae, arch linear, recon gaussian, steps 0; arch None becomes linear in ``values``)."""
    table = values["baseline"]
    if table is None:
        return None
    table = {**BASELINE_DEFAULTS, **check_params(table, BASELINE_CONSTRAINTS, prefix="baseline.")}
    if "kind" not in table:
        raise ConfigError(f"baseline needs kind (one of {', '.join(catalog.BASELINES)})", param="baseline.kind")
    need = {"method": "ae", "arch": "linear", "recon": "gaussian", "steps": 0}
    if values["arch"] is None:
        values["arch"] = "linear"
    for k, v in need.items():
        if values[k] != v:
            raise ConfigError(f"the {table['kind']} baseline is fitted, not trained: it needs {k} = {v!r}, "
                              f"got {values[k]!r}", param=k)
    if values["mask"] is not None or values["until_converged"] is not None:
        raise ConfigError("a baseline takes no mask and no until_converged", param="baseline")
    return table


def _check_until_converged(table: dict | None, steps: int, log_every: int) -> dict | None:
    """The until_converged table normalised ({"min_steps", "check_every"}, both required), or None."""
    if table is None:
        return None
    table = check_params(table, UNTIL_CONVERGED_CONSTRAINTS, prefix="until_converged.")
    for k in UNTIL_CONVERGED_CONSTRAINTS:
        if k not in table:
            raise ConfigError(f"until_converged needs {k}", param=f"until_converged.{k}")
    if table["min_steps"] > steps:
        raise ConfigError(f"until_converged.min_steps ({table['min_steps']}) is more than steps ({steps}), "
                          "the budget", param="until_converged.min_steps")
    if table["check_every"] % log_every:
        raise ConfigError(f"until_converged.check_every ({table['check_every']}) must be a multiple of log_every "
                          f"({log_every}): the criterion is judged on whole log rows",
                          param="until_converged.check_every")
    return table


def validate_record(record: dict, where: str | None = None) -> dict:
    """A config.json dict (a resolved config: TrainConfig's fields plus image_shape and version)
    checked by :meth:`TrainConfig.validate`, plus its derived fields: precision resolved
    (fp32|bf16|fp64; absent: fp32), image_shape [H, W, C] of integers >= 1, version a string.
    Returns the normalised dict (the hyper-parameters completed). ``where`` (e.g. the file's
    path) prefixes the message. Torch-free."""
    try:
        if not isinstance(record, dict):
            raise ConfigError(f"a config must be a table (dict), got {type(record).__name__}")
        cfg = TrainConfig.from_dict(record).validate()
        out = {k: v for k, v in dataclasses.asdict(cfg).items() if k in record}
        out["precision"] = check_value("precision", record.get("precision", IMPLIED["precision"]),
                                       [Options(catalog.RESOLVED_PRECISIONS)])
        if "image_shape" in record:
            shape = check_value("image_shape", record["image_shape"], [ListOf(Interval(int, 1))])
            if len(shape) != 3:
                raise ConfigError(f"image_shape must be [height, width, channels], got {record['image_shape']!r}",
                                  param="image_shape")
            out["image_shape"] = shape
        if "version" in record:
            out["version"] = check_value("version", record["version"], [Text()])
        return out
    except ConfigError as e:
        if where is None:
            raise
        raise ConfigError(f"{where}: {e}", param=e.param) from None


def resolve_record(cfg: TrainConfig, resolve_auto: bool = True, device: str = "cpu"):
    """Validate ``cfg`` (:meth:`TrainConfig.validate`) and the checks that need its dataset (conv
    takes 64x64 images, the method's pairs can be sampled, the model and a batch fit in memory);
    return (dataset, record) where record is the config.json dict. Imports no torch itself (a
    dataset module may); ``resolve_auto=False`` leaves precision "auto" unresolved (resolving
    it asks torch about the hardware); ``device`` (cpu | cuda) is where "auto" is resolved for."""
    from .. import __version__, data

    cfg = TrainConfig.from_dict(cfg).validate()
    m = catalog.method(cfg.method)
    data_file = str(Path(cfg.data_file).expanduser().resolve()) if cfg.data_file else None
    ds = data.get(cfg.dataset, data_file=data_file, **cfg.dataset_params)
    shape = [int(v) for v in ds.image_shape]
    arch = cfg.arch or catalog.default_arch(shape)
    if arch == "conv" and shape[:2] != [64, 64]:
        raise ConfigError(f"the conv architecture takes 64x64 images; {cfg.dataset} has {shape[0]}x{shape[1]} "
                          f"(use arch mlp)", param="arch")
    hidden = (cfg.hidden or list(catalog.DEFAULT_HIDDEN)) if arch == "mlp" else None
    from ..resources import check_train_memory

    check_train_memory({"image_shape": shape, "arch": arch, "hidden": hidden, "latent_dim": cfg.latent_dim,
                        "batch_size": cfg.batch_size, "method": cfg.method})
    if m.pairs:  # fail now, not at the first batch: e.g. k larger than the number of factors
        try:
            ds.sample_pairs(2, 0, k=cfg.hparams["k"], changeable=cfg.hparams.get("changeable"))
        except (AttributeError, NotImplementedError):
            raise ConfigError(f"{cfg.method} needs pairs, which {cfg.dataset} cannot sample", param="method") from None
    precision = cfg.precision
    if resolve_auto or precision != "auto":
        from .precision import resolve_precision

        precision = resolve_precision(precision, device)
    record = {
        "dataset": cfg.dataset, "dataset_params": cfg.dataset_params, "data_file": data_file,
        "method": cfg.method, "hparams": cfg.hparams, "seed": cfg.seed, "steps": cfg.steps,
        "batch_size": cfg.batch_size, "arch": arch, "hidden": hidden, "latent_dim": cfg.latent_dim,
        "image_shape": shape, "lr": cfg.lr, "recon": cfg.recon, "recon_var": cfg.recon_var, "mask": cfg.mask,
        "precision": precision, "log_every": cfg.log_every, "checkpoint_every": cfg.checkpoint_every,
        "version": __version__,
    }
    if cfg.until_converged is not None:  # absent otherwise: earlier config.json files stay identical
        record["until_converged"] = cfg.until_converged
    if cfg.baseline is not None:
        if cfg.baseline["kind"] == "oracle":  # one code per readout direction: checked before any work
            from ..models.baselines import oracle_directions

            k = len(oracle_directions(ds))
            if cfg.latent_dim != k:
                raise ConfigError(f"the oracle of {cfg.dataset} has one code per readout direction ({k}); "
                                  f"latent_dim is {cfg.latent_dim}", param="latent_dim")
        record["baseline"] = cfg.baseline
    return ds, record


def resolve(cfg: TrainConfig, device: str = "cpu"):
    """Validate ``cfg``; return (dataset, objective, record) where record is the config.json dict
    (precision "auto" resolved for ``device``, cpu or cuda)."""
    ds, record = resolve_record(cfg, device=device)
    import torch

    from ..models.objectives import make_objective

    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG alone
        objective = make_objective(record["method"], record["hparams"], record["latent_dim"], recon=record["recon"],
                                   recon_var=record["recon_var"])
    return ds, objective, record


def adopt_run_precision(cfg: TrainConfig, record: dict, run_dir) -> dict:
    """``record`` with the precision of the run in ``run_dir`` when ``cfg`` asks for "auto" (auto
    means: the run's own choice, so resuming with the default never trips over it; an explicit
    fp32/bf16 that differs from the run's is still refused)."""
    from ..runs.layout import RunDir

    rd = RunDir(run_dir)
    if cfg.precision != "auto" or not rd.config_path.is_file():
        return record
    try:
        recorded = rd.read_config().get("precision", IMPLIED["precision"])
    except (RunDirError, AttributeError):
        return record  # an unreadable config.json is reported where the run dir is checked
    return {**record, "precision": recorded} if recorded in catalog.RESOLVED_PRECISIONS else record


def differences(a: dict, b: dict) -> list[str]:
    """Names of the identity fields on which two config.json dicts differ."""
    keys = (set(a) | set(b)) - set(NON_IDENTITY)
    return sorted(k for k in keys if a.get(k, IMPLIED.get(k)) != b.get(k, IMPLIED.get(k)))
