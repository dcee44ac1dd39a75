"""The convergence criterion of a training run, judged from its own train_log.csv.

A run of T steps has *converged* when its reconstruction stopped improving over the last
``tail`` (25%) of its steps. The trend is the least-squares line f(t) = α + β·t through the
log rows with step in ((1 − tail)·T, T] (every row's recon, so batch noise averages out
rather than two windows' means deciding):

    R_a = f((1 − tail)·T),   R_b = f(T),   improvement = (R_a − R_b) / |R_a|
    converged  ⇔  improvement < tolerance (2%)

A run still improving by >= 2% of its level over its last quarter is *unconverged*: longer
training would change it. The verdict is only as sure as the trend: ``improvement_se`` is its
standard error from the rows' scatter about the line (ordinary least squares, n rows, s the
residual standard deviation with n − 2 degrees of freedom),

    SE(improvement) = s / √Σ(t_i − t̄)² · tail·T / |R_a|,

NaN with fewer than 3 tail rows. Batch-mean rows of a small model scatter by several percent, so
a short run's improvement can have an SE near the tolerance itself: a verdict with
|improvement − tolerance| < 2·SE is one the noise could have decided, and training longer is the
way to know (RESULTS.md reports how often that changed a toy run's scores). With fewer than 2 rows in the tail the two ends are the last row at or
before (1 − tail)·T and the last row. ``share_of_total`` reports (R_a − R_b) / (R_first − R_b),
the part of the whole reduction that the last quarter brought, for reading near a floor. The
verdict says nothing about *what* was learned (a collapsed model can have converged); the
scores' active latents say that. A log without finite recon values in its tail (a diverged run)
has no verdict (``converged`` None).

How far off is an unconverged run? :func:`horizon` fits the trend R(t) = a + b·t^(−k) to the
log's last half and applies the criterion to that curve at every length: a pure power law
(a = 0) improves by the same share over every last quarter (about 1 − 0.75^k), however long the
run, so it meets the criterion at some length only if that share is below the tolerance, or
if a > 0.

Pure numpy (scipy for the fit), torch-free: the same function judges a run while it trains, a
finished run dir (:func:`run_convergence`) and a committed zoo.
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
    (R_b), at_step ((1 − tail)·T), steps (T), improvement_se, criterion}.
    """
    steps = np.asarray(steps, dtype=np.float64)
    recon = np.asarray(recon, dtype=np.float64)
    if steps.shape != recon.shape or steps.ndim != 1:
        raise ValueError(f"convergence: steps and recon must be 1-D of one length, got {steps.shape}, {recon.shape}")
    if not 0 < tail < 1 or tolerance < 0:
        raise ValueError(f"convergence: need 0 < tail < 1 and tolerance >= 0, got {tail}, {tolerance}")
    T = float(total_steps if total_steps is not None else (steps[-1] if len(steps) else 0))
    start = (1 - tail) * T
    out = {"converged": None, "improvement": float("nan"), "improvement_se": float("nan"), "share_of_total": float("nan"),
           "recon_start": float("nan"), "recon_end": float("nan"), "at_step": int(round(start)), "steps": int(T),
           "criterion": CRITERION}
    ok = np.isfinite(recon)
    if len(steps) == 0 or T <= 0 or not ok.any():
        return out
    sel = ok & (steps > start) & (steps <= T)
    if sel.sum() >= 2 and np.ptp(steps[sel]) > 0:
        beta, alpha = np.polyfit(steps[sel], recon[sel], 1)
        ra, rb = alpha + beta * start, alpha + beta * T
        n = int(sel.sum())
        if n >= 3 and ra != 0:
            resid = recon[sel] - (alpha + beta * steps[sel])
            sxx = np.sum((steps[sel] - steps[sel].mean()) ** 2)
            out["improvement_se"] = float(np.sqrt(np.sum(resid ** 2) / (n - 2) / sxx) * (T - start) / abs(ra))
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


