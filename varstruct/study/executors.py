"""Where sweep jobs run, each behind :class:`concurrent.futures.Executor`.

- :class:`InProcessExecutor`: one job at a time in this process (``workers = 1``);
- :func:`local_pool`: a :class:`~concurrent.futures.ProcessPoolExecutor` of workers forked from a
  fork server that has torch and the trainer imported (:data:`PRELOAD`);
- :func:`dask_executor`: ``Client.get_executor()`` of a fresh dask LocalCluster
  (:func:`local_cluster`) or of an existing scheduler at ``tcp://HOST:PORT``.

:func:`parse_scheduler` checks a scheduler string before anything is created. Workers die with
the sweep process (:func:`worker_init`: ``PR_SET_PDEATHSIG`` and a watchdog thread), so a
``kill -9`` of the sweep leaves no trainer behind.
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

def worker_init(parent_pid: int) -> None:  # pragma: no cover - runs in the pool's workers
    """Pool worker set-up: the default Ctrl-C handler (the fork server ignores SIGINT), and
    death with the sweep process ``parent_pid``: ``PR_SET_PDEATHSIG`` (Linux) fires when the
    fork server dies, and a daemon thread exits the worker within :data:`WATCHDOG_SECONDS` once
    ``parent_pid`` is gone."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
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


def local_pool(workers: int) -> Executor:
    """A process pool of ``workers`` workers that die with this process."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(), initializer=worker_init,
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
