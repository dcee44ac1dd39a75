"""Sweep throughput: the same 8 runs (toy_blobs, β-VAE: train, evaluate, measure) on 1 worker
(in process) and on 2 workers (local process pool, dask LocalCluster), each into a fresh models dir.

    python benchmarks/bench_sweep.py [--steps 1000] [--repeats 3] [--modes local1,local2,dask2,dask2-new]

Modes: ``local1`` in this process; ``local2`` a 2-process pool (forked from the fork server,
which imports torch and the trainer once per process); ``dask2`` a 2-worker LocalCluster started
once per invocation (its start-up and close are timed and printed apart, not in the walls): what
every sweep gets on a running cluster (``--scheduler tcp://``); ``dask2-new`` ``--scheduler dask``,
a fresh LocalCluster per sweep, its start-up and close in the wall.

Reported per mode: wall time (median and min-max over repeats), speed-up over 1 worker, and the
scheduling overhead per run = (wall x workers - sum of the jobs' own seconds) / runs: the time a
worker slot is not running a job (process/cluster start-up, imports, dispatch, results). The load
average is printed: on a shared machine the numbers are only comparable within one invocation.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from varstruct.study.spec import runs_from_dict
from varstruct.study.sweep import local_cluster, sweep


def spec(steps: int) -> dict:
    return {"seeds": [0, 1], "steps": steps, "train": {"batch_size": 64, "latent_dim": 4, "lr": 1e-3},
            "datasets": [{"name": "toy_blobs", "params": {"r": [1.5, 2.0], "profile": ["none", "noflip"]}}],
            "methods": [{"name": "beta_vae", "hparams": {"beta": 4}}],
            "evaluate": {"metrics": ["mig", "sap"], "n_train": 1000, "n_test": 500},
            "measure": {"n_anchors": 50}}


MODES = {"local1": ("local", 1), "local2": ("local", 2), "dask2": ("running", 2), "dask2-new": ("dask", 2)}


def one(runs, mode: str, address: str | None) -> tuple[float, float]:
    """(wall seconds, sum of job seconds) of one sweep into a fresh dir."""
    scheduler, workers = MODES[mode]
    scheduler = address if scheduler == "running" else scheduler
    out = tempfile.mkdtemp(prefix=f"bench_sweep_{mode}_")
    try:
        t0 = time.perf_counter()
        res = sweep(runs, out, scheduler=scheduler, workers=workers, threads=1)
        wall = time.perf_counter() - t0
        if not res.ok or len(res.done) != len(runs):
            raise SystemExit(f"{mode}: sweep failed: {res.failed}")
        return wall, sum(res.job_seconds.values())
    finally:
        shutil.rmtree(out, ignore_errors=True)


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
    address, cluster = None, None
    if "dask2" in modes:
        t0 = time.perf_counter()
        cluster = local_cluster(2, threads=1)
        address = cluster.__enter__().scheduler_address
        print(f"dask2: LocalCluster start-up {time.perf_counter() - t0:.1f} s (the first in this process: "
              "includes the fork server's imports; not in dask2's walls)", flush=True)
    try:
        for r in range(a.repeats):  # interleaved, so load changes hit every mode alike
            for m in modes:
                w, s = one(runs, m, address)
                walls[m].append(w)
                jobs[m].append(s)
                print(f"  repeat {r} {m}: {w:.1f} s wall, {s:.1f} s in jobs", flush=True)
    finally:
        if cluster is not None:
            t0 = time.perf_counter()
            cluster.__exit__(None, None, None)
            print(f"dask2: LocalCluster close {time.perf_counter() - t0:.1f} s")
    base = statistics.median(walls["local1"]) if "local1" in walls else None
    print(f"\n{'mode':9} {'wall median':>12} {'min-max':>14} {'speed-up':>9} {'overhead/run':>13} {'in jobs':>9}")
    for m in modes:
        med = statistics.median(walls[m])
        workers = MODES[m][1]
        over = statistics.median([(w * workers - s) / len(runs) for w, s in zip(walls[m], jobs[m])])
        sp = f"{base / med:.2f}x" if base else "-"
        print(f"{m:9} {med:10.1f} s {min(walls[m]):6.1f}-{max(walls[m]):5.1f} s {sp:>9} {over:11.2f} s "
              f"{statistics.median(jobs[m]):7.1f} s")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
