"""Sweep throughput: the same 8 runs (toy_blobs, β-VAE: train, evaluate, measure) on 1 worker
(in process) and on 2 workers (local process pool, dask LocalCluster), each into a fresh models dir.

    python benchmarks/bench_sweep.py [--steps 1000] [--repeats 3] [--modes local1,local2,dask2,dask2-new]

Modes: ``local1`` in this process; ``local2`` a 2-process pool (forked from the fork server,
which imports torch and the trainer once per process); ``dask2`` a sweep on a running 2-worker
LocalCluster (``--scheduler tcp://``): the cluster is started before the sweep and closed after
it, both timed and printed apart, not in the wall; ``dask2-new`` ``--scheduler dask``: the sweep
starts and closes its own LocalCluster, in the wall.

Reported per mode: wall time (median and min-max over repeats), speed-up over 1 worker, and the
scheduling overhead per run = (wall x workers - sum of the jobs' own seconds) / runs: the time a
worker slot is not running a job (process/cluster start-up, imports, dispatch, results). The load
average is printed: on a shared machine the numbers are only comparable within one invocation.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from varstruct.study.spec import runs_from_dict
from varstruct.study.sweep import local_cluster, sweep


def spec(steps: int) -> dict:
    return {"seeds": [0, 1], "steps": steps, "train": {"batch_size": 64, "latent_dim": 4, "lr": 1e-3},
            "datasets": [{"name": "toy_blobs", "params": {"r": [1.5, 2.0], "profile": ["none", "noflip"]}}],
            "methods": [{"name": "beta_vae", "hparams": {"beta": 4}}],
            "evaluate": {"metrics": ["mig", "sap"], "n_train": 1000, "n_test": 500},
            "measure": {"n_anchors": 50}}


MODES = {"local1": ("local", 1), "local2": ("local", 2), "dask2": ("running", 2), "dask2-new": ("dask", 2)}


def one(runs, mode: str) -> tuple[float, float, tuple]:
    """(wall seconds, sum of job seconds, (cluster start-up, close) seconds for dask2) of one
    sweep into a fresh dir."""
    scheduler, workers = MODES[mode]
    out = tempfile.mkdtemp(prefix=f"bench_sweep_{mode}_")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, out, ignore_errors=True)
        lifecycle = ()
        if scheduler == "running":  # started and closed around the sweep, timed apart
            t0 = time.perf_counter()
            cm = local_cluster(workers, threads=1)
            scheduler = cm.__enter__().scheduler_address
            lifecycle = [time.perf_counter() - t0, 0.0]

            def close(cm=cm, lifecycle=lifecycle):
                t = time.perf_counter()
                cm.__exit__(None, None, None)
                lifecycle[1] = time.perf_counter() - t
            stack.callback(close)
        t0 = time.perf_counter()
        res = sweep(runs, out, scheduler=scheduler, workers=workers, threads=1)
        wall = time.perf_counter() - t0
        if not res.ok or len(res.done) != len(runs):
            raise SystemExit(f"{mode}: sweep failed: {res.failed}")
    return wall, sum(res.job_seconds.values()), tuple(lifecycle)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="local1,local2,dask2,dask2-new")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"--modes: unknown {unknown}; choose from {list(MODES)}")
    runs = runs_from_dict(spec(a.steps))
    print(f"{len(runs)} runs of {a.steps} steps; cores {len(os.sched_getaffinity(0))}; "
          f"load average before {os.getloadavg()}")
    walls = {m: [] for m in modes}
    jobs = {m: [] for m in modes}
    cluster = []
    for r in range(a.repeats):  # interleaved, so load changes hit every mode alike
        for m in modes:
            w, s, lc = one(runs, m)
            walls[m].append(w)
            jobs[m].append(s)
            extra = f" (cluster start-up {lc[0]:.1f} s, close {lc[1]:.1f} s: not in the wall)" if lc else ""
            cluster += [lc] if lc else []
            print(f"  repeat {r} {m}: {w:.1f} s wall, {s:.1f} s in jobs{extra}", flush=True)
    base = statistics.median(walls["local1"]) if "local1" in walls else None
    print(f"\n{'mode':9} {'wall median':>12} {'min-max':>14} {'speed-up':>9} {'overhead/run':>13} {'in jobs':>9}")
    for m in modes:
        med = statistics.median(walls[m])
        workers = MODES[m][1]
        over = statistics.median([(w * workers - s) / len(runs) for w, s in zip(walls[m], jobs[m])])
        sp = f"{base / med:.2f}x" if base else "-"
        print(f"{m:9} {med:10.1f} s {min(walls[m]):6.1f}-{max(walls[m]):5.1f} s {sp:>9} {over:11.2f} s "
              f"{statistics.median(jobs[m]):7.1f} s")
    if cluster:
        up, down = zip(*cluster)
        print(f"dask2 LocalCluster start-up median {statistics.median(up):.1f} s ({min(up):.1f}-{max(up):.1f}), "
              f"close median {statistics.median(down):.1f} s: what a `--scheduler dask` sweep adds (dask2-new)")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
