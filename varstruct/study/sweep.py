"""``sweep(spec, out)``: train, evaluate and measure every run of a study, on a local process pool
or a dask cluster; idempotent and restartable.

Each job (:func:`run_job`) works on its own run dir ``out/<run.rel>``:
- trained, scored and measured with the same settings -> ``skipped`` (nothing is recomputed);
- interrupted (config, maybe a checkpoint, no final weights) -> training resumes through the
  trainer's resume, which gives the same weights as an uninterrupted run;
- missing scores or measures are computed; ``status.json`` records ``done`` or ``failed`` with
  the error's first line. A failed job never stops the others.
Every file is written atomically by the worker itself (shared filesystem for a dask cluster),
so a killed worker leaves no half-written result. Every job runs torch and BLAS with ``threads``
threads, so results do not depend on the scheduler or on which worker ran the job.
"""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, RunDirLocked, VarstructError, first_line
from ..validate import check_int
from .spec import Run

OUTCOMES = ("done", "skipped", "failed", "interrupted")
# spec key -> attr of the stored Dataset that records it
SCORE_ATTRS = {"metrics": "metrics", "seed": "seed", "n_train": "points_train", "n_test": "points_test"}
MEASURE_ATTRS = {"n_anchors": "n_anchors", "seed": "seed", "response": "response"}


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _differences(record: dict, train: dict) -> list[str]:
    """Fields the spec sets that a run dir's config.json has differently (hparams by key)."""
    diff = []
    for k, v in train.items():
        have = record.get(k)
        if k == "hparams":
            hp = have or {}
            diff += [f"hparams.{h}" for h, x in v.items() if hp.get(h) != x]
        elif k == "data_file":
            if str(Path(v).expanduser().resolve()) != have:
                diff.append(k)
        elif have != v:
            diff.append(k)
    return diff


def _settings_match(ds, spec: dict, attr_names: dict) -> bool:
    """Whether a stored scores/measures Dataset was made with the spec's settings."""
    for key, attr in attr_names.items():
        if key in spec and spec[key] is not None and attr in ds.attrs:
            have, want = ds.attrs[attr], spec[key]
            if key == "metrics":
                want = ",".join(want)
            if str(have) != str(want):
                return False
    return True


def _limits(threads: int):
    stack = contextlib.ExitStack()
    from ..tensors import torch_threads

    stack.enter_context(torch_threads(threads))
    try:
        from threadpoolctl import threadpool_limits
        stack.enter_context(threadpool_limits(threads))
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass
    return stack


def _no_dask_in_job():
    """On a dask worker, let the job's own libraries use dask's local scheduler: xarray would
    otherwise take a cluster-wide lock for its in-memory netCDF writes (and fail)."""
    import sys

    if "dask" not in sys.modules:
        return contextlib.nullcontext()
    import dask

    return dask.config.set(scheduler="synchronous")


def run_job(run: dict, root: str, threads: int = 1) -> dict:
    """Train + evaluate + measure one run (a :meth:`Run.to_dict`) under ``root``. Never raises
    for a run's own failure: returns {rel, outcome, error, seconds}."""
    t0 = time.perf_counter()
    rel = run["rel"]
    try:
        with _no_dask_in_job():
            outcome = _run_job(run, Path(root) / rel, threads)
        error = None
    except KeyboardInterrupt:
        outcome, error = "interrupted", "interrupted"
    except Exception as e:  # noqa: BLE001 - a failing run is recorded, the others go on
        if type(e).__name__ == "TrainingInterrupted":
            outcome, error = "interrupted", first_line(e)
        else:
            outcome, error = "failed", first_line(e) if isinstance(e, VarstructError) else \
                f"{type(e).__name__}: {first_line(e)}"
            if not isinstance(e, RunDirLocked):  # a dir held by another process is not ours to mark
                with contextlib.suppress(Exception):
                    from ..rundir import RunDir
                    rd = RunDir(Path(root) / rel)
                    rd.path.mkdir(parents=True, exist_ok=True)
                    rd.write_status("failed", error)
    return {"rel": rel, "outcome": outcome, "error": error, "seconds": time.perf_counter() - t0}


def is_finished(run: dict, root) -> bool:
    """Whether the run's dir already holds its trained, scored and measured run (cheap: JSON,
    safetensors header and netCDF attrs)."""
    from ..rundir import RunDir

    rd = RunDir(Path(root) / run["rel"])
    try:
        return rd.state == "trained" and not _differences(rd.read_config(), run["train"]) and \
            rd.has_scores and _settings_match(rd.read_scores(), run["evaluate"], SCORE_ATTRS) and \
            rd.has_measures and _settings_match(rd.read_measures(), run["measure"], MEASURE_ATTRS)
    except VarstructError:
        return False


