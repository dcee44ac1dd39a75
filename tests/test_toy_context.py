"""toy_context: profiles that differ only in local consistency, with matched global shares and
no A->B cross term, proven in closed form and against the measured traversal variances."""
import itertools

import numpy as np
import pytest

import varstruct
from varstruct.data.base import DatasetError


def _get(**kw):
    return varstruct.datasets.get("toy_context", **kw)


@pytest.mark.parametrize("r,a", [(1.5, 0.12), (2.0, 0.12), (3.0, 0.12), (1.5, 0.3)])  # (1.5, 0.3): the zoo's design
def test_global_shares_are_matched_across_profiles(r, a):
    v = {p: _get(r=r, profile=p, amplitude=a).variance() for p in ("none", "noflip", "flip")}
    for key in ("share_A", "share_B", "share_C", "A", "B", "C"):
        vals = [v[p][key] for p in v]
        assert max(vals) - min(vals) <= 1e-12 * max(abs(x) for x in vals)
    # closed form: global variances a² var(v) G / D · (1, r², q²)
    ds = _get(r=r, profile="flip", amplitude=a)
    unit = ds.amplitude ** 2 * ds.levels.var() * (ds.blobs[0] ** 2).sum() / 256
    assert v["flip"]["A"] == pytest.approx(unit, rel=1e-12)
    assert v["flip"]["B"] == pytest.approx(unit * r ** 2, rel=1e-12)
    assert v["flip"]["C"] == pytest.approx(unit * ds.c_ratio ** 2, rel=1e-12)
    # the profiles do differ where they should: the local ratio V_B / V_A
    assert v["none"]["ratio_min"] == pytest.approx(r ** 2) == v["none"]["ratio_max"]
    assert v["noflip"]["ratio_min"] > 1 and v["flip"]["ratio_min"] < 1 < v["flip"]["ratio_max"]
    assert v["none"]["cross_C"] == 0 < v["noflip"]["cross_C"] < v["flip"]["cross_C"]


def test_global_variances_are_the_grid_means_of_the_local_ones():
    ds = _get(r=2.0, profile="flip")
    grid = np.array(list(itertools.product(range(24), repeat=3)))
    V = ds.local_variance(grid).mean(0)
    v = ds.variance()
    np.testing.assert_allclose(V, [v["A"], v["B"], v["C"]], rtol=1e-12)


@pytest.mark.parametrize("profile", ["none", "noflip", "flip"])
def test_measured_traversal_variance_equals_the_closed_form(profile):
    ds = _get(r=2.0, profile=profile)
    m = varstruct.measure_dataset(ds, n_anchors=40, n_pca_anchors=2, seed=3)
    idx = m["anchor_factors"].values
    np.testing.assert_allclose(m["traversal_variance"].values, ds.local_variance(idx), rtol=2e-5, atol=1e-12)


def test_traversing_a_leaves_b_and_c_unchanged():
    ds = _get(r=2.0, profile="flip")
    rng = np.random.default_rng(0)
    others = ds.blobs[1:].sum(0) > 0
    for c in ds.sample_factors(20, rng):
        trav = np.repeat(c[None], 24, axis=0)
        trav[:, 0] = np.arange(24)
        imgs = ds.render(trav).reshape(24, -1)
        assert (imgs[:, others] == imgs[0, others]).all()  # bit for bit
        assert np.ptp(imgs[:, ds.blobs[0] > 0], axis=0).max() > 0
    # and traversing C moves B's blob (the reported cross term) only when rho varies
    for profile, moves in (("none", False), ("flip", True)):
        d = _get(r=2.0, profile=profile)
        trav = np.tile([[3, 20, 0]], (24, 1))
        trav[:, 2] = np.arange(24)
        imgs = d.render(trav).reshape(24, -1)
        assert bool(np.ptp(imgs[:, d.blobs[1] > 0], axis=0).max() > 0) is moves


def test_profiles_do_what_they_claim_and_bad_settings_are_refused():
    flip = _get(r=2.0, profile="flip")
    assert flip.rho[0] < 1 < flip.rho[-1]
    noflip = _get(r=2.0, profile="noflip")
    assert (noflip.rho > 1).all()
    with pytest.raises(DatasetError, match="noflip at r=1"):
        _get(r=1.0, profile="noflip")
    with pytest.raises(DatasetError, match="flips the local variance order"):
        _get(r=2.0, profile="noflip", spread=10.0)
    with pytest.raises(DatasetError, match="does not invert"):
        _get(r=2.0, profile="flip", spread=1.1)
    with pytest.raises(DatasetError, match="outside"):
        _get(r=3.0, profile="flip", amplitude=0.4)
    with pytest.raises(DatasetError, match="c_ratio"):
        _get(r=2.0, profile="flip", c_ratio=0.5)
    lo, hi = flip.value_range
    imgs = flip.render(flip.sample_factors(2000, np.random.default_rng(1)))
    assert lo - 1e-6 <= imgs.min() and imgs.max() <= hi + 1e-6 and 0 <= lo and hi <= 1
