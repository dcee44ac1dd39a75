"""`varstruct train`: train one model and write its model dir."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .common import UserError, app, console, parse_params


def _k(value: str | None):
    if value is None or value == "random":
        return value
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--k must be an integer or 'random', got {value!r}") from None


@app.command("train")
def train_cmd(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name (see `varstruct datasets`)."),
    method: str = typer.Option(..., "--method", help="ae, beta_vae, annealed_vae, beta_tcvae, factor_vae, "
                               "dip_vae_i, dip_vae_ii, ada_gvae, ordered_ae."),
    out: Path = typer.Option(..., "--out", help="Model dir to write."),
    beta: Optional[float] = typer.Option(None, "--beta", help="β (beta_vae, beta_tcvae, ada_gvae)."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="γ (factor_vae, annealed_vae)."),
    c_max: Optional[float] = typer.Option(None, "--c-max", help="Maximum capacity C_max (annealed_vae)."),
    iteration_threshold: Optional[int] = typer.Option(None, "--iteration-threshold", help="Steps to reach C_max."),
    lambda_od: Optional[float] = typer.Option(None, "--lambda-od", help="λ_od (dip_vae_i/ii)."),
    lambda_d: Optional[float] = typer.Option(None, "--lambda-d", help="λ_d (dip_vae_i/ii)."),
    k: Optional[str] = typer.Option(None, "--k", help="Factors changed per pair (ada_gvae): an integer or 'random'."),
    nested_p: Optional[float] = typer.Option(None, "--nested-p", help="Geometric p of nested dropout (ordered_ae)."),
    hp: Optional[List[str]] = typer.Option(None, "--hp", help="Other hyper-parameter KEY=VALUE (repeatable)."),
    latents: int = typer.Option(10, "--latents", help="Latent dimensions L."),
    arch: Optional[str] = typer.Option(None, "--arch", help="conv (64x64 images) or mlp; default by image shape."),
    recon: str = typer.Option("bernoulli", "--recon", help="Reconstruction loss: bernoulli or gaussian."),
    recon_var: float = typer.Option(0.02, "--recon-var", help="Fixed variance of the gaussian loss."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate."),
    batch_size: int = typer.Option(64, "--batch-size", help="Batch size (pairs for ada_gvae)."),
    steps: int = typer.Option(10000, "--steps", help="Training steps."),
    seed: int = typer.Option(0, "--seed", help="Random seed (weights, batches, sampling)."),
    mask_mode: Optional[str] = typer.Option(None, "--mask", help="Channel-mask every layer: continuous, ste or hard_concrete."),
    mask_l1: float = typer.Option(0.0, "--mask-l1", help="Mask sparsity penalty λ."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help="Dataset parameter KEY=VALUE (repeatable)."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Load the dataset from this file."),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Steps between checkpoints."),
    log_every: int = typer.Option(10, "--log-every", help="Steps per train_log.csv row."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch CPU threads (default: torch's)."),
    resume: bool = typer.Option(False, "--resume", help="Finish the interrupted run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run in an existing --out."),
):
    """Train a model (progress bar on) and write its model dir: config.json, model.safetensors,
    train_log.csv."""
    from ..training import TrainConfig, train

    hparams = parse_params(hp)
    for key, value in (("beta", beta), ("gamma", gamma), ("c_max", c_max), ("iteration_threshold", iteration_threshold),
                       ("lambda_od", lambda_od), ("lambda_d", lambda_d), ("k", _k(k)), ("p", nested_p)):
        if value is not None:
            hparams[key] = value
    if data_file is not None and not data_file.is_file():
        raise UserError(f"--data-file {data_file}: no such file")
    cfg = TrainConfig(
        dataset=dataset, method=method, hparams=hparams, dataset_params=parse_params(param),
        data_file=str(data_file) if data_file else None, seed=seed, steps=steps, batch_size=batch_size,
        latent_dim=latents, arch=arch, lr=lr, recon=recon, recon_var=recon_var,
        mask={"mode": mask_mode, "l1": mask_l1} if mask_mode else None,
        log_every=log_every, checkpoint_every=checkpoint_every)
    run = train(cfg, out=out, resume=resume, overwrite=overwrite, progress=True, threads=threads)
    _summary(run)


def _summary(run: Path) -> None:
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
