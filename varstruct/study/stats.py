"""The statistics of a study: correlation of one pair with its permutation p-value and bootstrap CI,
the within-unit (stratified) version, the selection test, and exact intervals of proportions.

Everything here is pure numpy/scipy on 1-D arrays; :mod:`varstruct.study.correlate` decides what
the points are (units, models) and calls these.

- :func:`pair_statistics`: r of (x, y) over n points (NaN pairs dropped), a two-sided
  permutation p-value (``scipy.stats.permutation_test``, pairings: under H0 the points'
  x are exchangeable), a paired percentile-bootstrap CI of r.
- :func:`within_statistics`: r of the deviations from the unit means,
  dx_i = x_i − mean_{u(i)} x and dy_i = y_i − mean_{u(i)} y, with a permutation of x *within*
  units (exact under H0: x and y independent within every unit, whatever the units' means and
  spreads) and a cluster bootstrap CI (whole units resampled).
- :func:`selection_test`: Mann–Whitney U of the kept vs dropped models' values.
- :func:`proportion_ci`: the exact Clopper–Pearson interval of k successes in n trials.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

MIN_POINTS = 4
_KENDALL_BATCH_ELEMENTS = 2 ** 24


def _pearson(x, y, axis=-1):
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=axis) / np.sqrt((xc * xc).sum(axis=axis) * (yc * yc).sum(axis=axis))


def _spearman(x, y, axis=-1):
    return _pearson(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis), axis=axis)


def _kendall(x, y, axis=-1):
    """τ_b = Σ_ij sgn(x_i−x_j) sgn(y_i−y_j) / √(Σ sgn(x_i−x_j)² · Σ sgn(y_i−y_j)²)."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    x, y = np.broadcast_arrays(x, y)
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=(-1, -2)) / np.sqrt((dx * dx).sum(axis=(-1, -2)) * (dy * dy).sum(axis=(-1, -2)))


STATISTICS = {"pearson": _pearson, "spearman": _spearman, "kendall": _kendall}
METHODS = tuple(STATISTICS)


