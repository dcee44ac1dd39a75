"""varstruct.measures.pairs against hand-computed and closed-form cases."""
import numpy as np
import pytest

from varstruct.measures.pairs import fixed_code_drift, latent_movement, movement_concentration


def test_latent_movement_hand_computed():
    mu1 = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, 3.0]])   # sd: 1, 0 (collapsed), 1
    mu2 = np.array([[1.0, 5.0, 1.0], [1.0, 6.0, 6.0]])   # |Δ| means: 1, 0.5, 1.5
    d = latent_movement(mu1, mu2)
    np.testing.assert_allclose(d, [1.0, np.nan, 1.5])
    np.testing.assert_allclose(latent_movement(mu1, mu2, active=[True, True, False]), [1.0, np.nan, np.nan])
    # a NaN pair is dropped, not propagated; fewer than 2 pairs: all NaN
    with_nan = np.vstack([mu1, [[np.nan, 0, 0]]]), np.vstack([mu2, [[0, 0, 0]]])
    np.testing.assert_allclose(latent_movement(*with_nan), d)
    assert np.isnan(latent_movement(mu1[:1], mu2[:1])).all()
    with pytest.raises(ValueError, match="one shape"):
        latent_movement(mu1, mu2[:, :2])


def test_drift_closed_forms():
    rng = np.random.default_rng(0)
    mu1 = rng.normal(size=(400, 4)) * [1.0, 2.0, 0.5, 3.0]
    R = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, 1.0]])  # latents 0, 1 -> fixed A, B; 2, 3 -> C
    fixed = [True, True, False]
    # only the changing code moves: drift 0
    moved = mu1 + [0.0, 0.0, 0.7, -2.0]
    assert fixed_code_drift(latent_movement(mu1, moved), R, fixed) == 0.0
    # every latent moves by the same multiple of its spread: drift 1
    sd = mu1.std(0)
    np.testing.assert_allclose(fixed_code_drift(latent_movement(mu1, mu1 + 0.3 * sd), R, fixed), 1.0)
    # weighting by hand: d = [1, 2, 4], w_fix = [1, 1, 0], w_chg = [0, 1, 1] -> (3/2) / (6/2) = 0.5
    Rh = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert fixed_code_drift([1.0, 2.0, 4.0], Rh, [True, False]) == pytest.approx(0.5)
    # an inactive (NaN) latent is left out of both weighted means
    assert fixed_code_drift([1.0, 2.0, 4.0, np.nan], np.vstack([Rh, [5.0, 5.0]]), [True, False]) == pytest.approx(0.5)
    # no weight on the fixed factors, or a changing code that does not move: undefined
    assert np.isnan(fixed_code_drift([1.0, 2.0], [[0.0, 1.0], [0.0, 1.0]], [True, False]))
    assert np.isnan(fixed_code_drift([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], [True, False]))
    with pytest.raises(ValueError, match="latents, factors"):
        fixed_code_drift([1.0, 2.0], Rh, [True, False])


def test_movement_concentration():
    assert movement_concentration([4.0, 1.0, 1.0, 2.0], 2) == pytest.approx(0.75)
    assert movement_concentration([1.0, 1.0, 1.0, 1.0, np.nan], 3) == pytest.approx(0.75)  # uniform: n / L_active
    assert movement_concentration([3.0, 0.0, 0.0], 1) == 1.0
    assert np.isnan(movement_concentration([0.0, 0.0], 1))
    assert np.isnan(movement_concentration([np.nan], 1))
