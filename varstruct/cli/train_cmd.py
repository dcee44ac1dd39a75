"""`varstruct train DATASET --method M --out DIR`: train one model and write its model dir."""
from __future__ import annotations

import csv
import inspect
from pathlib import Path
from typing import Optional

import typer

from .. import catalog
from . import common as c
from .common import app, console


def _hparam_options() -> list[tuple[str, str, type, str]]:
    """(name, option, type, help) of every hyper-parameter that has its own option, from the
    catalog (the option's name from the CLI's one table, ``common.FLAGS``)."""
    out = []
    for name in catalog.hparam_names():
        entries = [(m.name, m.hparam(name)) for m in catalog.METHODS.values() if name in m.defaults()]
        if not entries[0][1].option:
            continue
        typ = {"float": float, "int": int, "k": str}[entries[0][1].kind]
        defaults = ", ".join(f"{m} {h.default_text()}" for m, h in entries)
        out.append((name, c.FLAGS[f"hparams.{name}"], typ,
                    f"{catalog.hparam_help(name)}. [default: {defaults}]"))
    return out


def _with_hparam_options(func):
    """Give ``func`` (which takes ``**hparam_options``) one typer option per catalog
    hyper-parameter, inserted before its ``hparam`` parameter."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    at = [p.name for p in params].index("hparam")
    extra = []
    for name, opt, typ, help_ in _hparam_options():
        func.__annotations__[name] = Optional[typ]
        extra.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Optional[typ],
                                       default=typer.Option(None, opt, help=help_, show_default=False)))
    func.__signature__ = sig.replace(parameters=params[:at] + extra + params[at:])
    return func


def _option_value(text):
    """An option given as text (--k): a JSON number where it is one ("3" -> 3), else the text."""
    return c._parse_value(text) if isinstance(text, str) and text != "random" else text


@app.command("train")
@_with_hparam_options
def train_cmd(
    dataset: c.Dataset = c.dataset_argument(),
    method: c.Method = typer.Option(..., "--method", "-m", help="Training objective.", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Model dir to write (see docs/run-dirs.md).",
                             show_default=False, metavar="DIR"),
    param: c.ParamList = c.param_option(),
    data_file: Optional[Path] = c.data_file_option(),
    hparam: c.ParamList = typer.Option(None, "--hparam", metavar="KEY=VALUE",
                                       help="Any other hyper-parameter of the method (repeatable)."),
    latents: int = typer.Option(10, "--latents", "-l", help="Latent dimensions L."),
    arch: Optional[c.Arch] = typer.Option(None, "--arch", show_default=False,
                                          help="Network. [default: conv for 64x64 images, else mlp]"),
    recon: c.Recon = typer.Option("bernoulli", "--recon", help="Reconstruction loss."),
    recon_var: Optional[float] = typer.Option(None, "--recon-var", show_default=False,
                                              help="Fixed variance of the gaussian loss. [default: 0.02]"),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Batch size (pairs for ada_gvae)."),
    steps: int = typer.Option(10000, "--steps", "-n", help="Training steps (the budget with --until-converged)."),
    until_converged: Optional[int] = typer.Option(
        None, "--until-converged", metavar="MIN_STEPS", show_default=False,
        help="Stop at the first --check-every step from MIN_STEPS on at which the convergence criterion "
             "holds (reconstruction improved < 2% over the last quarter); --steps is then the most steps."),
    check_every: Optional[int] = typer.Option(
        None, "--check-every", show_default=False,
        help="Steps between convergence checks (with --until-converged; a multiple of --log-every). "
             "[default: --checkpoint-every]"),
    seed: int = c.seed_option("the weights, batches and sampling"),
    mask_mode: Optional[c.MaskMode] = typer.Option(None, "--mask", show_default=False,
                                                   help="Channel-mask every layer with this gate."),
    mask_l1: Optional[float] = typer.Option(None, "--mask-l1", show_default=False,
                                            help="Mask sparsity penalty λ (with --mask). [default: 0]"),
    baseline: Optional[c.Baseline] = typer.Option(
        None, "--baseline", show_default=False,
        help="Fit this baseline instead of training (needs -m ae, --steps 0, --recon gaussian; arch linear)."),
    n_fit: Optional[int] = typer.Option(None, "--n-fit", show_default=False,
                                        help="Images the baseline is fitted on (with --baseline). [default: 10000]"),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Steps between checkpoints."),
    log_every: int = typer.Option(10, "--log-every", help="Steps per train_log.csv row."),
    precision: Optional[c.Precision] = typer.Option(None, "--precision", show_default=False,
                                                    help="Arithmetic of the networks: fp32, bf16 (autocast), fp64 "
                                                         "(float64 weights) or auto (bf16 where the hardware has it "
                                                         "natively, else fp32). [default: auto]"),
    threads: Optional[int] = c.threads_option(),
    device: str = c.device_option(),
    resume: bool = typer.Option(False, "--resume", help="Finish the interrupted run in --out."),
    overwrite: bool = c.overwrite_option(),
    **hparam_options,  # one option per hyper-parameter of the catalog (_with_hparam_options)
):
    """Train a model and write its model dir (config.json, model.safetensors, train_log.csv).
    Ctrl-C saves a checkpoint; `--resume` finishes the run with the same final weights."""
    from ..errors import ConfigError
    from ..training.config import TrainConfig
    from ..validate import check_int

    name, meth = c.value(dataset), c.value(method)
    # Everything is checked here, before torch is imported and before anything is written.
    if resume and overwrite:
        raise ConfigError("choose one of --resume and --overwrite")
    hparams = c.parse_params(hparam, "--hparam")
    for key, v in hparam_options.items():
        if v is None:
            continue
        if key in hparams:
            raise ConfigError(f"{key} given twice (--hparam {key}=... and {c.FLAGS['hparams.' + key]})")
        hparams[key] = _option_value(v)
    if mask_l1 is not None and mask_mode is None:
        raise ConfigError("--mask-l1 applies only with --mask (continuous, ste or hard_concrete)")
    if n_fit is not None and baseline is None:
        raise ConfigError("--n-fit applies only with --baseline")
    if check_every is not None and until_converged is None:
        raise ConfigError("--check-every applies only with --until-converged")
    if recon_var is not None and c.value(recon) != "gaussian":
        raise ConfigError("--recon-var applies only with --recon gaussian")
    if threads is not None:
        check_int("--threads", threads, 1, 4096)
    device = c.check_device_option(device)
    params = c.parse_params(param)
    given = {"recon_var": recon_var, "precision": c.value(precision),
             "mask": {"mode": c.value(mask_mode), "l1": 0.0 if mask_l1 is None else mask_l1} if mask_mode else None,
             "baseline": None if baseline is None else
             {"kind": c.value(baseline), **({} if n_fit is None else {"n_fit": n_fit})},
             "until_converged": None if until_converged is None else
             {"min_steps": until_converged, "check_every": checkpoint_every if check_every is None else check_every}}
    try:  # the library's one validation; its parameter names become this command's options
        cfg = TrainConfig(
            dataset=name, method=meth, hparams=hparams, dataset_params=params, seed=seed, steps=steps,
            batch_size=batch_size, latent_dim=latents, arch=c.value(arch), lr=lr, recon=c.value(recon),
            log_every=log_every, checkpoint_every=checkpoint_every,
            **{k: v for k, v in given.items() if v is not None}).validate()
    except ConfigError as e:
        raise c.with_flags(e) from None
    data_file = c.check_data_file(data_file)
    _check_out(out, resume, overwrite)
    if data_file is None:  # bad -p: one line before torch (a data file is read once, by the trainer)
        from ..errors import ResourceError
        from ..resources import check_train_memory

        shape = [int(v) for v in c.build_dataset(name, params, None).image_shape]
        try:
            check_train_memory({"image_shape": shape, "hidden": cfg.hidden, "latent_dim": cfg.latent_dim,
                                "batch_size": cfg.batch_size, "method": meth,
                                "arch": cfg.arch or catalog.default_arch(shape)})
        except ResourceError as e:
            raise c.with_flags(e) from None

    c.start(threads)
    from ..devices import resolve_device
    from ..training import train

    device = str(resolve_device(device, "--device"))  # one line where the GPU is missing
    from ..training.interrupt import TrainingInterrupted

    cfg.data_file = data_file
    from ..errors import DivergedError

    try:
        run = train(cfg, out=out, resume=resume, overwrite=overwrite, progress=True, device=device)
    except TrainingInterrupted as e:
        import sys

        print(str(e), file=sys.stderr)
        raise typer.Exit(130)
    except DivergedError as e:  # a result of the run, not bad input: exit 1
        import sys

        print(f"error: {c._line(e)}", file=sys.stderr)
        raise typer.Exit(1)
    _summary(run)


def _check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """The run dir's state allows the request (the trainer re-checks under the lock)."""
    from ..errors import RunDirError
    from ..io import probe_folder
    from ..runs.layout import RunDir

    rd = RunDir(out)
    rd.check_writable()
    if rd.path.exists():
        probe_folder(rd.path, "--out", rd.path)
    elif rd.path.parent.exists():
        probe_folder(rd.path.parent if str(rd.path.parent) else Path("."), "--out", rd.path)
    state = rd.state
    if not resume and not overwrite and state != "missing":
        foreign = rd.contents()
        if foreign and not (state == "interrupted" and foreign == {rd.CONFIG}):
            raise RunDirError(f"output dir {out} exists and is not empty (use --resume to finish its run "
                              f"or --overwrite to replace it)")
    if resume and state in ("missing", "empty"):
        raise RunDirError(f"--resume: {out} holds no run to resume "
                          f"({'no such folder' if state == 'missing' else 'no ' + rd.CONFIG}); "
                          f"drop --resume to start one")


