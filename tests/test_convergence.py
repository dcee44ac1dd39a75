"""The convergence criterion against hand-computed logs."""
import numpy as np
import pandas as pd
import pytest

from varstruct.training.convergence import convergence, log_convergence


def test_exponential_decay_converges_only_once_its_tail_is_flat():
    """recon(t) = 100 + 50·exp(−t/τ), logged every 10 of T = 1000 steps. R_a = mean over steps
    (700, 750], R_b over (950, 1000]; the improvement is (R_a − R_b)/R_a, computed by hand."""
    steps = np.arange(10, 1001, 10)
    for tau, expect in ((50.0, True), (400.0, False)):
        recon = 100 + 50 * np.exp(-steps / tau)
        ra = recon[(steps > 700) & (steps <= 750)].mean()
        rb = recon[(steps > 950) & (steps <= 1000)].mean()
        v = convergence(steps, recon)
        assert v["recon_start"] == pytest.approx(ra) and v["recon_end"] == pytest.approx(rb)
        assert v["improvement"] == pytest.approx((ra - rb) / ra)
        assert v["converged"] is expect and v["at_step"] == 750 and v["steps"] == 1000
    # τ = 400: R_a ≈ 108.7, R_b ≈ 104.3, improvement ≈ 4% > 2%


def test_flat_noisy_log_converges_and_a_still_falling_one_does_not():
    rng = np.random.default_rng(0)
    steps = np.arange(25, 3001, 25)
    flat = 20 + rng.normal(0, 0.5, len(steps))
    assert convergence(steps, flat)["converged"] is True
    falling = 40 - 10 * steps / 3000 + rng.normal(0, 0.2, len(steps))  # −25% of 40 per run: −~7% per quarter
    v = convergence(steps, falling)
    assert v["converged"] is False and v["improvement"] > 0.05


def test_a_window_narrower_than_the_log_interval_uses_the_last_row_before_it():
    steps = np.array([500, 1000])  # one row per half: the windows hold no row; take the last row at/before
    v = convergence(steps, np.array([10.0, 9.0]))
    assert v["recon_start"] == 10.0 and v["recon_end"] == 9.0 and v["converged"] is False


def test_diverged_or_empty_logs_have_no_verdict():
    steps = np.arange(10, 101, 10)
    recon = np.full(10, np.nan)
    assert convergence(steps, recon)["converged"] is None
    assert convergence([], [])["converged"] is None
    with pytest.raises(ValueError):
        convergence(steps, recon[:3])


def test_log_table_and_explicit_total_steps():
    log = pd.DataFrame({"step": [100, 200, 300, 400], "recon": [4.0, 3.0, 2.0, 2.0], "kl": [0, 0, 0, 0]})
    v = log_convergence(log)
    assert v["recon_start"] == 2.0 and v["converged"] is True  # at step 300: 2.0, at 400: 2.0
    v = log_convergence(log, total_steps=400)
    assert v["steps"] == 400
