"""`varstruct collect DIR --out study.nc`: every finished run of a models dir as one netCDF."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import common as c
from .common import app, console, warnings_to_stderr


@app.command("collect")
def collect_cmd(
    models_dir: Path = typer.Argument(..., help="Models dir (e.g. written by `varstruct sweep`)."),
    out: Path = typer.Option(..., "--out", "-o", help="netCDF file to write (e.g. study.nc)."),
    anchors: int = c.anchors_option(1000),
    pca_anchors: Optional[int] = c.pca_anchors_option(),
    seed: int = c.seed_option("the dataset measures"),
    overwrite: bool = c.overwrite_option(),
):
    """Join configs, scores, model measures and (cached) dataset measures of every finished run;
    unfinished, diverged, broken or mismatched runs are skipped with one warning line each."""
    from ..io import write_netcdf
    from ..study.collect import collect
    from ..validate import check_seed

    anchors, pca_anchors = c.check_anchors(anchors, pca_anchors)
    seed = check_seed("--seed", seed)
    out = c.check_output_file(out, overwrite)
    with warnings_to_stderr():
        ds = collect(models_dir, n_anchors=anchors, seed=seed, n_pca_anchors=pca_anchors)
    write_netcdf(ds, out)
    sources = {}
    for v in ds.data_vars.values():
        sources[v.attrs.get("source", "?")] = sources.get(v.attrs.get("source", "?"), 0) + 1
    console.print(f"collected {ds.sizes['model']} models from {models_dir} "
                  f"({', '.join(f'{n} {k} variables' for k, n in sources.items())})")
    console.print(f"wrote {out}")
