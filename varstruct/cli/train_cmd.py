"""`varstruct train DATASET --method M --out DIR`: train one model and write its model dir."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import typer

from . import common as c
from .common import app, console

# The hyper-parameters each method takes that have their own option (models/objectives.py; a
# test checks this table against the objectives' defaults). Everything else: --hparam KEY=VALUE.
METHOD_HPARAMS = {"ae": (), "beta_vae": ("beta",), "annealed_vae": ("c_max", "gamma", "iteration_threshold"),
                  "beta_tcvae": ("beta",), "factor_vae": ("gamma",), "dip_vae_i": ("lambda_od", "lambda_d"),
                  "dip_vae_ii": ("lambda_od", "lambda_d"), "ada_gvae": ("beta", "k"), "ordered_ae": ("p",)}


def _k(value: str):
    if value == "random":
        return value
    try:
        k = int(value)
    except ValueError:
        k = 0
    if k < 1:
        raise c.VarstructError(f"--k must be an integer >= 1 or 'random', got {value!r}")
    return k


@app.command("train")
def train_cmd(
    dataset: c.Dataset = c.dataset_argument(),
    method: c.Method = typer.Option(..., "--method", "-m", help="Training objective.", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="Model dir to write (see docs/run-dirs.md).",
                             show_default=False, metavar="DIR"),
    param: c.ParamList = c.param_option(),
    data_file: Optional[Path] = c.data_file_option(),
    beta: Optional[float] = typer.Option(None, "--beta", help="β (beta_vae, beta_tcvae, ada_gvae)."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="γ (factor_vae, annealed_vae)."),
    c_max: Optional[float] = typer.Option(None, "--c-max", help="Maximum capacity C_max (annealed_vae)."),
    iteration_threshold: Optional[int] = typer.Option(None, "--iteration-threshold",
                                                      help="Steps to reach C_max (annealed_vae)."),
    lambda_od: Optional[float] = typer.Option(None, "--lambda-od", help="λ_od (dip_vae_i/ii)."),
    lambda_d: Optional[float] = typer.Option(None, "--lambda-d", help="λ_d (dip_vae_i/ii)."),
    k: Optional[str] = typer.Option(None, "--k", help="Factors changed per pair (ada_gvae): an integer or 'random'."),
    nested_p: Optional[float] = typer.Option(None, "--nested-p", help="Geometric p of nested dropout (ordered_ae)."),
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
    steps: int = typer.Option(10000, "--steps", "-n", help="Training steps."),
    seed: int = c.seed_option("the weights, batches and sampling"),
    mask_mode: Optional[c.MaskMode] = typer.Option(None, "--mask", show_default=False,
                                                   help="Channel-mask every layer with this gate."),
    mask_l1: Optional[float] = typer.Option(None, "--mask-l1", show_default=False,
                                            help="Mask sparsity penalty λ (with --mask). [default: 0]"),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Steps between checkpoints."),
    log_every: int = typer.Option(10, "--log-every", help="Steps per train_log.csv row."),
    precision: Optional[c.Precision] = typer.Option(None, "--precision", show_default=False,
                                                    help="Arithmetic of the networks: fp32, bf16 (autocast), fp64 "
                                                         "(float64 weights) or auto (bf16 where the hardware has it "
                                                         "natively, else fp32). [default: auto]"),
    threads: Optional[int] = c.threads_option(),
    resume: bool = typer.Option(False, "--resume", help="Finish the interrupted run in --out."),
    overwrite: bool = c.overwrite_option(),
):
    """Train a model and write its model dir (config.json, model.safetensors, train_log.csv).
    Ctrl-C saves a checkpoint; `--resume` finishes the run with the same final weights."""
    from ..errors import ConfigError
    from ..validate import check_float, check_int, check_seed

    name, meth = c.value(dataset), c.value(method)
    # Everything is checked here, before torch is imported and before anything is written.
    if resume and overwrite:
        raise ConfigError("choose one of --resume and --overwrite")
    given = {"beta": beta, "gamma": gamma, "c_max": c_max, "iteration_threshold": iteration_threshold,
             "lambda_od": lambda_od, "lambda_d": lambda_d, "k": k, "p": nested_p}
    opt_name = {"p": "--nested-p"}
    hparams = c.parse_params(hparam, "--hparam")
    for key, v in given.items():
        if v is None:
            continue
        opt = opt_name.get(key, "--" + key.replace("_", "-"))
        if key not in METHOD_HPARAMS[meth]:
            takes = ", ".join(opt_name.get(h, "--" + h.replace("_", "-")) for h in METHOD_HPARAMS[meth]) or "none"
            raise ConfigError(f"{opt} does not apply to --method {meth} (its options: {takes})")
        if key in hparams:
            raise ConfigError(f"{key} given twice (--hparam {key}=... and {opt})")
        if key == "k":
            v = _k(v)
        elif key == "iteration_threshold":
            v = check_int(opt, v, 1)
        elif key == "p":
            v = check_float(opt, v, 0.0, 1.0, lo_open=True)
        else:
            v = check_float(opt, v, 0.0)
        hparams[key] = v
    if mask_l1 is not None and mask_mode is None:
        raise ConfigError("--mask-l1 applies only with --mask (continuous, ste or hard_concrete)")
    if recon_var is not None and c.value(recon) != "gaussian":
        raise ConfigError("--recon-var applies only with --recon gaussian")
    seed = check_seed("--seed", seed)
    check_int("--latents", latents, 1)
    check_int("--batch-size", batch_size, 2)
    check_int("--steps", steps, 1)
    check_int("--checkpoint-every", checkpoint_every, 1)
    check_int("--log-every", log_every, 1)
    check_float("--lr", lr, 0.0, lo_open=True)
    if recon_var is not None:
        check_float("--recon-var", recon_var, 0.0, lo_open=True)
    if mask_l1 is not None:
        check_float("--mask-l1", mask_l1, 0.0)
    if threads is not None:
        check_int("--threads", threads, 1, 4096)
    params = c.parse_params(param)
    data_file = c.check_data_file(data_file)
    _check_out(out, resume, overwrite)
    if data_file is None:  # bad -p: one line before torch (a data file is read once, by the trainer)
        from ..resources import check_train_memory

        shape = [int(v) for v in c.build_dataset(name, params, None).image_shape]
        check_train_memory({"image_shape": shape, "hidden": None, "latent_dim": latents, "batch_size": batch_size,
                            "arch": c.value(arch) or ("conv" if shape[:2] == [64, 64] else "mlp"), "method": meth},
                           pairs=meth == "ada_gvae")

    c.start(threads)
    from ..training import TrainConfig, train
    from ..training.interrupt import TrainingInterrupted

    cfg = TrainConfig(
        dataset=name, method=meth, hparams=hparams, dataset_params=params, data_file=data_file, seed=seed,
        steps=steps, batch_size=batch_size, latent_dim=latents, arch=c.value(arch), lr=lr, recon=c.value(recon),
        recon_var=0.02 if recon_var is None else recon_var,
        mask={"mode": c.value(mask_mode), "l1": mask_l1 or 0.0} if mask_mode else None,
        log_every=log_every, checkpoint_every=checkpoint_every,
        **({"precision": c.value(precision)} if precision else {}))
    try:
        run = train(cfg, out=out, resume=resume, overwrite=overwrite, progress=True)
    except TrainingInterrupted as e:
        import sys

        print(str(e), file=sys.stderr)
        raise typer.Exit(130)
    _summary(run)


def _check_out(out: Path, resume: bool, overwrite: bool) -> None:
    """The run dir's state allows the request (the trainer re-checks under the lock)."""
    from ..errors import RunDirError
    from ..io import probe_folder
    from ..rundir import RunDir

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


def _summary(run: Path) -> None:
    from rich.table import Table

    from ..rundir import RunDir

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
    table.add_row("steps x batch", f"{cfg['steps']} x {cfg['batch_size']}")
    if last:
        vals = dict(zip(header, last))
        secs = float(vals.pop("seconds"))
        vals.pop("step")
        for name, v in vals.items():
            table.add_row(f"final {name}", f"{float(v):.4g}")
        table.add_row("training time", f"{secs:.1f} s ({cfg['steps'] * cfg['batch_size'] / max(secs, 1e-9):.0f} images/s)")
    console.print(table)
