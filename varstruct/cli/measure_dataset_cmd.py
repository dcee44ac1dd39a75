"""`varstruct measure dataset NAME`: the dataset measures of MEASURES.md §1 to netCDF."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich import box
from rich.table import Table

from .common import UserError, console, measure_app, parse_params


def _fmt(x, digits=3) -> str:
    x = float(x)
    if np.isnan(x):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"


LEGEND = ("G: global variance; CV: variance_cv; discr: factor_discrepancy; dir.cons: "
          "direction_consistency; near-deg: factor_near_degeneracy")
_TYPE = {"ordinal": "ord", "circular": "circ", "categorical": "cat"}


def summary_table(m) -> Table:
    """Per-factor table of a measure_dataset result (fits 80 columns)."""
    table = Table(title=f"{m.attrs['dataset']}: variance structure ({m.sizes['anchor']} anchors, seed {m.attrs['seed']})",
                  box=box.SIMPLE_HEAD, padding=(0, 1, 0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
    cols = ("factor", "type", "n", "G", "share", "rank", "CV", "discr", "dir.cons", "near-deg")
    for col in cols:
        table.add_column(col, justify="left" if col in ("factor", "type") else "right", no_wrap=True)
    for j, name in enumerate(m.factor.values):
        table.add_row(str(name), _TYPE.get(str(m.factor_type.values[j]), str(m.factor_type.values[j])),
                      str(int(m.factor_size.values[j])), f"{float(m.global_variance[j]):.2e}",
                      _fmt(m.variance_share[j]), str(int(m.global_rank[j])), _fmt(m.variance_cv[j]),
                      _fmt(m.factor_discrepancy[j]), _fmt(m.direction_consistency[j]), _fmt(m.factor_near_degeneracy[j]))
    return table


def scalar_table(m) -> Table:
    table = Table(title="dataset-level measures", box=box.SIMPLE_HEAD)
    table.add_column("measure")
    table.add_column("value", justify="right")
    pca = m.local_pca_alignment.values
    rows = [("local_global_discrepancy", m.local_global_discrepancy),
            ("local_global_discrepancy_tau", m.local_global_discrepancy_tau),
            (f"near_degeneracy (delta={m.attrs['delta']:g})", m.near_degeneracy),
            ("local_nonorthogonality", m.local_nonorthogonality),
            (f"local_pca_alignment (mean of {len(pca)})", np.nanmean(pca) if np.any(~np.isnan(pca)) else np.nan)]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    return table


@measure_app.command("dataset")
def measure_dataset_cmd(
    name: str = typer.Argument(..., help="Registered dataset name (see `varstruct datasets`)."),
    anchors: int = typer.Option(1000, "--anchors", help="Number of anchors drawn from the factor grid."),
    seed: int = typer.Option(0, "--seed", help="Seed of the anchors and nuisances."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output netCDF file [default: NAME_measures.nc]."),
    data_file: Optional[Path] = typer.Option(None, "--data-file", help="Load a real data file (dSprites .npz / 3dshapes .h5)."),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", help="Dataset parameter KEY=VALUE (repeatable)."),
    no_freeze_nuisance: bool = typer.Option(False, "--no-freeze-nuisance",
                                            help="Draw a fresh nuisance per image instead of one per anchor."),
    pca_anchors: int = typer.Option(200, "--pca-anchors", help="Anchors used for local PCA (the first ones)."),
):
    """Measure how a dataset's variance is structured (MEASURES.md §1) and write FILE.nc."""
    from .. import data
    from ..io import check_writable, write_netcdf
    from ..measures.dataset import measure_dataset

    # Validate everything before the long work.
    if anchors < 1:
        raise UserError(f"--anchors must be >= 1, got {anchors}")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    if pca_anchors < 0:
        raise UserError(f"--pca-anchors must be >= 0, got {pca_anchors}")
    params = parse_params(param)
    data.dataset_class(name)  # unknown name -> DatasetError
    out = Path(out) if out is not None else Path(f"{name}_measures.nc")
    check_writable(out)
    if data_file is not None and not Path(data_file).is_file():
        raise UserError(f"--data-file {data_file}: no such file")
    try:
        ds = data.get(name, data_file=None if data_file is None else str(data_file), **params)
    except data.DatasetError:
        raise
    except (TypeError, ValueError) as e:  # a badly typed parameter reaching a constructor
        raise UserError(f"{name}: bad parameter(s) {params}: {e}") from None
    except Exception as e:  # an unreadable data file the loader did not classify
        if data_file is None:
            raise
        raise UserError(f"--data-file {data_file}: cannot load it as {name}: {type(e).__name__}: {e}") from None

    m = measure_dataset(ds, n_anchors=anchors, seed=seed, freeze_nuisance=not no_freeze_nuisance,
                        n_pca_anchors=pca_anchors, progress=True)
    m.attrs["data_file"] = "none" if data_file is None else str(data_file)
    console.print(summary_table(m))
    console.print(LEGEND, style="dim")
    console.print(scalar_table(m))
    write_netcdf(m, out)
    console.print(f"wrote {out}")