def _run_job(run: dict, path: Path, threads: int) -> str:
    from ..rundir import RunDir

    rd = RunDir(path)
    ev, me = dict(run["evaluate"]), dict(run["measure"])
    state = rd.state
    if state == "broken":
        rd.require("trained")  # raises with the reason
    if state in ("interrupted", "trained"):
        diff = _differences(rd.read_config(), run["train"])
        if diff:
            raise ConfigError(f"{path} holds a different run (differs in {', '.join(diff)}); "
                              "remove it or sweep into another --out")
    scored = lambda: rd.has_scores and _settings_match(rd.read_scores(), ev, SCORE_ATTRS)  # noqa: E731
    measured = lambda: rd.has_measures and _settings_match(rd.read_measures(), me, MEASURE_ATTRS)  # noqa: E731
    if state == "trained" and scored() and measured():
        return "skipped"

    from ..training import train

    if state in ("missing", "empty"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # left by an earlier failure of this run
            rd.status_path.unlink()
        train(run["train"], out=path, threads=threads)
    elif state == "interrupted":
        train(run["train"], out=path, resume=True, threads=threads)

    from .. import evaluate, measure_model

    with rd.lock(), _limits(threads):
        model = rd.load_model()
        ds = rd.dataset(model.config)
        if not scored():
            rd.write_scores(evaluate(model, ds, n_jobs=1, threads=threads, **ev))
        if not measured():
            rd.write_measures(measure_model(model, ds, threads=threads, **me))
        rd.write_status("done")
    return "done"


# -- executors: each yields run_job results as they complete ---------------------------------------

def _die_with_parent():  # pragma: no cover - runs in the pool's workers
    """Linux: a pool worker gets SIGKILL when the sweep process dies (no orphaned trainers)."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _in_process(jobs, root, threads, **_):
    for job in jobs:
        res = run_job(job, root, threads)
        yield res
        if res["outcome"] == "interrupted":  # Ctrl-C reached the trainer: stop here
            raise KeyboardInterrupt


# Imported once by the fork server (each pool worker is forked from it with these loaded) and by
# each dask worker as it starts, instead of by a worker's first job (several seconds: torch, the
# trainer; ~0.6 s more: torch.optim's torch._dynamo, and xarray's netCDF writer, which imports
# h5netcdf and looks up dask's scheduler through dask.array and distributed).
PRELOAD = ("varstruct.study.sweep", "varstruct.training", "varstruct.metrics.evaluate",
           "varstruct.measures.model", "torch._dynamo", "torch._decomp.decompositions_for_jvp", "xarray", "dask.array", "distributed", "h5netcdf")


def _worker_context(mp):
    """A "forkserver" context whose server preloads :data:`PRELOAD` (Linux, macOS); "spawn"
    where fork servers do not exist. The server is single-threaded when it forks, unlike this
    process (progress bar, torch's thread pool), so forking from it is safe; it lives as long as
    this process, so later sweeps in the same process reuse it."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def _pool(jobs, root, threads, workers, **_):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(mp),
                             initializer=_die_with_parent) as pool:
        futures = {pool.submit(run_job, job, root, threads): job["rel"] for job in jobs}
        try:
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except BrokenProcessPool as e:  # a worker died (killed, out of memory)
                    yield {"rel": futures[fut], "outcome": "failed", "seconds": 0.0,
                           "error": f"worker process died ({first_line(e)})"}
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


@dataclass
class DaskInfo:
    dashboard: str | None = None
    address: str | None = None
    on_start: object = None   # called with this object once the client is connected


@contextlib.contextmanager
def local_cluster(workers: int, threads: int = 1):
    """A dask LocalCluster of ``workers`` single-task processes for sweep jobs of ``threads``
    threads; closed on exit.

    Workers are forked from the pool's fork server (:func:`_worker_context`: torch and the trainer
    imported once) where there is one, instead of dask's default of spawning each and importing
    everything in each (seconds per worker; closing them is faster too); they import
    :data:`PRELOAD` as they start either way. Their environment: OMP/MKL/OpenBLAS threads =
    ``threads``, and not dask's default ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes glibc's mmap
    threshold at 128 KiB so that every larger tensor is mapped and unmapped again (page faults).
    dask's nanny sets these variables in this process to pass them on; they are restored here.
    The workers' statistical profiler is off: it samples the running job's stack every 10 ms
    (measured: ~25% more CPU time per job).
    """
    import logging
    import multiprocessing as mp

    import dask
    from dask.distributed import LocalCluster

    env = {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads}
    cfg = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in env.items()}
    cfg["distributed.worker.profile.enabled"] = False
    if _worker_context(mp).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()  # with our preload, before dask would set its own
        cfg["distributed.worker.multiprocessing-method"] = "forkserver"
    saved = dict(os.environ)
    try:
        with dask.config.set(cfg):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR, preload=list(PRELOAD))
    finally:
        for k in set(os.environ) | set(saved):
            if os.environ.get(k) != saved.get(k):
                if k in saved:
                    os.environ[k] = saved[k]
                else:
                    del os.environ[k]
    with cluster:
        yield cluster


