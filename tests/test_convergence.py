"""The convergence criterion against hand-computed logs."""
import numpy as np
import pandas as pd
import pytest

from varstruct.training.convergence import convergence, horizon, log_convergence


def test_a_linear_tail_is_judged_by_its_exact_trend():
    """recon(t) = 10 − 0.0008·t over steps 10..1000: the line through the tail is the function
    itself, so R_a = f(750) = 9.4, R_b = f(1000) = 9.2, improvement = 0.2 / 9.4 = 2.13% > 2%."""
    steps = np.arange(10, 1001, 10)
    v = convergence(steps, 10 - 0.0008 * steps)
    assert v["recon_start"] == pytest.approx(9.4) and v["recon_end"] == pytest.approx(9.2)
    assert v["improvement"] == pytest.approx(0.2 / 9.4) and v["converged"] is False
    assert v["share_of_total"] == pytest.approx(0.2 / (9.992 - 9.2))
    v = convergence(steps, 10 - 0.0007 * steps)  # 0.175 / 9.475 = 1.85% < 2%
    assert v["improvement"] == pytest.approx(0.175 / 9.475) and v["converged"] is True
    assert v["at_step"] == 750 and v["steps"] == 1000


def test_noise_around_a_flat_tail_converges_and_a_falling_tail_does_not():
    rng = np.random.default_rng(0)
    steps = np.arange(25, 3001, 25)
    flat = 20 + rng.normal(0, 0.5, len(steps))  # ±2.5% row noise: two windows' means would wobble
    v = convergence(steps, flat)
    assert v["converged"] is True and abs(v["improvement"]) < 0.02
    falling = 40 - 10 * steps / 3000 + rng.normal(0, 0.2, len(steps))  # 2.5 of ~32.5 per quarter
    v = convergence(steps, falling)
    assert v["converged"] is False and v["improvement"] == pytest.approx(2.5 / 32.5, abs=0.02)


def test_improvement_se_is_the_trend_slopes_standard_error_scaled_to_the_quarter():
    """Against scipy.stats.linregress (the reference OLS): SE = stderr(slope)·(tail·T)/|R_a|;
    an exact line has SE 0, fewer than 3 tail rows none."""
    from scipy.stats import linregress

    rng = np.random.default_rng(3)
    steps = np.arange(50, 6001, 50)
    recon = 2.5 - 2e-5 * steps + rng.normal(0, 0.1, len(steps))
    v = convergence(steps, recon)
    tail = steps > 4500
    ref = linregress(steps[tail], recon[tail])
    ra = ref.intercept + ref.slope * 4500
    assert v["improvement"] == pytest.approx(-ref.slope * 1500 / ra)
    assert v["improvement_se"] == pytest.approx(ref.stderr * 1500 / abs(ra))
    assert convergence(np.arange(10, 1001, 10), 10 - 0.0008 * np.arange(10, 1001, 10))["improvement_se"] == pytest.approx(0, abs=1e-12)
    assert np.isnan(convergence([100, 700, 800, 1000], [5.0, 4.0, 3.9, 3.8])["improvement_se"])  # 2 tail rows


def test_exponential_decay_converges_once_its_tail_is_flat():
    steps = np.arange(10, 1001, 10)
    assert convergence(steps, 100 + 50 * np.exp(-steps / 50.0))["converged"] is True
    assert convergence(steps, 100 + 50 * np.exp(-steps / 400.0))["converged"] is False  # ~3.5% over the tail


def test_a_tail_with_one_row_uses_the_last_row_before_it():
    v = convergence(np.array([500, 1000]), np.array([10.0, 9.0]))
    assert v["recon_start"] == 10.0 and v["recon_end"] == 9.0 and v["converged"] is False


def test_diverged_or_empty_logs_have_no_verdict():
    steps = np.arange(10, 101, 10)
    assert convergence(steps, np.full(10, np.nan))["converged"] is None
    assert convergence([], [])["converged"] is None
    with pytest.raises(ValueError):
        convergence(steps, np.ones(3))


