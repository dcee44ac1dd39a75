"""Active-latent MIG: MIG with the latents of mean KL below a threshold held constant."""
import numpy as np
import pytest
import torch

import varstruct
from varstruct.metrics import active_mig, active_mig_per_factor, latent_kl, mig, mig_per_factor

LN2 = np.log(2.0)
HB_QUARTER = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))  # H_b(1/4), nats


def _codes():
    """One binary factor v; z0 = v (I = ln 2), z1 = v with 2 of 8 flipped (I = ln 2 − H_b(¼)),
    z2 independent of v (I = 0)."""
    v = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    z0 = v.astype(float)
    z1 = np.array([0, 0, 0, 1, 1, 1, 1, 0], float)
    z2 = np.array([0, 1, 0, 1, 0, 1, 0, 1], float)
    return np.stack([z0, z1, z2], 1), v[:, None]


def test_inactive_top_latent_is_held_constant():
    codes, f = _codes()
    # every latent active: gap between z0 and z1 = H_b(¼) / ln 2
    assert mig(codes, f, n_bins=2) == pytest.approx(HB_QUARTER / LN2, abs=1e-12)
    assert active_mig(codes, f, kl=[0.5, 0.5, 0.5], n_bins=2) == pytest.approx(HB_QUARTER / LN2, abs=1e-12)
    # z0 (the top MI) inactive: the gap is now between z1 and z2 = (ln 2 − H_b(¼)) / ln 2
    want = (LN2 - HB_QUARTER) / LN2
    assert active_mig(codes, f, kl=[0.01, 0.5, 0.5], n_bins=2) == pytest.approx(want, abs=1e-12)
    assert mig(codes, f, n_bins=2, active=np.array([False, True, True])) == pytest.approx(want, abs=1e-12)
    # the same as replacing the code by a constant
    held = codes.copy()
    held[:, 0] = 7.0
    assert mig(held, f, n_bins=2) == pytest.approx(want, abs=1e-12)
    # the threshold is exclusive: kl == threshold is active
    assert active_mig(codes, f, kl=[0.05, 0.5, 0.5], n_bins=2) == pytest.approx(HB_QUARTER / LN2, abs=1e-12)
    assert active_mig(codes, f, kl=[0.05, 0.5, 0.5], threshold=0.06, n_bins=2) == pytest.approx(want, abs=1e-12)


def test_one_and_no_active_latent():
    codes, f = _codes()
    # only z1 active: its I over H(v), the second place is 0
    per = active_mig_per_factor(codes, f, kl=[0.0, 1.0, 0.0], n_bins=2)
    np.testing.assert_allclose(per, [(LN2 - HB_QUARTER) / LN2], atol=1e-12)
    # no active latent: 0 (a model that encodes nothing has no gap), not NaN
    assert active_mig(codes, f, kl=[0.0, 0.0, 0.0], n_bins=2) == 0.0
    np.testing.assert_array_equal(mig_per_factor(codes, f, 2, active=np.zeros(3, bool)), [0.0])


def test_latent_kl_hand_computed():
    mean = np.array([[1.0, 0.0], [3.0, 0.0]])
    logvar = np.array([[0.0, np.log(2.0)], [0.0, np.log(0.5)]])
    # ½(μ² + e^s − s − 1): latent 0: ½·1, ½·9 -> 2.5; latent 1: ½(1 − ln 2), ½(ln 2 − ½) -> mean
    want = [2.5, 0.5 * (0.5 * (1 - LN2) + 0.5 * (LN2 - 0.5))]
    np.testing.assert_allclose(latent_kl(mean, logvar), want, atol=1e-12)


def test_bad_input():
    codes, f = _codes()
    with pytest.raises(ValueError, match="kl"):
        active_mig(codes, f, kl=[[0.1, 0.1, 0.1]])
    with pytest.raises(ValueError, match="active"):
        active_mig(codes, f, kl=[0.1, 0.1])
    with pytest.raises(ValueError, match="threshold"):
        active_mig(codes, f, kl=[0.1, 0.1, 0.1], threshold=-1)
    with pytest.raises(ValueError, match="active"):
        mig(codes, f, active=[1, 0, 1])
    with pytest.raises(ValueError, match="shape"):
        latent_kl(np.zeros((3, 2)), np.zeros((3, 1)))


# ---- the evaluate hook ---------------------------------------------------------------------
class ScaledCoefficients(torch.nn.Module):
    """toy_linear encoder: latents 0-2 = 2·coefficient j (logvar 0, so KL = ½·4·E[c_j²]);
    latent 3 = 10⁻³·coefficient 0: as informative as latent 0, but with KL ≈ 0 (inactive)."""

    def __init__(self, ds):
        super().__init__()
        self.register_buffer("basis", torch.tensor(ds.basis, dtype=torch.float32))

    def encode(self, x):
        c = (x.flatten(1) - 0.5) @ self.basis.T
        mean = torch.cat([2 * c, 1e-3 * c[:, :1]], 1)
        return mean, torch.zeros_like(mean)


def test_evaluate_active_mig():
    ds = varstruct.datasets.get("toy_linear")  # amplitudes 2, 1.5, 1; 10 levels each
    res = varstruct.evaluate(ScaledCoefficients(ds), ds, metrics=["mig", "active_mig"], n_train=1000, seed=0)
    assert res.attrs["active_threshold"] == 0.05
    kl = res["latent_kl"].values
    assert res["latent_kl"].dims == ("latent",) and kl.shape == (4,)
    # E[c_j²] = a_j² E[u²], u uniform on 10 levels in [−½, ½]: E[u²] = 11 / 108
    np.testing.assert_allclose(kl[:3], 0.5 * 4 * np.array([4.0, 2.25, 1.0]) * 11 / 108, rtol=0.1)
    assert kl[3] < 1e-5
    # latent 3 ties latent 0 for factor 0: standard MIG 0 there; held constant, the gap is
    # I(z0; v0) − (the sampling noise MI of an independent latent) ≈ 1
    assert float(res["mig_per_factor"][0]) == pytest.approx(0.0, abs=1e-12)
    assert float(res["active_mig_per_factor"][0]) > 0.95
    np.testing.assert_allclose(res["active_mig_per_factor"][1:], res["mig_per_factor"][1:])
    assert float(res["active_mig"]) == pytest.approx(float(res["active_mig_per_factor"].mean()))
    # the other scores see the same codes as without active_mig
    alone = varstruct.evaluate(ScaledCoefficients(ds), ds, metrics=["mig"], n_train=1000, seed=0)
    assert float(alone["mig"]) == float(res["mig"]) and "active_threshold" not in alone.attrs
    high = varstruct.evaluate(ScaledCoefficients(ds), ds, metrics=["active_mig"], n_train=1000, seed=0,
                              active_threshold=10.0)
    assert float(high["active_mig"]) == 0.0 and high.attrs["active_threshold"] == 10.0


def test_evaluate_active_mig_needs_an_encoder():
    ds = varstruct.datasets.get("toy_linear", amplitudes=[1.0, 1.0], sizes=[3, 3], side=4)

    def codes(images):
        return (images.reshape(len(images), -1).astype(np.float64) - 0.5) @ ds.basis.T

    with pytest.raises(ValueError, match="active_mig needs a model"):
        varstruct.evaluate(codes, ds, metrics=["active_mig"], n_train=100)
    res = varstruct.evaluate(codes, ds, metrics=None, n_train=60, n_test=60)  # skipped by default
    assert "active_mig" not in res and "active_mig" not in res.attrs["metrics"]
