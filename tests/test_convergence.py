"""The convergence criterion against hand-computed logs."""
import numpy as np
import pandas as pd
import pytest

from varstruct.training.convergence import convergence, log_convergence


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
