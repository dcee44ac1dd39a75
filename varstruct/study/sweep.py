"""``sweep(spec, out)``: train, evaluate and measure every run of a study, on a local process pool
or a dask cluster; idempotent and restartable.

Two steps. :func:`prepare` checks everything and creates nothing: the scheduler address, the
workers (more than the cores: capped, with a warning), the models dir, every run's training
config (the trainer's own validation, once per distinct config), its ``[evaluate]`` and
``[measure]`` settings, that no two runs train the identical config, and that no run dir holds
a different run (e.g. after ``steps`` changed: refused up front, nothing is touched). It plans
each run from its dir's :class:`~varstruct.runs.layout.RunState` (:func:`varstruct.study.job.plan`).
:func:`execute` runs the planned jobs (:func:`varstruct.study.job.run_job`) on an executor
(:mod:`varstruct.study.executors`) and reports each finished job through a progress callback
``advance(n=1, text=None)`` (the one of :func:`varstruct.progress.progress_bar`).

Every file is written atomically by the worker itself (shared filesystem for a dask cluster),
so a killed worker leaves no half-written result. Every job runs torch and BLAS with ``threads``
threads, so results do not depend on the scheduler or on which worker ran the job.
"""
from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, OutputError, VarstructError, first_line
from ..runs.layout import RunDir, RunState
from ..validate import check_int
from .executors import (PRELOAD, DaskInfo, InProcessExecutor, Scheduler, dask_executor,  # noqa: F401
                        local_cluster, local_pool, parse_scheduler)
from .job import plan, run_job  # noqa: F401
from .spec import Run

OUTCOMES = ("done", "skipped", "failed", "busy", "interrupted", "not_started")


def default_workers() -> int:
    """The default number of workers: the cores this process may use."""
    from ..resources import cpu_count

    return cpu_count()


@dataclass
class SweepPlan:
    """What a sweep will do (:func:`prepare`): ``jobs`` to run, ``skipped`` run dirs (finished
    with the spec's settings), ``failed`` run dirs that cannot run (rel -> reason: broken,
    diverged), the state of every run, the real ``workers`` and the ``warnings`` to show."""

    out: Path
    scheduler: Scheduler
    workers: int
    threads: int
    device: str = "auto"
    runs: list = field(default_factory=list)
    jobs: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)    # rel -> RunState
    warnings: list = field(default_factory=list)
    budget: dict = field(default_factory=dict)    # rel -> (rebudget | retrain, why): a changed until_converged budget

    @property
    def in_process(self) -> bool:
        return self.scheduler.kind == "local" and self.workers == 1


@dataclass
class SweepResult:
    """Outcome of a sweep: run rel dirs per outcome; ``failed`` maps rel -> error line;
    ``busy`` maps rel -> the line naming the process that holds it (another sweep or trainer
    running it: left to that process, not a failure); ``interrupted``: jobs that had started
    when the sweep was stopped, ``not_started``: the jobs it never reached; ``workers``: the worker processes really used (None: an existing
    dask cluster's)."""

    out: Path
    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    busy: dict = field(default_factory=dict)
    interrupted: list = field(default_factory=list)
    not_started: list = field(default_factory=list)
    seconds: float = 0.0
    job_seconds: dict = field(default_factory=dict)   # rel -> seconds the job itself took
    dashboard: str | None = None
    workers: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted and not self.not_started


def check_scheduler(scheduler) -> str:
    """The scheduler string if :func:`~varstruct.study.executors.parse_scheduler` accepts it."""
    return str(parse_scheduler(scheduler))


# -- prepare: check everything, create nothing -------------------------------------------------------

def check_out(out) -> Path:
    """The models dir as an absolute path; OutputError unless it is a writable folder or can be
    created in an existing writable folder (nothing is created)."""
    from ..io import check_folder

    out = Path(out).expanduser().absolute()
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutputError(f"models dir {out} exists and is not a folder")
        check_folder(out, f"models dir {out}")
    else:
        check_folder(out.parent, f"cannot create models dir {out}")
    return out.resolve()


def check_runs(runs: list[Run]) -> None:
    """ConfigError (one line naming a run dir) unless every run's training config passes the
    trainer's validation, its ``[measure]`` response is known, and no two runs train the
    identical config. First every config goes through :meth:`TrainConfig.validate` (torch-free,
    no file read: a typo answers at once), then the checks that need the dataset
    (:func:`varstruct.training.config.resolve_record`, once per distinct config but the seed;
    builds each distinct dataset, not its images; a dataset module may import torch)."""
    from .. import catalog
    from ..training.config import TrainConfig, resolve_record
    from ..validate import check_choice

    for run in runs:
        if "response" in run.measure:
            check_choice("[measure] response", run.measure["response"], catalog.RESPONSES, error=ConfigError)
        try:
            TrainConfig.from_dict(run.train).validate()
        except ConfigError as e:
            raise ConfigError(f"run {run.rel}: {first_line(e)}") from None
    records, seen = {}, {}
    for run in runs:
        cfg = dict(run.train)
        seed = cfg.pop("seed", 0)
        key = json.dumps(cfg, sort_keys=True, default=str)
        if key not in records:
            try:
                _, record = resolve_record(TrainConfig.from_dict({**cfg, "seed": seed}), resolve_auto=False)
            except (VarstructError, TypeError, KeyError, AttributeError) as e:
                raise ConfigError(f"run {run.rel}: {first_line(e)}") from None
            record.pop("seed"), record.pop("version", None)
            records[key] = json.dumps(record, sort_keys=True, default=str)
        ident = (records[key], seed)
        if ident in seen:
            raise ConfigError(f"runs {seen[ident]} and {run.rel} train the identical config; "
                              "give each value once")
        seen[ident] = run.rel


