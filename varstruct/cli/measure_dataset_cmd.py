"""`varstruct measure dataset DATASET`: the dataset measures (docs/measures.md#dataset-measures) to netCDF."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import common as c
from .common import console, measure_app


def _fmt(x, digits=3) -> str:
    import numpy as np

    x = float(x)
    if np.isnan(x):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"


LEGEND = ("G: global variance; CV: variance_cv; discr: factor_discrepancy; dir.cons: "
          "direction_consistency; near-deg: factor_near_degeneracy")
_TYPE = {"ordinal": "ord", "circular": "circ", "categorical": "cat"}


def summary_table(m) -> "Table":
    """Per-factor table of a measure_dataset result (fits 80 columns)."""
    from rich import box
    from rich.table import Table

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


def scalar_table(m) -> "Table":
    import numpy as np
    from rich import box
    from rich.table import Table

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
    dataset: c.Dataset = c.dataset_argument(),
    param: c.ParamList = c.param_option(),
    data_file: Optional[Path] = c.data_file_option(),
    anchors: int = c.anchors_option(1000),
    seed: int = c.seed_option("the anchors and nuisances"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output netCDF file. [default: DATASET_measures.nc "
                                       "in the current folder]", show_default=False),
    overwrite: bool = c.overwrite_option(),
    no_freeze_nuisance: bool = typer.Option(False, "--no-freeze-nuisance",
                                            help="Draw a fresh nuisance per image instead of one per anchor."),
    pca_anchors: Optional[int] = c.pca_anchors_option(),
    threads: Optional[int] = c.threads_option(),
):
    """Measure how a dataset's variance is structured (docs/measures.md#dataset-measures); writes
    a netCDF file and prints a summary."""
    from ..resources import measure_dataset_bytes, require
    from ..validate import check_int, check_seed

    # Validate everything before the work (no torch import until then).
    name = c.value(dataset)
    A, P = c.check_anchors(anchors, pca_anchors)
    seed = check_seed("--seed", seed)
    if threads is not None:
        check_int("--threads", threads, 1, 4096)
    params = c.parse_params(param)
    data_file = c.check_data_file(data_file)
    out = c.check_output_file(Path(out) if out is not None else Path(f"{name}_measures.nc"), overwrite)
    ds = c.build_dataset(name, params, data_file)
    sizes = [f.size for f in ds.factors]
    require("--anchors", measure_dataset_bytes(A, len(sizes), max(sizes, default=1), ds.n_pixels, P,
                                               sum(t != "categorical" for t in ds.factor_types)),
            f"{A} anchors of {name}")

    c.start(threads)
    from ..io import write_netcdf
    from ..measures.dataset import measure_dataset

    m = measure_dataset(ds, n_anchors=A, seed=seed, freeze_nuisance=not no_freeze_nuisance,
                        n_pca_anchors=P, progress=True)
    m.attrs["data_file"] = "none" if data_file is None else str(data_file)
    console.print(summary_table(m))
    console.print(LEGEND, style="dim")
    console.print(scalar_table(m))
    write_netcdf(m, out)
    console.print(f"wrote {out}")
