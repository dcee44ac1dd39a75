"""Where sweep jobs run, each behind :class:`concurrent.futures.Executor`.

- :class:`InProcessExecutor`: one job at a time in this process (``workers = 1``);
- :func:`local_pool`: a :class:`~concurrent.futures.ProcessPoolExecutor` of workers forked from a
  fork server that has torch and the trainer imported (:data:`PRELOAD`);
- :func:`dask_executor`: ``Client.get_executor()`` of a fresh dask LocalCluster
  (:func:`local_cluster`) or of an existing scheduler at ``tcp://HOST:PORT``.

:func:`parse_scheduler` checks a scheduler string before anything is created.

Every process a sweep starts dies with it, so a ``kill -9`` of the sweep leaves no trainer (nor
a fork server holding torch) behind:

- the fork server: ``PR_SET_PDEATHSIG`` (Linux; :func:`_start_forkserver`), also while it is
  still importing torch; and, as everywhere, multiprocessing's own exit once the last process
  holding its "alive" pipe is gone (the sweep and every process forked from the server);
- pool workers: ``PR_SET_PDEATHSIG`` (their parent is the fork server) and a watchdog thread on
  the sweep's PID (:func:`worker_init`);
- dask LocalCluster workers: distributed's own watchdog thread, which exits a worker process at
  once when the pipe its nanny (an object in the sweep process) holds open closes. Their
  parent is the fork server, so its death-signal ends them too.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError, first_line

# Imported once by the fork server (each pool worker is forked from it with these loaded) and by
# each dask worker as it starts, instead of by a worker's first job (several seconds: torch, the
# trainer; ~0.6 s more: torch.optim's torch._dynamo, and xarray's netCDF writer, which imports
# h5netcdf and looks up dask's scheduler through dask.array and distributed).
PRELOAD = ("varstruct.study.job", "varstruct.training.loop", "varstruct.metrics.evaluate",
           "varstruct.measures.model", "torch._dynamo", "torch._decomp.decompositions_for_jvp", "xarray",
           "dask.array", "distributed", "h5netcdf")
#: seconds to wait for an existing dask scheduler to answer (connect and handshake)
CONNECT_TIMEOUT = 5.0
#: how often a pool worker checks that the sweep process is still alive
WATCHDOG_SECONDS = 0.5


@dataclass(frozen=True)
class Scheduler:
    """A parsed scheduler: kind "local", "dask" or "address" (then ``address`` = tcp://HOST:PORT)."""

    kind: str
    address: str | None = None

    def __str__(self) -> str:
        return self.address or self.kind


def parse_scheduler(value) -> Scheduler:
    """``local``, ``dask`` or ``tcp://HOST:PORT`` (IPv6 hosts in brackets) as a :class:`Scheduler`;
    ConfigError (one line) for anything else, e.g. a missing or out-of-range port."""
    if isinstance(value, Scheduler):
        return value
    if value in ("local", "dask"):
        return Scheduler(value)
    form = "local, dask or tcp://HOST:PORT"
    if not isinstance(value, str) or not value.startswith("tcp://"):
        raise ConfigError(f"scheduler must be {form}, got {value!r}")
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise ConfigError(f"scheduler {value!r}: not a valid address ({first_line(e)}); expected tcp://HOST:PORT") \
            from None
    if not host:
        raise ConfigError(f"scheduler {value!r}: no host; expected tcp://HOST:PORT")
    if port is None or port == 0:
        raise ConfigError(f"scheduler {value!r}: no port; expected tcp://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"scheduler {value!r}: unexpected parts after HOST:PORT; expected tcp://HOST:PORT")
    return Scheduler("address", f"tcp://{'[' + host + ']' if ':' in host else host}:{port}")


# -- in process ------------------------------------------------------------------------------------

class InProcessExecutor(Executor):
    """Runs each submitted call at once, in this process; ``submit`` returns a finished future
    (KeyboardInterrupt is not caught: it reaches the caller)."""

    def submit(self, fn, /, *args, **kwargs):
        fut = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 - delivered through the future
            fut.set_exception(e)
        return fut


# -- local process pool ----------------------------------------------------------------------------

def die_with_parent(parent_pid: int | None = None) -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``; Linux
    only: False elsewhere or when the call fails). The "parent" is the *thread* that forked this
    process: call it only in a child whose parent forked it from a thread that lives as long as
    that process. With ``parent_pid``, a parent already gone before the call (this process
    re-parented) exits this one at once."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
            return False
    except Exception:  # noqa: BLE001 - no libc prctl: the watchdogs still work
        return False
    if parent_pid is not None and os.getppid() != parent_pid:  # pragma: no cover - a race with the parent's death
        os._exit(1)
    return True


def worker_init(parent_pid: int) -> None:  # pragma: no cover - runs in the pool's workers
    """Pool worker set-up: the default Ctrl-C handler (the fork server ignores SIGINT), and
    death with the sweep process ``parent_pid``: ``PR_SET_PDEATHSIG`` (Linux) fires when the
    fork server (single-threaded, this worker's parent) dies, and a daemon thread exits the
    worker within :data:`WATCHDOG_SECONDS` once ``parent_pid`` is gone (any platform; also a
    worker of the "spawn" context, whose parent is a pool thread of the sweep)."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.getppid() != parent_pid:
        die_with_parent()  # forked by the fork server, not by some thread of the sweep ("spawn")
    threading.Thread(target=_watch, args=(parent_pid,), name="varstruct-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, owned by someone else (PID reused)
        return False
    return True


def _watch(parent_pid: int) -> None:  # pragma: no cover - runs in the pool's workers
    import time

    while _alive(parent_pid) and os.getppid() != 1:
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)


def _worker_context():
    """A "forkserver" context whose server preloads :data:`PRELOAD` (Linux, macOS); "spawn"
    where fork servers do not exist. The server is single-threaded when it forks, unlike this
    process (progress display, torch's thread pool), so forking from it is safe; it lives as
    long as this process, so later sweeps in the same process reuse it."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["varstruct.study._quiet_preload", *PRELOAD])
    return ctx


#: set in the environment of a fork server started from this process's main thread: this
#: process's PID, for :mod:`._quiet_preload` to call :func:`die_with_parent` (and removed there)
DIE_WITH_ENV = "VARSTRUCT_FORKSERVER_DIE_WITH"


def _start_forkserver() -> None:
    """Start the fork server of :func:`_worker_context` now (nothing if it runs already).

    Started from the main thread, which lives as long as this process, the server gets
    ``PR_SET_PDEATHSIG`` (:data:`DIE_WITH_ENV`): it is killed with this process, even while
    still importing :data:`PRELOAD` (seconds), and it no longer waits for every process forked
    from it to exit first. From another thread (whose end would fire the signal) it does not;
    multiprocessing's own rule then ends it: once this process and every process forked from
    it (which die with this process: :func:`worker_init`) are gone."""
    from multiprocessing import forkserver

    main = threading.current_thread() is threading.main_thread()
    if main:
        os.environ[DIE_WITH_ENV] = str(os.getpid())
    try:
        forkserver.ensure_running()
    finally:
        if main:
            os.environ.pop(DIE_WITH_ENV, None)


def local_pool(workers: int) -> Executor:
    """A process pool of ``workers`` workers that die with this process (as does the fork
    server they are forked from)."""
    from concurrent.futures import ProcessPoolExecutor

    ctx = _worker_context()
    if ctx.get_start_method() == "forkserver":
        _start_forkserver()
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init,
                               initargs=(os.getpid(),))


# -- dask ------------------------------------------------------------------------------------------

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

    import dask
    from dask.distributed import LocalCluster

    env = {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads}
    cfg = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in env.items()}
    cfg["distributed.worker.profile.enabled"] = False
    if _worker_context().get_start_method() == "forkserver":
        _start_forkserver()  # with our preload, before dask would set its own
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


