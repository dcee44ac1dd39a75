"""Sweep throughput: the same 8 short runs (toy_blobs, β-VAE: train, evaluate, measure) on 1 worker
(in process) and on 2 workers (local process pool, dask LocalCluster), each into a fresh models dir.

    python benchmarks/bench_sweep.py [--steps 200] [--repeats 3] [--modes local1,local2,dask2]

Reported per mode: wall time (median and min-max over repeats), speed-up over 1 worker, and the
scheduling overhead per run = (wall x workers - sum of the jobs' own seconds) / runs: the time a
worker slot is not running a job (process/cluster start-up, imports, dispatch). The load average
is printed: on a shared machine the numbers are only comparable within one invocation.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from varstruct.study.spec import runs_from_dict
from varstruct.study.sweep import sweep


def spec(steps: int) -> dict:
    return {"seeds": [0, 1], "steps": steps, "train": {"batch_size": 64, "latent_dim": 4, "lr": 1e-3},
            "datasets": [{"name": "toy_blobs", "params": {"r": [1.5, 2.0], "profile": ["none", "noflip"]}}],
            "methods": [{"name": "beta_vae", "hparams": {"beta": 4}}],
            "evaluate": {"metrics": ["mig", "sap"], "n_train": 1000, "n_test": 500},
            "measure": {"n_anchors": 50}}


MODES = {"local1": ("local", 1), "local2": ("local", 2), "dask2": ("dask", 2)}


def one(runs, mode: str) -> tuple[float, float]:
    """(wall seconds, sum of job seconds) of one sweep into a fresh dir."""
    scheduler, workers = MODES[mode]
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
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="local1,local2,dask2")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    runs = runs_from_dict(spec(a.steps))
    print(f"{len(runs)} runs of {a.steps} steps; cores {len(os.sched_getaffinity(0))}; "
          f"load average before {os.getloadavg()}")
    walls = {m: [] for m in modes}
    jobs = {m: [] for m in modes}
    for r in range(a.repeats):  # interleaved, so load changes hit every mode alike
        for m in modes:
            w, s = one(runs, m)
            walls[m].append(w)
            jobs[m].append(s)
            print(f"  repeat {r} {m}: {w:.1f} s wall, {s:.1f} s in jobs", flush=True)
    base = statistics.median(walls["local1"]) if "local1" in walls else None
    print(f"\n{'mode':8} {'wall median':>12} {'min-max':>14} {'speed-up':>9} {'overhead/run':>13}")
    for m in modes:
        med = statistics.median(walls[m])
        workers = MODES[m][1]
        over = statistics.median([(w * workers - s) / len(runs) for w, s in zip(walls[m], jobs[m])])
        sp = f"{base / med:.2f}x" if base else "-"
        print(f"{m:8} {med:10.1f} s {min(walls[m]):6.1f}-{max(walls[m]):5.1f} s {sp:>9} {over:11.2f} s")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