def test_log_table_and_explicit_total_steps():
    log = pd.DataFrame({"step": [100, 200, 300, 400], "recon": [4.0, 3.0, 2.0, 2.0], "kl": [0, 0, 0, 0]})
    v = log_convergence(log)
    assert v["recon_start"] == 2.0 and v["recon_end"] == 2.0 and v["converged"] is True
    assert log_convergence(log, total_steps=400)["steps"] == 400


# horizon: the fitted trend and the length at which the criterion holds on it


def _log(a, b, k, last, every=100, t0=10_000):
    steps = np.arange(every, last + 1, every, dtype=float)
    return steps, a + b * (steps / t0) ** (-k)


def test_a_pure_power_law_never_converges_and_improves_by_the_same_share_every_quarter():
    """recon = 90·(t/10⁴)^−0.3: every last quarter improves by the same share (≈ 1 − 0.75^0.3 =
    8.3%), so no length meets the criterion; the share is the criterion's own verdict on the log."""
    steps, recon = _log(0.0, 90.0, 0.3, 55_000)
    h = horizon(steps, recon)
    assert h["k"] == pytest.approx(0.3, rel=1e-3) and h["a"] == pytest.approx(0.0, abs=1e-3)
    assert h["steps_needed"] is None  # not within 1000 × 55k steps: never, to the fit
    assert h["limit"] == pytest.approx(1 - 0.75 ** 0.3, abs=2e-3)
    for last in (20_000, 55_000, 400_000):  # the criterion itself, at any length: the same share
        s, r = _log(0.0, 90.0, 0.3, last)
        assert convergence(s, r)["improvement"] == pytest.approx(h["limit"], rel=5e-3)  # up to row spacing


def test_a_power_law_with_a_floor_meets_the_criterion_where_the_definition_says():
    """recon = 20 + 60·(t/10⁴)^−0.5 logged to 40k: the fit recovers (a, b, k), and the criterion
    judged on the true curve holds at steps_needed and fails 2% earlier."""
    steps, recon = _log(20.0, 60.0, 0.5, 40_000)
    h = horizon(steps, recon)
    assert (h["a"], h["b"] * 4 ** 0.5, h["k"]) == pytest.approx((20.0, 60.0, 0.5), rel=1e-3)  # b in units of T0 = 40k
    n = h["steps_needed"]
    assert n > 40_000
    hold = convergence(*_log(20.0, 60.0, 0.5, n, every=max(n // 1000, 1)), total_steps=n)
    early = convergence(*_log(20.0, 60.0, 0.5, int(0.98 * n), every=max(n // 1000, 1)), total_steps=int(0.98 * n))
    assert hold["improvement"] == pytest.approx(0.02, abs=2e-4) and early["converged"] is False
    # closed form for the curve's two ends (the criterion's trend is the line, close to them)
    x = 0.02 * 20 / ((0.75 ** -0.5 - 1) - 0.02 * 0.75 ** -0.5)
    assert n == pytest.approx(10_000 * (60 / x) ** 2, rel=0.05)


def test_a_flat_or_already_converged_log_needs_no_more_steps():
    steps, recon = _log(100.0, 1.0, 0.5, 20_000)  # ≈ 0.1% a quarter
    assert convergence(steps, recon)["converged"] is True
    h = horizon(steps, recon)
    assert h["steps_needed"] <= 20_000 and h["improvement"] < 0.02
    assert horizon(steps, np.full_like(steps, 7.0))["steps_needed"] == 0


def test_horizon_fits_from_the_given_step_and_rejects_short_logs():
    steps, recon = _log(20.0, 60.0, 0.5, 40_000)
    recon = np.where(steps < 10_000, recon + 50, recon)  # an early stage the fit must not see
    h = horizon(steps, recon, fit_from=10_000)
    assert h["k"] == pytest.approx(0.5, rel=1e-3) and h["fit_from"] == 10_000 and h["rmse"] < 1e-6
    with pytest.raises(ValueError, match="at least 4"):
        horizon(steps[:3], recon[:3], fit_from=0)
    with pytest.raises(ValueError, match="no finite rows"):
        horizon(steps, np.full_like(steps, np.nan))