def _check_resources(workers, threads, scheduler: Scheduler, n_jobs: int) -> tuple[int, int, list[str]]:
    from ..resources import cpu_count

    cores = cpu_count()
    warnings = []
    workers = default_workers() if workers is None else check_int("workers", workers, 1, error=ConfigError)
    threads = check_int("threads", threads, 1, error=ConfigError)
    if scheduler.kind != "address" and workers > cores:
        warnings.append(f"{workers} workers requested but this machine has {cores} cores; using {cores}")
        workers = cores
    if threads > cores:
        warnings.append(f"{threads} threads per job on {cores} cores: the jobs will run slower, not faster")
    elif scheduler.kind != "address" and min(workers, max(n_jobs, 1)) * threads > cores:
        warnings.append(f"{min(workers, n_jobs)} workers x {threads} threads is more than the {cores} cores")
    return workers, threads, warnings


def prepare(runs, out, scheduler="local", workers: int | None = None, threads: int = 1,
            device: str = "auto") -> SweepPlan:
    """Check a sweep and plan it (see the module docstring); nothing is created or written
    (an existing dask scheduler is asked whether it answers). ``device``: where each job trains,
    scores and measures (cpu, cuda, cuda:N, auto; resolved on the worker that runs the job).
    ``runs``: a list of :class:`Run` (or their dicts), or a spec path."""
    from .spec import read_spec

    sched = parse_scheduler(scheduler)
    if not isinstance(runs, (list, tuple)):
        runs = read_spec(runs)
    runs = [r if isinstance(r, Run) else Run(**r) for r in runs]
    out = check_out(out)
    workers, threads, warnings = _check_resources(workers, threads, sched, len(runs))
    from ..devices import check_device

    device = check_device(device)
    if device.startswith("cuda") and sched.kind != "address":  # the jobs run here: a missing GPU is one line
        from ..devices import resolve_device

        resolve_device(device)
    check_runs(runs)
    p = SweepPlan(out=out, scheduler=sched, workers=workers, threads=threads, device=device, runs=runs,
                  warnings=warnings)
    other = []
    for r in runs:
        job = r.to_dict()
        state, action, why = plan(job, out)
        p.states[r.rel] = state
        if action == "skip":
            p.skipped.append(r.rel)
        elif action in ("diverged", "packed") or (action == "refuse" and state is RunState.BROKEN):
            p.failed[r.rel] = why
        elif action == "refuse":
            other.append((r.rel, why))
        else:
            if action in ("rebudget", "retrain"):
                p.budget[r.rel] = (action, why)
            p.jobs.append(job)
    for kind, what in (("rebudget", "met the convergence criterion within the new budget: kept, their config.json's "
                                    "budget raised"),
                       ("retrain", "stopped unconverged at the old budget: trained again from step 0 to the new "
                                   "one (their first steps replay bit for bit)")):
        n = sum(a == kind for a, _ in p.budget.values())
        if n:
            p.warnings.append(f"{n} run(s) {what}")
    if sched.kind == "address":  # a listener that is not a dask scheduler: refused now, in bounded time
        from .executors import probe_scheduler

        probe_scheduler(sched.address)
    if other:
        rel, why = other[0]
        raise ConfigError(f"{len(other)} of {len(runs)} run dirs hold a different run, e.g. {why}; nothing was run")
    if sched.kind != "address":
        p.workers = min(workers, max(len(p.jobs), 1))
    return p


# -- execute ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _executor(p: SweepPlan, info: DaskInfo):
    """(executor, how many jobs to keep in flight) for the plan."""
    if not p.jobs or p.in_process:
        yield InProcessExecutor(), 1
    elif p.scheduler.kind == "local":
        ex = local_pool(p.workers)
        try:
            yield ex, 2 * p.workers
        except BaseException:
            _stop_pool(ex)
            raise
        ex.shutdown(wait=True)
    else:
        with dask_executor(p.scheduler, p.workers, p.threads) as (ex, i):
            info.address, info.dashboard = i.address, i.dashboard
            yield ex, len(p.jobs)


