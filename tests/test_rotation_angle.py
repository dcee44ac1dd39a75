"""rotation_angle (varstruct.measures.rotation) against closed forms."""
import numpy as np
import pytest

from varstruct.measures.rotation import rotation_angle


def _rotated(theta_deg, scale=(1.0, 1.0)):
    """Factor A responds (cos θ, sin θ), B (sin θ, cos θ) in latents 0, 1 (times √variance)."""
    t = np.radians(theta_deg)
    R = np.array([[np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]]) * np.sqrt(scale)
    return R, np.array(scale, dtype=float), np.array([1.0, 2.0])


@pytest.mark.parametrize("theta", [0.0, 10.0, 30.0, 45.0])
def test_a_code_rotated_by_theta_has_angle_theta(theta):
    assert rotation_angle(*_rotated(theta)) == pytest.approx(theta, abs=1e-12)
    # the response is read in units of each latent's spread: scaled latents give the same angle
    assert rotation_angle(*_rotated(theta, scale=(4.0, 9.0))) == pytest.approx(theta, abs=1e-12)


def test_hand_computed_mean_of_distances_to_the_axes():
    # φ = 20° and 80°: distances 20° and 10°, mean 15°
    R = np.array([[np.cos(np.radians(20)), np.sin(np.radians(20))],
                  [np.cos(np.radians(80)), np.sin(np.radians(80))]])
    assert rotation_angle(R, [1.0, 1.0], [0.5, 0.5]) == pytest.approx(15.0, abs=1e-12)


def test_the_plane_is_the_two_latents_of_largest_kl():
    # latents 1 and 3 carry the KL; latent 0 responds strongly but is inactive; latent 2 is off
    t = np.radians(25.0)
    R = np.array([[5.0, np.cos(t), 0.0, np.sin(t)], [5.0, np.sin(t), 0.0, np.cos(t)]])
    kl = np.array([0.01, 1.0, 0.2, 0.9])
    assert rotation_angle(R, np.ones(4), kl) == pytest.approx(25.0, abs=1e-12)
    # ... and a factor with no response in that plane is left out
    R2 = np.vstack([R, [[3.0, 0.0, 1.0, 0.0]]])
    assert rotation_angle(R2, np.ones(4), kl) == pytest.approx(25.0, abs=1e-12)


def test_undefined_cases_and_batches():
    R, var, _ = _rotated(10.0)
    assert np.isnan(rotation_angle(R, var, [1.0, 0.01]))            # one latent of KL >= 0.05
    assert np.isnan(rotation_angle(R, var, [1.0, np.nan]))          # NaN KL counts as inactive
    assert rotation_angle(R, var, [1.0, 0.04], min_kl=0.01) == pytest.approx(10.0, abs=1e-12)
    assert np.isnan(rotation_angle(np.zeros((2, 2)), var, [1.0, 1.0]))  # no factor responds
    batch = np.stack([_rotated(a)[0] for a in (0.0, 20.0, 40.0)])
    got = rotation_angle(batch, np.ones((3, 2)), np.ones((3, 2)))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, [0.0, 20.0, 40.0], atol=1e-12)
    with pytest.raises(ValueError, match="latent_kl"):
        rotation_angle(R, var, [1.0, 1.0, 1.0])