def _dask(jobs, root, threads, workers, scheduler, info: DaskInfo, **_):
    from dask.distributed import Client, as_completed

    with contextlib.ExitStack() as stack:
        if scheduler == "dask":
            cluster = stack.enter_context(local_cluster(workers, threads))
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except (OSError, TimeoutError) as e:
                raise ConfigError(f"--scheduler {scheduler}: cannot reach the dask scheduler ({first_line(e)})") from None
        info.dashboard, info.address = client.dashboard_link, client.scheduler.address
        if info.on_start is not None:
            info.on_start(info)
        token = uuid.uuid4().hex[:8]
        futures = [client.submit(run_job, job, root, threads, key=f"varstruct-{job['rel']}-{token}", pure=False)
                   for job in jobs]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:
            client.cancel(futures)
            raise


# -- the sweep --------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    """Outcome of a sweep: run rel dirs per outcome; ``failed`` maps rel -> error line."""

    out: Path
    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    interrupted: list = field(default_factory=list)
    seconds: float = 0.0
    job_seconds: dict = field(default_factory=dict)   # rel -> seconds the job itself took
    dashboard: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


def check_scheduler(scheduler: str) -> str:
    if scheduler in ("local", "dask") or (isinstance(scheduler, str) and scheduler.startswith("tcp://")):
        return scheduler
    raise ConfigError(f"--scheduler must be local, dask or tcp://HOST:PORT, got {scheduler!r}")


def sweep(runs, out, scheduler: str = "local", workers: int | None = None, threads: int = 1,
          progress: bool = False, console=None) -> SweepResult:
    """Run every run (a list of :class:`Run`, or a spec path) into ``out``; see the module docstring.

    scheduler: ``local`` (a process pool of ``workers`` processes; in this process when
    workers = 1), ``dask`` (a dask.distributed LocalCluster of ``workers`` processes) or
    ``tcp://HOST:PORT`` (an existing dask scheduler; its workers must see ``out``).
    threads: torch/BLAS threads per job. progress: a rich bar over runs (on ``console``).
    """
    from .spec import read_spec

    if not isinstance(runs, (list, tuple)):
        runs = read_spec(runs)
    scheduler = check_scheduler(scheduler)
    workers = default_workers() if workers is None else check_int("--workers", workers, 1, error=ConfigError)
    threads = check_int("--threads", threads, 1, error=ConfigError)
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")
    jobs = [r.to_dict() if isinstance(r, Run) else r for r in runs]
    from ..training.config import TrainConfig

    for keys in {tuple(sorted(j["train"])) for j in jobs}:  # unknown [train] options: fail before any work
        try:
            TrainConfig.from_dict(next(j["train"] for j in jobs if tuple(sorted(j["train"])) == keys))
        except ConfigError as e:
            raise ConfigError(f"spec [train]: {e}") from None
    out.mkdir(exist_ok=True)
    info = DaskInfo()
    result = SweepResult(out=out)
    t0 = time.perf_counter()
    result.skipped = [j["rel"] for j in jobs if is_finished(j, out)]
    jobs = [j for j in jobs if j["rel"] not in set(result.skipped)]
    if not jobs:
        execute = _in_process
    elif scheduler == "local":
        execute = _in_process if workers == 1 else _pool
    else:
        execute = _dask
    bar = _bar(progress, console, len(jobs))
    with bar as p:
        task = p.add_task("sweep", total=len(jobs) + len(result.skipped), completed=len(result.skipped),
                          status=f"{len(result.skipped)} already done") if p is not None else None
        if p is not None:
            info.on_start = lambda i: p.console.print(f"dask scheduler {i.address}, dashboard: {i.dashboard}")
        try:
            for res in execute(jobs, str(out), threads, workers=min(workers, max(len(jobs), 1)),
                               scheduler=scheduler, info=info):
                if p is not None:
                    p.update(task, advance=1, status=f"{res['outcome']}: {res['rel']}")
                _record(result, res)
        except KeyboardInterrupt:
            done = set(result.done) | set(result.skipped) | set(result.failed) | set(result.interrupted)
            result.interrupted += [j["rel"] for j in jobs if j["rel"] not in done]
    result.seconds = time.perf_counter() - t0
    result.dashboard = info.dashboard
    return result


def _record(result: SweepResult, res: dict) -> None:
    result.job_seconds[res["rel"]] = res["seconds"]
    if res["outcome"] == "failed":
        result.failed[res["rel"]] = res["error"]
    else:
        getattr(result, res["outcome"]).append(res["rel"])


def _bar(enabled: bool, console, total: int):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn("{task.fields[status]}"), console=console)
