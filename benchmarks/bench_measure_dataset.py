"""Wall time and peak memory of `varstruct measure dataset NAME` for dsprites and shapes3d
(bars at the defaults, 1000 anchors, on 2 cores: dsprites < 60 s, shapes3d < 30 s, < 2 GB).

    python benchmarks/bench_measure_dataset.py [NAME ...] [--anchors A] [--threads N] [--repeats R]

Runs the CLI in a fresh subprocess (so start-up, import and the netCDF write are included) and
reads the child's own resource usage (os.wait4): peak resident memory (ru_maxrss) and CPU time.
``--threads N`` sets OMP_NUM_THREADS for the child (torch's intra-op threads); the default
leaves the environment as it is. The 1-minute load average is printed because on a shared
machine other processes slow every wall time down; the child's CPU time (user + system) is the
figure to compare there (its work is single-threaded except torch's intra-op threads).
Reports the median and the range (min-max) over the repeats.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


BARS = {"dsprites": 60.0, "shapes3d": 30.0}  # seconds of wall time on 2 quiet cores


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("datasets", nargs="*", default=["dsprites", "shapes3d"])
    p.add_argument("--anchors", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the child")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--show-table", action="store_true")
    a = p.parse_args()
    for name in a.datasets:
        print(f"varstruct measure dataset {name} --anchors {a.anchors}  (cpus: {os.cpu_count()}, "
              f"OMP_NUM_THREADS={a.threads or os.environ.get('OMP_NUM_THREADS', 'default')})")
        runs = [run_once(name, a.anchors, a.threads) for _ in range(a.repeats)]
        for r in runs:
            print(f"  wall {r['wall_s']:7.1f} s   cpu {r['cpu_s']:7.1f} s   peak RSS {r['peak_mb']:7.0f} MB"
                  f"   load avg (1 min) at start {r['load']:.1f}")
        wall, cpu = np.array([r["wall_s"] for r in runs]), np.array([r["cpu_s"] for r in runs])
        peak = max(r["peak_mb"] for r in runs)
        bar = BARS.get(name, 60.0)
        print(f"  median wall {np.median(wall):.1f} s (range {wall.min():.1f}-{wall.max():.1f}), median cpu "
              f"{np.median(cpu):.1f} s (range {cpu.min():.1f}-{cpu.max():.1f}), max peak {peak:.0f} MB; "
              f"bar < {bar:.0f} s, < 2 GB: wall {'PASS' if np.median(wall) < bar else 'FAIL'}, "
              f"cpu {'PASS' if np.median(cpu) < bar else 'FAIL'}, memory {'PASS' if peak < 2048 else 'FAIL'}")
        if a.show_table:
            print(min(runs, key=lambda r: r["wall_s"])["table"])


if __name__ == "__main__":
    main()
