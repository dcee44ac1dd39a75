"""`varstruct sweep SPEC.toml --out DIR`: train, evaluate and measure every run of a study spec."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import common as c
from .common import app, console


@app.command("sweep")
def sweep_cmd(
    spec: Path = typer.Argument(..., help="Study spec (TOML; see docs/studies.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Models dir: one run dir per run of the spec."),
    scheduler: str = typer.Option("local", "--scheduler", help="local (process pool), dask (a dask LocalCluster) "
                                  "or tcp://HOST:PORT (an existing dask scheduler)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Worker processes (default and most: the "
                                          "number of cores; local and dask only)."),
    threads: int = typer.Option(1, "--threads", help="Torch/BLAS threads per worker (workers x threads <= cores)."),
    device: str = c.device_option(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every run, list the runs and their state; "
                                 "train nothing."),
):
    """Run a study: each run trains, evaluates the spec's metrics and measures the model into its own
    dir. Finished runs are skipped, interrupted ones resumed, failures recorded (exit code 1)."""
    from ..errors import VarstructError
    from ..study.executors import parse_scheduler
    from ..study.spec import read_spec

    try:
        parse_scheduler(scheduler)
        runs = read_spec(spec)
        from ..study.sweep import execute, prepare

        plan = prepare(runs, out, scheduler=scheduler, workers=workers, threads=threads,
                       device=c.check_device_option(device))
    except VarstructError as e:
        raise type(e)(_flags(str(e))) from None
    for w in plan.warnings:
        console.print(f"warning: {_flags(w)}", markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        _list(plan)
        return 0
    from ..progress import progress_bar

    with progress_bar(True, len(runs), "sweep", transient=False) as advance:
        if plan.skipped:
            advance(len(plan.skipped), f"{len(plan.skipped)} already done")
        res = execute(plan, progress=advance,
                      on_start=lambda i: console.print(f"dask scheduler {i.address}, dashboard: {i.dashboard}"))
    who = f"{res.workers} workers" if res.workers is not None else "the cluster's workers"
    parts = [f"{len(res.done)} done", f"{len(res.skipped)} skipped", f"{len(res.failed)} failed"]
    if res.busy:
        parts.append(f"{len(res.busy)} busy (held by another process, left to it)")
    if res.interrupted or res.not_started:
        parts += [f"{len(res.interrupted)} interrupted", f"{len(res.not_started)} not started"]
    console.print(f"sweep of {len(runs)} runs into {res.out}: {', '.join(parts)} in {res.seconds:.1f} s "
                  f"({plan.scheduler}, {who} x {plan.threads} threads)", markup=False, highlight=False, soft_wrap=True)
    for rel, err in sorted(res.failed.items()):
        console.print(f"  failed {rel}: {err}", markup=False, highlight=False, soft_wrap=True)
    for rel, err in sorted(res.busy.items()):
        console.print(f"  busy {rel}: {err}", markup=False, highlight=False, soft_wrap=True)
    if res.interrupted or res.not_started:
        console.print("  interrupted; run the same command again to finish the study", markup=False, soft_wrap=True)
        return 130
    if res.failed:
        return 1
    if res.busy:
        console.print("  busy runs are not done yet: run the same command again once their processes have "
                      "finished", markup=False, soft_wrap=True)
        return 75  # EX_TEMPFAIL: nothing failed, try again later
    return 0


_FLAGS = (("scheduler ", "--scheduler "), ("models dir ", "--out "), ("cannot create models dir ", "cannot create --out "),
          ("workers must", "--workers must"), ("threads must", "--threads must"))


def _flags(msg: str) -> str:
    """Library wording -> the CLI's flag names, for the messages that name a sweep argument."""
    for lib, flag in _FLAGS:
        if msg.startswith(lib):
            return flag + msg[len(lib):]
    return msg


def _list(plan) -> None:
    from rich.table import Table

    from ..runs.layout import RunDir

    table = Table(title=f"{len(plan.runs)} runs -> {plan.out}")
    rel_width = max((len(r.rel) for r in plan.runs), default=7)
    table.add_column("run dir", no_wrap=True, min_width=rel_width)  # never cut: seed rows must differ
    for col in ("dataset params", "hparams", "steps", "state"):
        table.add_column(col, overflow="fold")
    skipped = set(plan.skipped)
    for r in plan.runs:
        state = str(plan.states[r.rel])
        if r.rel in skipped:
            state = "done"
        elif r.rel in plan.failed:
            state = f"{state}: {plan.failed[r.rel]}"
        elif state == "failed":
            state = f"failed: {RunDir(plan.out / r.rel).failure()}"
        elif r.rel in plan.budget:
            state = f"{state}, {plan.budget[r.rel][1]}"
        elif state in ("trained", "scored", "measured"):
            state = f"{state} (results to compute)"
        if r.rel not in skipped:
            holder = RunDir(plan.out / r.rel).busy()
            if holder:
                state = f"{state}, busy: in use by {holder}"
        t = r.train
        table.add_row(r.rel, _kv(t["dataset_params"]), _kv(t["hparams"]), str(t["steps"]), state)
    from rich.console import Console

    wide = max(console.width, rel_width + 75)  # a narrow terminal wraps the lines, never cuts a run dir
    (console if wide == console.width else Console(width=wide)).print(table)


def _kv(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "-"
