"""The convergence criterion of a training run, judged from its own train_log.csv.

A run of T steps has *converged* when its reconstruction stopped improving over the last
``tail`` (25%) of its steps. The trend is the least-squares line f(t) = α + β·t through the
log rows with step in ((1 − tail)·T, T] (every row's recon, so batch noise averages out
rather than two windows' means deciding):

    R_a = f((1 − tail)·T),   R_b = f(T),   improvement = (R_a − R_b) / |R_a|
    converged  ⇔  improvement < tolerance (2%)

A run still improving by >= 2% of its level over its last quarter is *unconverged*: longer
training would change it. With fewer than 2 rows in the tail the two ends are the last row at or
before (1 − tail)·T and the last row. ``share_of_total`` reports (R_a − R_b) / (R_first − R_b),
the part of the whole reduction that the last quarter brought, for reading near a floor. The
verdict says nothing about *what* was learned (a collapsed model can have converged); the
scores' active latents say that. A log without finite recon values in its tail (a diverged run)
has no verdict (``converged`` None).

Pure numpy, torch-free: the same function judges a run while it trains, a finished run dir
(:func:`run_convergence`) and a committed zoo.
"""
from __future__ import annotations

import numpy as np

TAIL = 0.25
TOLERANCE = 0.02
CRITERION = (f"relative improvement of the reconstruction loss over the last {TAIL:.0%} of steps "
             f"(least-squares trend of the logged rows) < {TOLERANCE:.0%}")


def convergence(steps, recon, total_steps: int | None = None, tail: float = TAIL,
                tolerance: float = TOLERANCE) -> dict:
    """The verdict for one run's log.

    steps: logged steps [R] (increasing; a row's step is the steps done); recon: the mean
    reconstruction loss of each row [R]; total_steps: T (default the last logged step).
    Returns {converged: bool | None, improvement, share_of_total, recon_start (R_a), recon_end
    (R_b), at_step ((1 − tail)·T), steps (T), criterion}.
    """
    steps = np.asarray(steps, dtype=np.float64)
    recon = np.asarray(recon, dtype=np.float64)
    if steps.shape != recon.shape or steps.ndim != 1:
        raise ValueError(f"convergence: steps and recon must be 1-D of one length, got {steps.shape}, {recon.shape}")
    if not 0 < tail < 1 or tolerance < 0:
        raise ValueError(f"convergence: need 0 < tail < 1 and tolerance >= 0, got {tail}, {tolerance}")
    T = float(total_steps if total_steps is not None else (steps[-1] if len(steps) else 0))
    start = (1 - tail) * T
    out = {"converged": None, "improvement": float("nan"), "share_of_total": float("nan"),
           "recon_start": float("nan"), "recon_end": float("nan"), "at_step": int(round(start)), "steps": int(T),
           "criterion": CRITERION}
    ok = np.isfinite(recon)
    if len(steps) == 0 or T <= 0 or not ok.any():
        return out
    sel = ok & (steps > start) & (steps <= T)
    if sel.sum() >= 2 and np.ptp(steps[sel]) > 0:
        beta, alpha = np.polyfit(steps[sel], recon[sel], 1)
        ra, rb = alpha + beta * start, alpha + beta * T
    else:
        before = np.flatnonzero(ok & (steps <= start))
        last = np.flatnonzero(ok & (steps <= T))
        if not len(before) or not len(last) or before[-1] == last[-1]:
            return out
        ra, rb = recon[before[-1]], recon[last[-1]]
    out["recon_start"], out["recon_end"] = float(ra), float(rb)
    if ra == 0 or not np.isfinite(ra) or not np.isfinite(rb):
        return out
    first = recon[np.flatnonzero(ok)[0]]
    out["improvement"] = float((ra - rb) / abs(ra))
    out["share_of_total"] = float((ra - rb) / (first - rb)) if first != rb else float("nan")
    out["converged"] = bool(out["improvement"] < tolerance)
    return out


def run_length(record: dict, log) -> int | None:
    """T, the length of a run to judge: its config's ``steps``, or, for an ``until_converged`` run
    (``steps`` is then its budget), the last step in its train_log (pandas DataFrame); None if unknown."""
    if record.get("until_converged") and len(log) and "step" in log.columns:
        return int(log["step"].iloc[-1])
    return int(record.get("steps") or 0) or None


def log_convergence(log, total_steps: int | None = None) -> dict:
    """:func:`convergence` of a train_log table (a pandas DataFrame with ``step`` and ``recon``)."""
    if "recon" not in log.columns or "step" not in log.columns:
        raise ValueError("convergence: the train log has no step/recon columns")
    return convergence(log["step"].to_numpy(), log["recon"].to_numpy(), total_steps)


def run_convergence(run_dir) -> dict:
    """:func:`convergence` of a finished run dir, from its train_log.csv and config.json
    (T: :func:`run_length`)."""
    from ..runs.layout import RunDir

    rd = RunDir(run_dir)
    log = rd.read_log()
    return log_convergence(log, run_length(rd.read_config(), log))
