"""`varstruct evaluate DIR`: disentanglement scores of a trained model -> DIR/scores.nc."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .common import UserError, app, console


@app.command("evaluate")
def evaluate_cmd(
    run_dir: Path = typer.Argument(..., help="A model dir written by `varstruct train`."),
    metrics: str = typer.Option(None, "--metrics", "-m",
                                help="Comma-separated metrics (default: all of mig, dci, sap, "
                                     "modularity_explicitness, irs, unsupervised, beta_vae, factor_vae)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the evaluation points."),
    train_points: int = typer.Option(10000, "--train-points",
                                     help="Train points (and sampling-score training points)."),
    test_points: int = typer.Option(5000, "--test-points",
                                    help="Test points (and sampling-score evaluation points)."),
):
    """Score the model's encoder mean with the disentanglement metrics; writes DIR/scores.nc."""
    from ..io import check_writable, write_netcdf
    from ..metrics.evaluate import check_metrics, evaluate

    try:
        names = check_metrics(metrics)
    except ValueError as e:
        raise UserError(str(e)) from None
    from ..rundir import RunDir

    rd = RunDir(run_dir)
    rd.require("trained")
    out = check_writable(rd.scores_path)
    with rd.lock():
        model = rd.load_model()
        ds = rd.dataset(model.config)
        try:
            scores = evaluate(model, ds, metrics=names, seed=seed, n_train=train_points, n_test=test_points,
                              progress=True)
        except ValueError as e:
            raise UserError(str(e)) from None
        scores.attrs["model_dir"] = str(run_dir)
        write_netcdf(scores, out)

    table = Table(title=f"{run_dir} on {ds.name} (seed {seed})")
    table.add_column("score")
    table.add_column("value", justify="right")
    for name, var in scores.data_vars.items():
        if var.ndim == 0:
            table.add_row(name, f"{float(var):.4g}")
    console.print(table)
    console.print(f"wrote {out}")
