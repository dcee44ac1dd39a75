"""The convergence criterion of a training run, judged from its own train_log.csv.

A run of T steps has *converged* when its reconstruction stopped improving over the last
``tail`` (25%) of its steps:

    R_a = mean recon of the log rows with step in ((1 − tail)·T − w, (1 − tail)·T]
    R_b = mean recon of the log rows with step in (T − w, T]
    improvement = (R_a − R_b) / |R_a|,   converged  ⇔  improvement < tolerance (2%)

with the window w = ``window``·T (5% of the steps; at least one log row each), so that batch
noise averages out. A run still improving by ≥ 2% over its last quarter is *unconverged*:
longer training would change it. The verdict says nothing about *what* was learned (a
collapsed model can have converged); ``active_latents`` in the scores says that. A log whose
windows hold no finite recon value (a diverged run) has no verdict (``converged`` None).

Pure numpy, torch-free: the same function judges a run while it trains, a finished run dir
(:func:`run_convergence`) and a committed zoo.
"""
from __future__ import annotations

import numpy as np

TAIL = 0.25
WINDOW = 0.05
TOLERANCE = 0.02
CRITERION = (f"relative improvement of the mean reconstruction loss over the last {TAIL:.0%} of steps "
             f"(windows of {WINDOW:.0%} of the steps) < {TOLERANCE:.0%}")


def _window_mean(steps, recon, end: float, width: float) -> tuple[float, int]:
    sel = (steps > end - width) & (steps <= end)
    if not sel.any():  # a window narrower than the log interval: the last row at or before `end`
        before = np.flatnonzero(steps <= end)
        sel = np.zeros_like(steps, dtype=bool)
        if len(before):
            sel[before[-1]] = True
    vals = recon[sel]
    vals = vals[np.isfinite(vals)]
    return (float(vals.mean()) if len(vals) else float("nan")), int(len(vals))


def convergence(steps, recon, total_steps: int | None = None, tail: float = TAIL, window: float = WINDOW,
                tolerance: float = TOLERANCE) -> dict:
    """The verdict for one run's log.

    steps: logged steps [R] (increasing, 1-based: a row's step is the steps done); recon: the
    mean reconstruction loss of each row [R]; total_steps: T (default the last logged step).
    Returns {converged: bool | None, improvement, recon_start (R_a), recon_end (R_b), at_step
    ((1 − tail)·T), steps (T), criterion}.
    """
    steps = np.asarray(steps, dtype=np.float64)
    recon = np.asarray(recon, dtype=np.float64)
    if steps.shape != recon.shape or steps.ndim != 1:
        raise ValueError(f"convergence: steps and recon must be 1-D of one length, got {steps.shape}, {recon.shape}")
    if not 0 < tail < 1 or not 0 < window <= tail or tolerance < 0:
        raise ValueError(f"convergence: need 0 < window <= tail < 1 and tolerance >= 0, got {window}, {tail}, {tolerance}")
    T = float(total_steps if total_steps is not None else (steps[-1] if len(steps) else 0))
    out = {"converged": None, "improvement": float("nan"), "recon_start": float("nan"), "recon_end": float("nan"),
           "at_step": int(round((1 - tail) * T)), "steps": int(T), "criterion": CRITERION}
    if len(steps) == 0 or T <= 0:
        return out
    w = window * T
    ra, na = _window_mean(steps, recon, (1 - tail) * T, w)
    rb, nb = _window_mean(steps, recon, T, w)
    out["recon_start"], out["recon_end"] = ra, rb
    if na == 0 or nb == 0 or not np.isfinite(ra) or not np.isfinite(rb) or ra == 0:
        return out
    imp = (ra - rb) / abs(ra)
    out["improvement"] = float(imp)
    out["converged"] = bool(imp < tolerance)
    return out


def log_convergence(log, total_steps: int | None = None) -> dict:
    """:func:`convergence` of a train_log table (a pandas DataFrame with ``step`` and ``recon``)."""
    if "recon" not in log.columns or "step" not in log.columns:
        raise ValueError("convergence: the train log has no step/recon columns")
    return convergence(log["step"].to_numpy(), log["recon"].to_numpy(), total_steps)


def run_convergence(run_dir) -> dict:
    """:func:`convergence` of a finished run dir, from its train_log.csv and config.json's steps."""
    from ..rundir import RunDir

    rd = RunDir(run_dir)
    cfg = rd.read_config()
    return log_convergence(rd.read_log(), int(cfg.get("steps", 0)) or None)
