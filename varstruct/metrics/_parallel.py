"""Thread pools for the independent fits inside a metric (scikit-learn's solvers and numpy
release the GIL in their heavy loops, so threads use several cores without copying data)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..resources import cpu_count
from ..validate import check_int


def n_workers(n_jobs: int | None, n_tasks: int) -> int:
    """None or -1: every core this process may use (:func:`varstruct.resources.cpu_count`); otherwise n_jobs (>= 1); never more than the number of tasks."""
    if n_jobs is None or (not isinstance(n_jobs, bool) and n_jobs == -1):
        n = cpu_count()
    else:
        n = check_int("n_jobs (>= 1, -1 or None)", n_jobs, lo=1)
    return max(1, min(n, n_tasks))


def thread_map(fn, items, n_jobs: int | None = None) -> list:
    """[fn(x) for x in items], run on a pool of threads; results keep the order of items."""
    items = list(items)
    workers = n_workers(n_jobs, len(items))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))