def _horizon_line(rd) -> str:
    """Where the trend of an unconverged run's last half meets the criterion
    (:func:`varstruct.training.convergence.horizon`)."""
    from ..training.convergence import TOLERANCE, horizon

    log = rd.read_log()
    try:
        h = horizon(log["step"].to_numpy(float), log["recon"].to_numpy(float))
    except (ValueError, RuntimeError, KeyError):  # too short a log, or a fit that does not settle
        return "too few log rows to fit a trend"
    t0 = int(log["step"].iloc[-1])
    trend = f"recon ≈ {h['a']:.4g} + {h['b']:.4g}·(t/{t0})^-{h['k']:.2f}"
    if not h["improvement"] >= TOLERANCE:  # the fitted curve is flat where the log is not: no trend to follow
        return f"no falling trend fits the last half (best fit {trend}, rms error {h['rmse']:.3g})"
    if h["steps_needed"] is None:
        return f"{trend} does not meet it within 1000x the steps so far"
    return f"{trend} meets it at ≈ {h['steps_needed']:,} steps"


def _summary(run: Path) -> None:
    from rich.table import Table

    from ..runs.layout import RunDir

    rd = RunDir(run)
    cfg = rd.read_config()
    with open(rd.log_path, newline="") as f:
        rows = list(csv.reader(f))
    header, last = rows[0], rows[-1] if len(rows) > 1 else None
    table = Table(title=f"trained {cfg['method']} on {cfg['dataset']}")
    table.add_column("field")
    table.add_column("value")
    table.add_row("model dir", str(run))
    table.add_row("hyper-parameters", ", ".join(f"{k}={v}" for k, v in cfg["hparams"].items()) or "-")
    table.add_row("arch / latents", f"{cfg['arch']} / {cfg['latent_dim']}")
    trained = int(last[0]) if last else cfg["steps"]
    budget = f" (of a budget of {cfg['steps']}: stopped when converged)" if trained < cfg["steps"] else ""
    table.add_row("steps x batch", f"{trained} x {cfg['batch_size']}{budget}")
    if last:
        vals = dict(zip(header, last))
        secs = float(vals.pop("seconds"))
        vals.pop("step")
        for name, v in vals.items():
            table.add_row(f"final {name}", f"{float(v):.4g}")
        if cfg.get("baseline"):
            table.add_row("fitted", f"{cfg['baseline']['kind']} on {cfg['baseline']['n_fit']} images in {secs:.1f} s")
        else:
            table.add_row("training time", f"{secs:.1f} s ({trained * cfg['batch_size'] / max(secs, 1e-9):.0f} images/s)")
    from ..training.convergence import TOLERANCE, run_convergence

    try:
        v = run_convergence(run)
    except (ValueError, OSError):
        v = {"converged": None}
    if v["converged"] is not None:
        verdict = "converged" if v["converged"] else "NOT converged (train longer)"
        table.add_row("convergence", f"{verdict}: reconstruction {v['improvement']:+.1%} over the last quarter "
                                     f"(criterion < {TOLERANCE:.0%})")
        if not v["converged"]:
            table.add_row("at its trend", _horizon_line(rd))
    console.print(table)
