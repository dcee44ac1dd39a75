"""`varstruct evaluate DIR`: disentanglement scores of a trained model -> DIR/scores.nc."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import common as c
from .common import app, console


@app.command("evaluate")
def evaluate_cmd(
    run_dir: Path = typer.Argument(..., help="A model dir written by `varstruct train`.", metavar="DIR"),
    metrics: Optional[str] = typer.Option(None, "--metrics", "-m", show_default=False,
                                          help=f"Comma-separated metrics out of {', '.join(c.METRICS)}. "
                                               "[default: all]"),
    seed: int = c.seed_option("the evaluation points"),
    train_points: int = typer.Option(10000, "--train-points",
                                     help="Train points (and sampling-score training points)."),
    test_points: int = typer.Option(5000, "--test-points",
                                    help="Test points (and sampling-score evaluation points)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", show_default=False,
                                       help="Output netCDF file. [default: DIR/scores.nc]"),
    overwrite: bool = c.overwrite_option(),
    threads: Optional[int] = c.threads_option(),
    device: str = c.device_option(),
):
    """Score the model's encoder mean with the disentanglement metrics; writes DIR/scores.nc."""
    from ..resources import encode_bytes, require
    from ..validate import check_choices, check_int, check_seed

    names = c.METRICS if metrics is None else check_choices("--metrics", metrics, c.METRICS)
    seed = check_seed("--seed", seed)
    n_train = check_int("--train-points", train_points, 2)
    n_test = check_int("--test-points", test_points, 1)
    device = c.check_device_option(device)
    rd, cfg, out_path, ds = c.open_trained_run(run_dir, out, "scores_path", overwrite, threads)
    require("--train-points/--test-points", encode_bytes({**cfg, "n_factors": ds.num_factors}, n_train + n_test),
            f"{n_train + n_test} points")

    with c.writer_lock(rd, out_path):
        c.start(threads)
        from ..io import write_netcdf
        from ..models.load import load_model
        from ..metrics.evaluate import evaluate

        from ..devices import resolve_device

        model = load_model(rd, device=str(resolve_device(device, "--device")))
        try:
            scores = evaluate(model, ds, metrics=list(names), seed=seed, n_train=n_train, n_test=n_test,
                              progress=True)
        except ValueError as e:
            raise c.VarstructError(f"{run_dir}: {c._line(e)}") from None
        scores.attrs["model_dir"] = str(run_dir)
        write_netcdf(scores, out_path)

    from rich.table import Table

    table = Table(title=f"{run_dir} on {ds.name} (seed {seed})")
    table.add_column("score")
    table.add_column("value", justify="right")
    for name, var in scores.data_vars.items():
        if var.ndim == 0:
            table.add_row(name, f"{float(var):.4g}")
    console.print(table)
    console.print(f"wrote {out_path}")