def _tail_shape(k: float, tail: float, n: int = 2001) -> tuple[float, float]:
    """(E, F): the ends, at s = 1 − tail and s = 1, of the least-squares line through s^(−k) on n
    evenly spaced s in (1 − tail, 1] (the criterion's trend applied to a unit power law)."""
    s = np.linspace(1 - tail, 1, n + 1)[1:]
    slope, icpt = np.polyfit(s, s ** (-k), 1)
    return icpt + slope * (1 - tail), icpt + slope


def horizon(steps, recon, fit_from: float | None = None, tail: float = TAIL,
            tolerance: float = TOLERANCE, within: float = 1000.0) -> dict:
    """The length at which a run would meet the criterion if it kept its fitted trend.

    steps, recon: the log [R] as for :func:`convergence`; fit_from: the first step of the fit
    (default half the last logged step T0: the trend now, not the early drop). Fits, by bounded
    least squares on the finite rows with step >= fit_from (time in units of T0),

        R(t) = a + b·(t/T0)^(−k),   a >= 0, b >= 0, 0 < k <= 5,

    and applies the criterion to R at length T: its trend through the last quarter has ends
    a + x·E and a + x·F with x = b·(T/T0)^(−k) and (E, F) the trend's ends for s^(−k), s in
    (1 − tail, 1], so

        improvement(T) = x·(E − F) / (a + x·E),   limit = (E − F) / E  (x → ∞, a pure power law),

    which falls as T grows. The criterion holds from x* = tolerance·a / (E − F − tolerance·E), i.e.
    T* = T0·(b / x*)^(1/k); if limit < tolerance it holds at every length (T* = 0), and if
    a = 0 < b and limit >= tolerance at none. T* beyond ``within``·T0 is reported as None: a
    fitted floor a near 0 puts T* anywhere past that, so "not within 1000 times the steps so far"
    is what the fit can say.

    Returns {a, b, k, fit_from, rmse (of the fit, recon units), limit, improvement (of the
    fitted curve at T0), steps_needed (int, or None: never or not within ``within``·T0)}. Raises ValueError with fewer than 4 finite
    rows to fit. The trend is a model: a learning stage still to come (a plateau, then a drop)
    is not in it.
    """
    from scipy.optimize import curve_fit

    steps = np.asarray(steps, dtype=np.float64)
    recon = np.asarray(recon, dtype=np.float64)
    if steps.shape != recon.shape or steps.ndim != 1:
        raise ValueError(f"horizon: steps and recon must be 1-D of one length, got {steps.shape}, {recon.shape}")
    ok = np.isfinite(recon) & np.isfinite(steps) & (steps > 0)
    if not ok.any():
        raise ValueError("horizon: the log has no finite rows")
    t0 = float(steps[ok][-1])
    start = t0 / 2 if fit_from is None else float(fit_from)
    sel = ok & (steps >= start)
    if sel.sum() < 4:
        raise ValueError(f"horizon: need at least 4 finite rows from step {start:g} on to fit a trend, got {int(sel.sum())}")
    t, r = steps[sel] / t0, recon[sel]

    def model(t, a, b, k):
        return a + b * t ** (-k)

    lo = max(float(r.min()), 0.0)
    p0 = (0.5 * lo, max(float(r.max()) - 0.5 * lo, 1e-9), 0.5)
    (a, b, k), _ = curve_fit(model, t, r, p0=p0, bounds=([0, 0, 1e-6], [np.inf, np.inf, 5]), maxfev=20000)
    e, f = _tail_shape(k, tail)
    limit = (e - f) / e
    x0 = b  # x at T = T0
    out = {"a": float(a), "b": float(b), "k": float(k), "fit_from": start,
           "rmse": float(np.sqrt(np.mean((model(t, a, b, k) - r) ** 2))), "limit": float(limit),
           "improvement": float(x0 * (e - f) / (a + x0 * e)) if a + x0 * e > 0 else float("nan"),
           "steps_needed": None}
    if limit < tolerance or b == 0:
        out["steps_needed"] = 0
    elif a > 0 and b > 0:
        x_star = tolerance * a / (e - f - tolerance * e)
        ratio = (b / x_star) ** (1 / k)
        if ratio <= within:
            out["steps_needed"] = int(np.ceil(t0 * ratio))
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