def _empty(n: int, reason: str) -> dict:
    return {"r": np.nan, "p": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": n, "reason": reason}


def _degenerate(x, y, n: int, what: str = "") -> str:
    if n and np.all(x == x[0]):
        return "constant x"
    if n and np.all(y == y[0]):
        return "constant y"
    if n < MIN_POINTS:
        return f"{n} {what or 'points'} < {MIN_POINTS}"
    return ""


def pair_statistics(x, y, method: str = "spearman", n_permutations: int = 999, n_resamples: int = 999,
                    rng=None, confidence_level: float = 0.95, what: str = "") -> dict:
    """{r, p, ci_low, ci_high, n, reason} for one pair of 1-D arrays (NaN pairs dropped first).

    p: two-sided permutation p-value, (1 + #{|r*| ≥ |r|}) / (R + 1), or exact when R covers all
    n! orderings. CI: percentile bootstrap of r over the points, paired (a resample with constant
    x or y counts as r = 0). Fewer than 4 points, constant x or constant y: NaN and ``reason``
    (``what`` names the points in that reason, e.g. "units").
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(ok.sum())
    reason = _degenerate(x, y, n, what)
    if reason:
        return _empty(n, reason)
    rng = np.random.default_rng(rng)
    f = STATISTICS[method]
    batch = max(1, _KENDALL_BATCH_ELEMENTS // (n * n)) if method == "kendall" else None
    out = _empty(n, "")
    out["r"] = float(f(x, y))
    perm = stats.permutation_test((x,), lambda xs, axis=-1: f(xs, y, axis=axis), permutation_type="pairings",
                                  vectorized=True, n_resamples=n_permutations, alternative="two-sided",
                                  batch=batch, rng=rng)
    out["p"] = float(perm.pvalue)

    def boot(xs, ys, axis=-1):
        return np.nan_to_num(f(xs, ys, axis=axis), nan=0.0)

    ci = stats.bootstrap((x, y), boot, paired=True, vectorized=True, n_resamples=n_resamples,
                         confidence_level=confidence_level, method="percentile", batch=batch, rng=rng)
    out["ci_low"], out["ci_high"] = float(ci.confidence_interval.low), float(ci.confidence_interval.high)
    return out


def unit_deviations(v, groups):
    """v minus the mean of v over its group: v_i − mean_{j: g_j = g_i} v_j (float64, shape of v)."""
    v = np.asarray(v, dtype=np.float64)
    _, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=v)
    counts = np.bincount(inv)
    return v - (sums / counts)[inv]


def stratified_permutations(groups, n_resamples: int, rng) -> np.ndarray:
    """[R, n] index arrays, each a uniform random permutation *within* every group: row r maps
    position i to a position of the same group (perm[r, i] has groups[perm[r, i]] == groups[i])."""
    _, inv = np.unique(groups, return_inverse=True)
    n = len(inv)
    base = np.argsort(inv, kind="stable")  # positions sorted by group
    order = np.argsort(inv[base][None, :] * 2.0 + rng.random((n_resamples, n)), axis=1, kind="stable")
    perm = np.empty((n_resamples, n), dtype=np.int64)
    perm[:, base] = base[order]
    return perm


def within_statistics(x, y, groups, method: str = "spearman", n_permutations: int = 999, n_resamples: int = 999,
                      rng=None, confidence_level: float = 0.95) -> dict:
    """{r, p, ci_low, ci_high, n, n_units, reason}: the association of x and y *within* units.

    Points with a non-finite x or y are dropped, then units with one point left (they carry no
    within-unit information). r = ``method``(dx, dy) of the deviations from the unit means. p:
    x permuted within units (the unit means of x are unchanged, so dx is permuted within
    units), two-sided, (1 + #{|r*| ≥ |r|}) / (R + 1). CI: percentile bootstrap over whole units
    (units drawn with replacement, their deviations kept). Fewer than 4 points or 2 units, or
    dx or dy all zero: NaN and a reason.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    groups = np.asarray(groups)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, groups = x[ok], y[ok], groups[ok]
    names, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
    keep = counts[inv] >= 2
    x, y, groups = x[keep], y[keep], groups[keep]
    n, n_units = len(x), int((counts >= 2).sum())
    out = {**_empty(n, ""), "n_units": n_units}
    if n_units < 2 or n < MIN_POINTS:
        out["reason"] = f"{n_units} units with >= 2 models ({n} models)" if n_units < 2 else f"{n} models < {MIN_POINTS}"
        return out
    dx, dy = unit_deviations(x, groups), unit_deviations(y, groups)
    scale_x, scale_y = np.abs(x).max() + 1.0, np.abs(y).max() + 1.0
    if np.all(np.abs(dx) <= 1e-12 * scale_x):
        out["reason"] = "x constant within every unit"
        return out
    if np.all(np.abs(dy) <= 1e-12 * scale_y):
        out["reason"] = "y constant within every unit"
        return out
    rng = np.random.default_rng(rng)
    f = STATISTICS[method]
    r = float(f(dx, dy))
    out["r"] = r
    perm = stratified_permutations(groups, n_permutations, rng)
    null = np.concatenate([f(dx[perm[s:s + 256]], dy[None, :]) for s in range(0, n_permutations, 256)])
    null = np.nan_to_num(null, nan=0.0)
    tol = 1e-12 * max(1.0, abs(r))
    out["p"] = float((1 + np.sum(np.abs(null) >= abs(r) - tol)) / (n_permutations + 1))
    # cluster bootstrap: resample whole units
    _, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(inv.max() + 1)]
    draws = rng.integers(0, len(members), size=(n_resamples, len(members)))
    boot = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = np.concatenate([members[k] for k in draws[b]])
        with np.errstate(invalid="ignore", divide="ignore"):
            boot[b] = f(dx[idx], dy[idx])
    boot = np.nan_to_num(boot, nan=0.0)
    a = (1 - confidence_level) / 2
    out["ci_low"], out["ci_high"] = (float(v) for v in np.quantile(boot, [a, 1 - a]))
    return out


def selection_test(kept, dropped) -> float:
    """Two-sided Mann–Whitney U p-value that the finite ``kept`` and ``dropped`` values come from
    one distribution; NaN when either side has fewer than 2 finite values or all values tie."""
    kept = np.asarray(kept, dtype=np.float64)
    dropped = np.asarray(dropped, dtype=np.float64)
    kept, dropped = kept[np.isfinite(kept)], dropped[np.isfinite(dropped)]
    if len(kept) < 2 or len(dropped) < 2:
        return float("nan")
    allv = np.concatenate([kept, dropped])
    if np.all(allv == allv[0]):
        return float("nan")
    return float(stats.mannwhitneyu(kept, dropped, alternative="two-sided").pvalue)


def proportion_ci(k: int, n: int, confidence_level: float = 0.95) -> tuple[float, float, float]:
    """(k/n, low, high): the exact Clopper–Pearson interval of a proportion
    (``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``). 20/20 gives
    (1, 0.832, 1), not a degenerate [1, 1]. n = 0 gives NaNs."""
    k, n = int(k), int(n)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"proportion_ci: need 0 <= k <= n, got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence_level, method="exact")
    return k / n, float(ci.low), float(ci.high)
