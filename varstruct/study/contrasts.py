"""The tests of the controlled experiments (the hypotheses' statistics), on per-model scores.

The unit here is the model: every model of a cell is trained independently (its own seed) on the
same dataset configuration, and the hypotheses compare cells, so seeds are the replicates.

- :func:`trend_test`: the Cochran–Armitage test for a linear trend in proportions k_i / n_i
  over ordered groups with scores t_i (H1: failure rate vs the variance ratio r)::

      p̄ = Σk / Σn,  T = Σ t_i (k_i − n_i p̄),
      Var T = p̄ (1 − p̄) [Σ n_i t_i² − (Σ n_i t_i)² / N],  z = T / √Var T,

  two-sided p from the standard normal. Its z² is N/(N − 1) times the linear-by-linear M² of
  Agresti (2002, §3.4.6). No variation (p̄ ∈ {0, 1}, or one score) gives z = p = NaN.
- :func:`contrast`: the difference of two cells' means (H2: none vs noflip vs flip), a two-sided
  permutation p (``scipy.stats.permutation_test``, exact when the relabellings number at most
  ``n_resamples``) and a percentile bootstrap CI (each cell resampled on its own).
- :func:`interaction`: a difference of differences (H3: method × profile, "does the drop from
  the control to the treatment differ between two methods?"),
  d = (mean a_ctrl − mean a_treat) − (mean b_ctrl − mean b_treat), with a percentile bootstrap
  CI (the four cells resampled independently) and the bootstrap's two-sided p,
  2·min(P*(d* ≤ 0), P*(d* ≥ 0)) (an interval that excludes 0 at level 1 − α ⇔ p < α, up to
  resampling error).

- :func:`paired`: the mean of paired differences a_i − b_i (the same model measured twice, e.g.
  at its stopping point and trained longer), a two-sided sign-flip permutation p (exact: all 2^n
  sign patterns up to ``n_resamples``) and a percentile bootstrap CI over the pairs.
- :func:`mcnemar`: the exact McNemar test of a change in a binary outcome on the same units
  (b units switch 0 → 1, c switch 1 → 0): two-sided binomial p of min(b, c) in b + c trials
  at ½, p = min(1, 2·P[Bin(b + c, ½) <= min(b, c)]); 1 when nothing switches.
- :func:`equivalence`: a paired two one-sided tests (TOST; Schuirmann 1987) that the mean
  change d̄ of a_i − b_i lies within ±margin ("the score has settled": the same models trained
  on change by less than the margin). With s the differences' standard deviation and
  se = s/√n, t_lo = (d̄ + margin)/se and t_hi = (d̄ − margin)/se on n − 1 degrees of freedom,
  p = max(P[T ≥ t_lo], P[T ≤ t_hi]); equivalent at level α ⇔ p < α ⇔ the (1 − 2α) t interval
  of d̄ lies inside (−margin, margin) (``scipy.stats.ttest_1samp``, one-sided against ∓margin).
  Differences without spread (s = 0) give p = 0 when |d̄| < margin and 1 otherwise.

- :func:`holm`: Holm–Bonferroni adjusted p-values for a family of m tests (step-down): with the
  p sorted ascending, p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)); rejecting p̃ < α keeps the
  family-wise error at α. :func:`with_holm` adds them (``p_holm``) to every test of a nested
  dict of results (a figure's family).

Every random choice takes ``seed``; NaN values are dropped; a cell with fewer than 2 values gives NaNs.
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def _clean(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def trend_test(k, n, scores) -> dict:
    """Cochran–Armitage trend test. k, n, scores: [G] successes, trials and group scores.
    Returns {z, p, slope (the least-squares slope of k_i/n_i on t_i, weighted by n_i), n}."""
    k, n, t = (np.asarray(a, dtype=np.float64) for a in (k, n, scores))
    if not (k.shape == n.shape == t.shape) or k.ndim != 1:
        raise ValueError("trend_test: k, n and scores must be 1-D of one length")
    if np.any(n < 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError("trend_test: need 0 <= k <= n")
    N = n.sum()
    out = {"z": float("nan"), "p": float("nan"), "slope": float("nan"), "n": int(N)}
    if N == 0:
        return out
    pbar = k.sum() / N
    sxx = np.sum(n * t * t) - np.sum(n * t) ** 2 / N
    if sxx > 0:
        out["slope"] = float(np.sum(t * (k - n * pbar)) / sxx)
    var = pbar * (1 - pbar) * sxx
    if var <= 0:
        return out
    z = np.sum(t * (k - n * pbar)) / np.sqrt(var)
    out["z"], out["p"] = float(z), float(2 * stats.norm.sf(abs(z)))
    return out


def contrast(a, b, n_resamples: int = 9999, confidence_level: float = 0.95, seed: int = 0) -> dict:
    """mean(a) − mean(b) with a two-sided permutation p and a percentile bootstrap CI.
    Returns {diff, p, ci_low, ci_high, n_a, n_b}."""
    a, b = _clean(a), _clean(b)
    out = {"diff": float("nan"), "p": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
           "n_a": len(a), "n_b": len(b)}
    if len(a) < 2 or len(b) < 2:
        return out
    out["diff"] = float(a.mean() - b.mean())
    rng = np.random.default_rng(seed)
    res = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                 permutation_type="independent", vectorized=True, n_resamples=n_resamples,
                                 alternative="two-sided", random_state=rng)
    out["p"] = float(res.pvalue)
    boot = _boot_means(a, n_resamples, rng) - _boot_means(b, n_resamples, rng)
    out["ci_low"], out["ci_high"] = _percentiles(boot, confidence_level)
    return out


def interaction(a_ctrl, a_treat, b_ctrl, b_treat, n_resamples: int = 9999, confidence_level: float = 0.95,
                seed: int = 0) -> dict:
    """The difference of two drops, (mean a_ctrl − mean a_treat) − (mean b_ctrl − mean b_treat),
    with a percentile bootstrap CI and p. Returns {diff, drop_a, drop_b, p, ci_low, ci_high, n}."""
    cells = [_clean(c) for c in (a_ctrl, a_treat, b_ctrl, b_treat)]
    out = {"diff": float("nan"), "drop_a": float("nan"), "drop_b": float("nan"), "p": float("nan"),
           "ci_low": float("nan"), "ci_high": float("nan"), "n": [len(c) for c in cells]}
    if min(len(c) for c in cells) < 2:
        return out
    m = [c.mean() for c in cells]
    out["drop_a"], out["drop_b"] = float(m[0] - m[1]), float(m[2] - m[3])
    out["diff"] = out["drop_a"] - out["drop_b"]
    rng = np.random.default_rng(seed)
    bm = [_boot_means(c, n_resamples, rng) for c in cells]
    boot = (bm[0] - bm[1]) - (bm[2] - bm[3])
    out["ci_low"], out["ci_high"] = _percentiles(boot, confidence_level)
    out["p"] = float(min(1.0, 2 * min(np.mean(boot <= 0), np.mean(boot >= 0))))
    return out


def paired(a, b, n_resamples: int = 9999, confidence_level: float = 0.95, seed: int = 0) -> dict:
    """mean(a − b) over pairs (a_i, b_i) [n], with a two-sided sign-flip permutation p and a
    percentile bootstrap CI (the pairs resampled). Pairs with a NaN are dropped. Returns {diff, p,
    ci_low, ci_high, n}; fewer than 2 pairs give NaNs. All differences 0 gives p = 1."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired: a and b must have one length, got {a.shape} and {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    out = {"diff": float("nan"), "p": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": len(d)}
    if len(d) < 2:
        return out
    out["diff"] = float(d.mean())
    rng = np.random.default_rng(seed)
    if np.all(d == 0):
        out["p"] = 1.0
    else:
        res = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples",
                                     vectorized=True, n_resamples=n_resamples, alternative="two-sided",
                                     random_state=rng)
        out["p"] = float(res.pvalue)
    out["ci_low"], out["ci_high"] = _percentiles(_boot_means(d, n_resamples, rng), confidence_level)
    return out


