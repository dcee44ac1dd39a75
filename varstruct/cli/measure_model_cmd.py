"""`varstruct measure model DIR`: the model measures (docs/measures.md#model-measures) of a
trained model dir -> DIR/measures.nc."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import common as c
from .common import console, measure_app


def _fmt(v, digits=3) -> str:
    import numpy as np

    v = float(v)
    return "—" if not np.isfinite(v) else f"{v:.{digits}f}"


@measure_app.command("model")
def measure_model_cmd(
    model_dir: Path = typer.Argument(..., help="A model dir written by `varstruct train`.", metavar="DIR"),
    anchors: int = c.anchors_option(200),
    seed: int = c.seed_option("the anchors and image draws"),
    response: c.Response = typer.Option("traversal", "--response", "-r",
                                        help="Response feeding encoding_dim."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", show_default=False,
                                       help="Output netCDF file. [default: DIR/measures.nc]"),
    overwrite: bool = c.overwrite_option(),
    threads: Optional[int] = c.threads_option(),
    device: str = c.device_option(),
):
    """Which latent encodes which factor, where (docs/measures.md#model-measures): writes
    DIR/measures.nc and prints a summary."""
    from ..resources import measure_model_bytes, require
    from ..validate import check_int, check_seed

    A = check_int("--anchors", anchors, 1)
    seed = check_seed("--seed", seed)
    device = c.check_device_option(device)
    rd, cfg, out_path, ds = c.open_trained_run(model_dir, out, "measures_path", overwrite, threads)
    sizes = [f.size for f in ds.factors]
    require("--anchors", measure_model_bytes(cfg, A, len(sizes), max(sizes, default=1)), f"{A} anchors")

    with c.writer_lock(rd, out_path):
        c.start(threads)
        from ..io import write_netcdf
        from ..models.load import load_model
        from ..measures.model import measure_model

        from ..devices import resolve_device

        model = load_model(rd, device=str(resolve_device(device, "--device")))
        try:
            m = measure_model(model, ds, n_anchors=A, seed=seed, response=c.value(response), progress=True)
            from ..models.units import add_unit_activity

            m = add_unit_activity(m, model, ds, seed=seed)
        except ValueError as e:
            raise c.VarstructError(f"{model_dir}: {c._line(e)}") from None
        write_netcdf(m, out_path)
    _print(m, model_dir)
    console.print(f"wrote {out_path}")


def _print(m, model_dir) -> None:
    import numpy as np
    from rich.table import Table

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
