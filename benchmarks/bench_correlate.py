"""How long `varstruct correlate` takes on the pretrained zoo: all default pairs, default
permutations and resamples (999 each), from the models dir (collect included, dataset measures
from the committed cache) and from a collected study.nc.

    python benchmarks/bench_correlate.py [--repeats 3] [--models pretrained]

Prints each repeat's wall time, the median and range, and the 1-minute load average before and
after (the machine is shared: read the figures with the load).
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


def run(*args) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "varstruct", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"varstruct {' '.join(map(str, args))} failed: {r.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default="pretrained")
    a = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        nc = Path(tmp) / "study.nc"
        run("collect", a.models, "-o", nc)
        rows = {"from the models dir (collect + correlate)": [], "from study.nc": []}
        for i in range(a.repeats):
            rows["from the models dir (collect + correlate)"].append(run("correlate", a.models, "-o", Path(tmp) / f"d{i}"))
            rows["from study.nc"].append(run("correlate", nc, "-o", Path(tmp) / f"n{i}"))
    print(f"correlate on {a.models}, default pairs, 999 permutations and resamples, {a.repeats} repeats, "
          f"{os.cpu_count()} CPUs; load {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    for name, ts in rows.items():
        ts = sorted(ts)
        print(f"  {name}: median {ts[len(ts) // 2]:.1f} s (range {ts[0]:.1f}-{ts[-1]:.1f}); runs: "
              + ", ".join(f"{t:.1f}" for t in ts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