def _stop_pool(ex, grace: float = 5.0) -> None:
    """Stop a process pool now (Ctrl-C): pending jobs cancelled, every worker sent SIGTERM (a
    training job checkpoints and stops; a worker still starting exits quietly instead of
    finding the pool gone), then SIGKILL for any left after ``grace`` seconds."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for pr in procs:
        with contextlib.suppress(Exception):
            pr.terminate()
    deadline = time.monotonic() + grace
    for pr in procs:
        with contextlib.suppress(Exception):
            pr.join(max(0.0, deadline - time.monotonic()))
            if pr.is_alive():
                pr.kill()


def execute(p: SweepPlan, progress: Callable | None = None,
            on_start: Callable[[DaskInfo], None] | None = None) -> SweepResult:
    """Run a :func:`prepare`-d sweep. ``progress(n=1, text=None)`` is called once per finished
    job (the skipped runs are not reported); ``on_start(info)`` once a dask cluster is connected.
    Ctrl-C stops the sweep: started jobs end ``interrupted`` (their checkpoints resume them),
    the others ``not_started``. Creates the models dir."""
    advance = progress or (lambda n=1, text=None: None)
    res = SweepResult(out=p.out, skipped=list(p.skipped), failed=dict(p.failed),
                      workers=p.workers if p.scheduler.kind != "address" else None)
    t0 = time.perf_counter()
    info = DaskInfo()
    pending = list(reversed(p.jobs))
    running: dict = {}
    try:
        p.out.mkdir(exist_ok=True)
        with _executor(p, info) as (ex, capacity):
            if info.address and on_start is not None:
                on_start(info)
            while pending or running:
                while pending and len(running) < capacity:
                    job = pending.pop()
                    running[ex.submit(run_job, job, str(p.out), p.threads, p.device)] = job["rel"]
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    rel = running.pop(fut)
                    r = _outcome(fut, rel)
                    _record(res, r)
                    advance(1, f"{r['outcome']}: {rel}")
                    if r["outcome"] == "interrupted":  # Ctrl-C reached the trainer
                        raise KeyboardInterrupt
    except KeyboardInterrupt:
        _stopped(res, p, [running[f] for f in running], [j["rel"] for j in pending],
                 {running[f] for f in running if f.running()})
    res.seconds = time.perf_counter() - t0
    res.dashboard = info.dashboard
    return res


def _outcome(fut, rel: str) -> dict:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return fut.result()
    except BrokenProcessPool as e:  # a worker died (killed, out of memory)
        return {"rel": rel, "outcome": "failed", "seconds": 0.0, "error": f"worker process died ({first_line(e)})"}
    except Exception as e:  # noqa: BLE001 - the executor's own failure (lost dask worker, ...)
        return {"rel": rel, "outcome": "failed", "seconds": 0.0, "error": f"{type(e).__name__}: {first_line(e)}"}


def _stopped(res: SweepResult, p: SweepPlan, in_flight: list, never: list, running: set) -> None:
    """Sort the unfinished jobs after Ctrl-C: started (a running future, the in-process job, or
    a dir whose state moved since the plan) -> interrupted; the rest -> not_started."""
    for rel in in_flight + never:
        if rel in res.interrupted:
            continue
        moved = RunDir(p.out / rel).progress() is not p.states.get(rel)
        if moved or rel in running or (p.in_process and rel in in_flight):
            res.interrupted.append(rel)
        else:
            res.not_started.append(rel)


def _record(result: SweepResult, res: dict) -> None:
    result.job_seconds[res["rel"]] = res["seconds"]
    if res["outcome"] in ("failed", "busy"):
        getattr(result, res["outcome"])[res["rel"]] = res["error"]
    else:
        getattr(result, res["outcome"]).append(res["rel"])


def sweep(runs, out, scheduler: str = "local", workers: int | None = None, threads: int = 1,
          progress: Callable | None = None, on_start: Callable | None = None) -> SweepResult:
    """Run every run (a list of :class:`Run`, or a spec path) into ``out``: :func:`prepare`
    then :func:`execute` (see the module docstring).

    scheduler: ``local`` (a process pool of ``workers`` processes; in this process when
    workers = 1), ``dask`` (a dask.distributed LocalCluster of ``workers`` processes) or
    ``tcp://HOST:PORT`` (an existing dask scheduler; its workers must see ``out``).
    threads: torch/BLAS threads per job. Warnings of :func:`prepare` go to the logger
    ``varstruct.sweep``.
    """
    import logging

    p = prepare(runs, out, scheduler=scheduler, workers=workers, threads=threads)
    for w in p.warnings:
        logging.getLogger("varstruct.sweep").warning(w)
    return execute(p, progress=progress, on_start=on_start)


def is_finished(run: dict, root) -> bool:
    """Whether the run's dir already holds its trained, scored and measured run with the spec's
    settings (:func:`varstruct.study.job.plan` says ``skip``)."""
    try:
        return plan(run, root)[1] == "skip"
    except VarstructError:
        return False

