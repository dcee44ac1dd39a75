"""`varstruct measure model DIR`: the model measures of a trained model dir -> DIR/measures.nc."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from .common import UserError, console, measure_app


def _fmt(v, digits=3) -> str:
    v = float(v)
    return "—" if not np.isfinite(v) else f"{v:.{digits}f}"


def _load(model_dir: Path):
    from ..rundir import RunDir

    rd = RunDir(model_dir)
    model = rd.load_model()
    return model, rd.dataset(model.config)


@measure_app.command("model")
def measure_model_cmd(
    model_dir: Path = typer.Argument(..., help="A model dir written by `varstruct train`."),
    anchors: int = typer.Option(200, "--anchors", "-a", min=1, help="Anchors on the factor grid."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed of the anchors and image draws."),
    response: str = typer.Option("traversal", "--response", "-r",
                                 help="Response feeding encoding_dim: traversal or jacobian."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="Torch CPU threads for the model passes (default: torch's)."),
):
    """Which latent encodes which factor, where: writes DIR/measures.nc and prints a summary."""
    from ..io import check_writable, write_netcdf
    from ..measures.model import RESPONSES, measure_model

    if response not in RESPONSES:
        raise UserError(f"--response must be one of {', '.join(RESPONSES)}, got {response!r}")
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: no such model dir")
    from ..rundir import RunDir

    out_path = check_writable(model_dir / "measures.nc")
    with RunDir(model_dir).lock():
        model, ds = _load(model_dir)
        try:
            m = measure_model(model, ds, n_anchors=anchors, seed=seed, response=response, progress=True,
                              threads=threads)
        except ValueError as e:
            raise UserError(f"{model_dir}: {e}") from None
        write_netcdf(m, out_path)
    _print(m, model_dir)
    console.print(f"wrote {out_path}")


def _print(m, model_dir) -> None:
    table = Table(title=f"model measures: {model_dir} on {m.attrs['dataset']} "
                        f"({m.attrs['n_anchors']} anchors, {m.attrs['response']} response)")
    for col in ("factor", "mode latent", "inconsistency", "purity", "entropy", "discordance effect"):
        table.add_column(col, justify="left" if col == "factor" else "right")
    purity = m["encoding_purity"].values
    for j, name in enumerate(m["factor"].values):
        mode = int(m["encoding_mode"].values[j])
        p = purity[:, j]
        table.add_row(str(name), "—" if mode < 0 else str(mode), _fmt(m["encoding_inconsistency"].values[j]),
                      _fmt(np.nanmean(p)) if np.isfinite(p).any() else "—",
                      _fmt(m["encoding_entropy"].values[j]), _fmt(m["discordance_effect"].values[j]))
    console.print(table)
    scalars = Table(title="model scalars")
    scalars.add_column("measure")
    scalars.add_column("value", justify="right")
    active = m["active"].values
    scalars.add_row("active latents", f"{int(active.sum())} of {len(active)}: {np.flatnonzero(active).tolist()}")
    for name in ("encoding_collision", "decoder_orthogonality", "encoding_inconsistency_mean",
                 "encoding_purity_mean", "encoding_entropy_mean", "discordance_effect_mean"):
        scalars.add_row(name, _fmt(m[name].values))
    console.print(scalars)
