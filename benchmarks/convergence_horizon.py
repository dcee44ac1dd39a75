"""How many steps each dSprites run would need to meet the convergence criterion at its trend.

Issue #21 asks for dSprites-family runs that each meet the criterion of #20 (reconstruction
improved < 2% over the last quarter, ``varstruct.training.convergence``). This prints, for every
dSprites training log there is, the criterion's verdict now and ``convergence.horizon``: the
trend R(t) = a + b·t^(−k) fitted to the log's last half and, separately, to its last three
quarters (the two fits bracket how well the data pin the floor a), and the length T* at which the
criterion would hold on that trend ("never" when the fitted trend never meets it within 1000 times
the steps so far). The core-hours to T* use the run's own logged seconds per step (one thread,
a shared machine: indicative).

Logs read:
- ``benchmarks/results/dsprites_unfinished_logs.csv``: the train logs of the learning-curve runs
  and of the dSprites zoo's unfinished β = 1 and β = 4 runs, exported from their checkpoints on
  2026-12-06 (their weights are not committed);
- every ``train_log.csv`` under ``pretrained/dsprites`` and ``pretrained/longitudinal``.

    python benchmarks/convergence_horizon.py            # the table
    python benchmarks/convergence_horizon.py --csv out.csv
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package

from varstruct.training.convergence import TOLERANCE, convergence, horizon  # noqa: E402


def logs(root: Path):
    """(source, run, DataFrame with step, recon, seconds) for every log."""
    table = root / "benchmarks" / "results" / "dsprites_unfinished_logs.csv"
    if table.exists():
        df = pd.read_csv(table)
        for (src, run), g in df.groupby(["source", "run"], sort=True):
            yield src, run, g.sort_values("step")
    for group in ("dsprites", "longitudinal"):
        for f in sorted((root / "pretrained" / group).glob("**/train_log.csv")):
            yield f"pretrained/{group}", str(f.parent.relative_to(root / "pretrained" / group)), pd.read_csv(f)


def row(src: str, run: str, log: pd.DataFrame) -> dict:
    steps, recon = log["step"].to_numpy(float), log["recon"].to_numpy(float)
    t0 = steps[-1]
    now = convergence(steps, recon)
    out = {"source": src, "run": run, "steps": int(t0), "improvement_now": now["improvement"],
           "converged": now["converged"]}
    per_step = float(log["seconds"].iloc[-1]) / t0 if "seconds" in log.columns else float("nan")
    for tag, start in (("half", t0 / 2), ("3q", t0 / 4)):
        try:
            h = horizon(steps, recon, fit_from=start)
        except (ValueError, RuntimeError):  # too few rows, or a fit that does not settle
            h = {"k": float("nan"), "a": float("nan"), "rmse": float("nan"), "steps_needed": float("nan")}
        n = h["steps_needed"]
        out |= {f"k_{tag}": h["k"], f"floor_{tag}": h["a"], f"rmse_{tag}": h["rmse"], f"needed_{tag}": n,
                f"core_h_{tag}": (max(n - t0, 0) * per_step / 3600) if n is not None else float("inf")}
        # T* is a total length: at or below the steps so far, the fitted trend meets it already
        # (the log's own verdict, `now`, may still say otherwise: the fit is a smooth model of it)
    return out


def fmt_n(n) -> str:
    if isinstance(n, float) and np.isnan(n):
        return "no fit"
    return "never" if n is None else f"{int(n):,}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(ROOT), help="the checkout to read (default: this one)")
    ap.add_argument("--csv", default=None, help="also write the table here")
    a = ap.parse_args(argv)
    rows = [row(*x) for x in logs(Path(a.root))]
    if not rows:
        print("no dSprites logs found", file=sys.stderr)
        return 2
    df = pd.DataFrame(rows)
    print(f"criterion: improvement over the last quarter < {TOLERANCE:.0%}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'source':24} {'run':58} {'steps':>7} {'now':>6}  {'k½':>5} {'floor½':>7} {'T* (½ fit)':>11} {'core-h':>7}"
          f"  {'k¾':>5} {'floor¾':>7} {'T* (¾ fit)':>11}")
    for r in rows:
        ch = r["core_h_half"]
        print(f"{r['source']:24} {r['run'][:58]:58} {r['steps']:>7,} {r['improvement_now']:>6.1%}  {r['k_half']:>5.2f} "
              f"{r['floor_half']:>7.1f} {fmt_n(r['needed_half']):>11} {('-' if not np.isfinite(ch) else f'{ch:.1f}'):>7}"
              f"  {r['k_3q']:>5.2f} {r['floor_3q']:>7.1f} {fmt_n(r['needed_3q']):>11}")
    if a.csv:
        tmp = Path(a.csv).with_suffix(".tmp")
        df.to_csv(tmp, index=False)
        os.replace(tmp, a.csv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
