"""The one thread limiter (torch-free): how many threads the numeric libraries may use.

- :func:`limit_threads`: for the length of one library call, at most ``threads`` threads in
  torch's intra-op pool and in the BLAS / OpenMP pools (threadpoolctl), both restored after;
  ``blas_only=True`` limits only the BLAS pools (a kernel whose small matrix products are
  faster on one thread). None changes nothing, so a process that set its threads once keeps them.
- :func:`set_threads`: the same limits for the rest of the process (the CLI's ``--threads``).
- The CPU count is :func:`varstruct.resources.cpu_count` (the cores this process may use).

torch is limited only if it has been imported: a call that runs torch work has imported it
before (the model it was given is a torch module), and a torch-free call (dataset measures)
does not pay for importing it.
"""
from __future__ import annotations

import contextlib
import sys


def check_threads(threads):
    """None (leave the process's setting) or an integer >= 1."""
    if threads is None:
        return None
    from .validate import check_int

    return check_int("threads", threads, 1)


@contextlib.contextmanager
def _torch_threads(n: int):
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def limit_threads(threads: int | None, blas_only: bool = False):
    """At most ``threads`` torch intra-op and BLAS / OpenMP threads inside the block (only the
    BLAS pools with ``blas_only``), restored on exit; None: no change. VarstructError for a
    count < 1 or not an integer."""
    threads = check_threads(threads)
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    if blas_only:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
        return
    with _torch_threads(threads), threadpool_limits(limits=threads):
        yield


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads (importing torch) and the BLAS / OpenMP pools to
    ``threads`` for the rest of the process; returns the count."""
    threads = check_threads(threads)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    return threads
