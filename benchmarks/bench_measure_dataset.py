"""Wall time and peak memory of `varstruct measure dataset NAME` (bar: dsprites, default
1000 anchors, < 60 s and < 2 GB on 2 cores).

    python benchmarks/bench_measure_dataset.py [NAME] [--anchors A] [--threads N] [--repeats R]

Runs the CLI in a fresh subprocess (so start-up, import and the netCDF write are included) and
reads the child's own resource usage (os.wait4): peak resident memory (ru_maxrss) and CPU time.
``--threads N`` sets OMP_NUM_THREADS for the child (torch's intra-op threads); the default
leaves the environment as it is. The 1-minute load average is printed because on a shared
machine other processes slow every figure down.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(name: str, anchors: int, threads: int | None) -> dict:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}_measures.nc"
        cmd = [sys.executable, "-m", "varstruct", "measure", "dataset", name, "--anchors", str(anchors),
               "--out", str(out)] + (["--threads", str(threads)] if threads else [])
        load = os.getloadavg()[0]
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not out.is_file():
            sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stdout.decode()}")
        return {"wall_s": wall, "peak_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime,
                "load": load, "table": stdout.decode()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", nargs="?", default="dsprites")
    p.add_argument("--anchors", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the child")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--show-table", action="store_true")
    a = p.parse_args()
    print(f"varstruct measure dataset {a.dataset} --anchors {a.anchors}  (cpus: {os.cpu_count()}, "
          f"OMP_NUM_THREADS={a.threads or os.environ.get('OMP_NUM_THREADS', 'default')})")
    runs = [run_once(a.dataset, a.anchors, a.threads) for _ in range(a.repeats)]
    for r in runs:
        print(f"  wall {r['wall_s']:7.1f} s   cpu {r['cpu_s']:7.1f} s   peak RSS {r['peak_mb']:7.0f} MB"
              f"   load avg (1 min) at start {r['load']:.1f}")
    best = min(runs, key=lambda r: r["wall_s"])
    ok = best["wall_s"] < 60 and max(r["peak_mb"] for r in runs) < 2048
    print(f"best wall {best['wall_s']:.1f} s, max peak {max(r['peak_mb'] for r in runs):.0f} MB "
          f"-> bar (< 60 s, < 2 GB): {'PASS' if ok else 'FAIL'}")
    if a.show_table:
        print(best["table"])


if __name__ == "__main__":
    main()
