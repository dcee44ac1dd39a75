"""`varstruct sweep SPEC.toml --out DIR`: train, evaluate and measure every run of a study spec."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import app, console


@app.command("sweep")
def sweep_cmd(
    spec: Path = typer.Argument(..., help="Study spec (TOML; see docs/studies.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Models dir: one run dir per run of the spec."),
    scheduler: str = typer.Option("local", "--scheduler", help="local (process pool), dask (a dask LocalCluster) "
                                  "or tcp://HOST:PORT (an existing dask scheduler)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Worker processes (default: the number "
                                          "of cores; local and dask only)."),
    threads: int = typer.Option(1, "--threads", help="Torch/BLAS threads per worker (workers x threads <= cores)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and their state; train nothing."),
):
    """Run a study: each run trains, evaluates the spec's metrics and measures the model into its own
    dir. Finished runs are skipped, interrupted ones resumed, failures recorded (exit code 1)."""
    from ..study.spec import read_spec
    from ..study.sweep import check_scheduler, default_workers, sweep

    runs = read_spec(spec)
    check_scheduler(scheduler)
    if dry_run:
        _list(runs, out)
        return 0
    res = sweep(runs, out, scheduler=scheduler, workers=workers, threads=threads, progress=True)
    n_workers = workers or default_workers()
    console.print(f"sweep of {len(runs)} runs into {res.out}: {len(res.done)} done, {len(res.skipped)} skipped, "
                  f"{len(res.failed)} failed" + (f", {len(res.interrupted)} interrupted" if res.interrupted else "")
                  + f" in {res.seconds:.1f} s ({scheduler}, {n_workers} workers x {threads} threads)")
    for rel, err in sorted(res.failed.items()):
        console.print(f"  failed {rel}: {err}", markup=False, highlight=False)
    if res.interrupted:
        console.print(f"  {len(res.interrupted)} runs interrupted; run the same command again to finish them")
        return 130
    return 1 if res.failed else 0


def _list(runs, out: Path) -> None:
    from ..rundir import RunDir

    table = Table(title=f"{len(runs)} runs -> {out}")
    for col in ("run dir", "dataset params", "hparams", "steps", "state"):
        table.add_column(col)
    for r in runs:
        rd = RunDir(out / r.rel)
        state = rd.state
        if state == "trained":
            state = "done" if rd.has_scores and rd.has_measures else "trained (not scored)"
        st = rd.read_status() if rd.status_path.is_file() else None
        if st and st.get("state") == "failed":
            state = f"failed: {st.get('error')}"
        t = r.train
        table.add_row(r.rel, _kv(t["dataset_params"]), _kv(t["hparams"]), str(t["steps"]), state)
    console.print(table)


def _kv(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "-"