@dataclass
class DaskInfo:
    """Where a dask sweep runs: the scheduler's address and its dashboard link."""

    address: str | None = None
    dashboard: str | None = None


@contextlib.contextmanager
def dask_executor(scheduler: Scheduler, workers: int, threads: int = 1):
    """(executor, :class:`DaskInfo`) for a dask scheduler: a fresh LocalCluster of ``workers``
    processes (``scheduler.kind == "dask"``) or the existing one at ``scheduler.address``
    (ConfigError, one line, when it does not answer as a dask scheduler within
    :data:`CONNECT_TIMEOUT` seconds). On exit, futures still pending are cancelled."""
    import logging

    from dask.distributed import Client

    with contextlib.ExitStack() as stack:
        if scheduler.kind == "dask":
            cluster = stack.enter_context(local_cluster(workers, threads))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(_connect(scheduler.address))
        info = DaskInfo(address=client.scheduler.address, dashboard=client.dashboard_link)
        ex = client.get_executor(pure=False)
        try:
            yield ex, info
        finally:
            with contextlib.suppress(Exception):
                logging.getLogger("distributed").setLevel(logging.CRITICAL)
                client.cancel(list(ex._futures))


def probe_scheduler(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """ConfigError (one line) unless a dask scheduler at ``address`` answers an identity request
    within ``timeout`` seconds for each of connect, request and reply (dask's own Client waits
    without bound on a listener that accepts and never answers)."""
    import asyncio

    async def ask():
        from distributed.comm import connect

        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    try:
        reply = asyncio.run(ask())
    except (asyncio.TimeoutError, TimeoutError):
        raise ConfigError(f"scheduler {address}: no answer from a dask scheduler within {timeout:g} s") from None
    except Exception as e:  # noqa: BLE001 - refused, reset, garbage instead of dask's protocol
        raise ConfigError(f"scheduler {address}: cannot reach a dask scheduler there ({first_line(e)})") from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise ConfigError(f"scheduler {address}: the listener there is not a dask scheduler")


@contextlib.contextmanager
def _connect(address: str):
    """A Client of the dask scheduler at ``address`` (probed first: :func:`probe_scheduler`)."""
    from dask.distributed import Client

    probe_scheduler(address)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise ConfigError(f"scheduler {address}: cannot reach a dask scheduler there ({first_line(e)})") from None
    try:
        yield client
    finally:
        client.close()