def equivalence(a, b, margin: float, alpha: float = 0.05) -> dict:
    """Paired TOST of |mean(a − b)| < margin over pairs (a_i, b_i) [n] (NaN pairs dropped).
    Returns {diff, p, ci_low, ci_high (the 1 − 2α t interval of the mean change), margin,
    equivalent (p < α), n}; fewer than 2 pairs give NaNs and equivalent None."""
    if not margin > 0 or not 0 < alpha < 0.5:
        raise ValueError(f"equivalence: need margin > 0 and 0 < alpha < 0.5, got {margin}, {alpha}")
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"equivalence: a and b must have one length, got {a.shape} and {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = len(d)
    out = {"diff": float("nan"), "p": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
           "margin": float(margin), "equivalent": None, "n": n}
    if n < 2:
        return out
    mean = out["diff"] = float(d.mean())
    if np.all(d == d[0]):  # no spread: the t statistics are undefined
        out["p"], out["ci_low"], out["ci_high"] = (0.0 if abs(mean) < margin else 1.0), mean, mean
    else:
        out["p"] = float(max(stats.ttest_1samp(d, -margin, alternative="greater").pvalue,
                             stats.ttest_1samp(d, margin, alternative="less").pvalue))
        ci = stats.ttest_1samp(d, 0.0).confidence_interval(confidence_level=1 - 2 * alpha)
        out["ci_low"], out["ci_high"] = float(ci.low), float(ci.high)
    out["equivalent"] = bool(out["p"] < alpha)
    return out


def mcnemar(before, after) -> dict:
    """Exact McNemar test of a binary outcome measured twice on the same units (before, after:
    [n] of 0/1 or bool). Returns {b (0 → 1), c (1 → 0), p, n}; p = 1 when no unit switches."""
    x, y = np.asarray(before).astype(bool).ravel(), np.asarray(after).astype(bool).ravel()
    if x.shape != y.shape:
        raise ValueError(f"mcnemar: before and after must have one length, got {x.shape} and {y.shape}")
    b, c = int(np.sum(~x & y)), int(np.sum(x & ~y))
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "p": p, "n": int(x.size)}


def holm(p) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values of p [m] (any order, returned in it). NaN entries (tests
    without a result) stay NaN and do not count in m."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def with_holm(tests: dict, key: str = "p") -> dict:
    """A copy of ``tests`` (nested dicts whose leaves are results with a ``key`` p-value) in which
    every result also holds ``p_holm``: :func:`holm` over all the results found, one family."""
    import copy

    out = copy.deepcopy(tests)
    results = []

    def walk(d):
        if isinstance(d, dict) and key in d and not isinstance(d[key], dict):
            results.append(d)
        elif isinstance(d, dict):
            for v in d.values():
                walk(v)

    walk(out)
    for d, q in zip(results, holm([d[key] for d in results])):
        d["p_holm"] = float(q)
    return out


def _boot_means(v: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[n_resamples] means of resamples of v (with replacement, its own size)."""
    return v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(axis=1)


def _percentiles(boot: np.ndarray, confidence_level: float) -> tuple[float, float]:
    a = (1 - confidence_level) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    return float(lo), float(hi)
