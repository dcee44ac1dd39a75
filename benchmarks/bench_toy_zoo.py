"""How long the toy zoo takes to train: per group, from the run dirs themselves.

For every group (first folder) of a models dir, from each finished run's own files:
- trained steps (``train_log.csv``'s last step: an until_converged run's stopping step);
- training seconds (``train_log.csv``'s ``seconds`` column: the optimisation loop only);
- the sweep's rate: the gap between the ``time`` stamps in consecutive runs' ``status.json``
  (runs sorted by that time; a gap longer than ``--max-gap`` seconds is a pause between sweeps
  and is left out). For a sweep with one worker this is the wall per run including scoring and
  measuring; with W workers it is about that wall / W.

Prints per group: runs, median and range of trained steps, total and median training seconds,
the median gap, the group's wall-clock at that rate (runs × median gap) and the spread of the
gaps (quartiles), with the machine's matmul peak measured in the same run (fp32 GFLOP/s on one
thread) so the figures can be compared across machines. How many workers and streams ran is
not in the run dirs: state it with the figures.

    python benchmarks/bench_toy_zoo.py pretrained --groups toy_context toy_h1 mask toy_baselines
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path


def _peak_gflops(n: int = 1024, repeats: int = 5) -> float:
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def runs_of(group: Path) -> list[dict]:
    out = []
    for status in group.rglob("status.json"):
        d = status.parent
        log = d / "train_log.csv"
        st = json.loads(status.read_text())
        if st.get("state") != "done" or not log.is_file():
            continue
        with open(log) as f:
            rows = list(csv.DictReader(f))
        last = rows[-1] if rows else {}
        out.append({"run": str(d.relative_to(group)), "steps": int(float(last.get("step", 0) or 0)),
                    "train_s": float(last.get("seconds", 0) or 0),
                    "time": datetime.fromisoformat(st["time"].replace("Z", "+00:00")).timestamp()})
    return sorted(out, key=lambda r: r["time"])


def summarise(runs: list[dict], max_gap: float) -> dict:
    gaps = [b["time"] - a["time"] for a, b in zip(runs, runs[1:])]
    walls = [g for g in gaps if 0 < g <= max_gap]
    steps = [r["steps"] for r in runs]
    train = [r["train_s"] for r in runs]
    wall_med = statistics.median(walls) if walls else float("nan")
    q = statistics.quantiles(walls, n=4) if len(walls) >= 2 else [wall_med] * 3
    return {"runs": len(runs), "steps_median": statistics.median(steps) if steps else None,
            "steps_range": [min(steps), max(steps)] if steps else None,
            "train_s_total": round(sum(train), 1), "train_s_median": round(statistics.median(train), 1) if train else None,
            "gap_s_median": round(wall_med, 1), "gap_s_quartiles": [round(q[0], 1), round(q[2], 1)],
            "gaps_used": len(walls), "group_wall_min": round(wall_med * len(runs) / 60, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", type=Path)
    p.add_argument("--groups", nargs="*", help="groups to report (default: every folder)")
    p.add_argument("--max-gap", type=float, default=900.0, help="longest status-time gap counted as one run (s)")
    a = p.parse_args(argv)
    if not a.models.is_dir():
        print(f"error: {a.models} is not a folder", file=sys.stderr)
        return 2
    groups = a.groups or sorted(g.name for g in a.models.iterdir() if g.is_dir() and not g.name.startswith("_"))
    print(f"peak fp32 matmul, 1 thread: {_peak_gflops():.1f} GFLOP/s")
    for g in groups:
        runs = runs_of(a.models / g)
        if not runs:
            print(f"{g}: no finished runs")
            continue
        print(f"{g}: " + json.dumps(summarise(runs, a.max_gap)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
