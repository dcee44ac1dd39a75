"""Datasets: renderer geometry, every factor matters, seeded nuisances, pairs, registry."""
import numpy as np
import pytest

import varstruct
from varstruct import data
from varstruct.data import dsprites as dsp
from varstruct.data.base import DatasetError


def _grid_idx(ds, **fixed):
    """All grid points with the given factors fixed (by name -> index)."""
    sizes = [1 if n in fixed else s for n, s in zip(ds.factor_names, ds.factor_sizes)]
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))
    for n, v in fixed.items():
        idx[:, ds.factor_index(n)] = v
    return idx


def test_registry_lists_and_builds_every_dataset():
    assert {"dsprites", "color_dsprites", "noisy_dsprites", "shapes3d", "toy_linear", "toy_square",
            "toy_blobs"} <= set(data.names())
    ds = varstruct.datasets.get("dsprites")
    assert ds.factor_names == ["shape", "scale", "orientation", "posX", "posY"]
    assert ds.factor_sizes.tolist() == [3, 6, 40, 32, 32]
    assert ds.factor_types == ["categorical", "ordinal", "circular", "ordinal", "ordinal"]
    np.testing.assert_allclose(ds.factor_values[2][[0, -1]], [0, 2 * np.pi])
    np.testing.assert_allclose(ds.factor_values[1][[0, -1]], [0.5, 1.0])


def test_registry_errors():
    with pytest.raises(DatasetError, match="unknown dataset"):
        data.get("mnist")
    with pytest.raises(DatasetError, match="unknown parameter"):
        data.get("toy_blobs", ratio=3)
    with pytest.raises(DatasetError, match="flip"):
        data.get("toy_blobs", r=2.0, profile="flip", spread=1.5)


def test_dsprites_images_are_binary_64x64():
    ds = data.get("dsprites")
    x = ds.render(ds.sample_factors(50, 0))
    assert x.shape == (50, 64, 64, 1) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert (x.sum((1, 2, 3)) > 0).all()
    # nothing touches the border: every sprite fits at every orientation and position
    corners = ds.render(_grid_idx(ds, scale=5, posX=0, posY=31))
    assert corners[:, :, 0].sum() == 0 and corners[:, -1, :].sum() == 0


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_dsprites_area_grows_with_scale_squared(shape):
    ds = data.get("dsprites")
    areas = []
    for s in range(6):
        idx = _grid_idx(ds, shape=shape, scale=s, posX=10, posY=20)
        areas.append(ds.render(idx).sum((1, 2, 3)).mean())
    ratio = np.array(areas) / dsp.SCALES ** 2
    assert ratio.std() / ratio.mean() < 0.03


def test_dsprites_square_area_and_closed_form():
    ds = data.get("dsprites")
    idx = _grid_idx(ds, shape=0, scale=5, posX=16, posY=16)  # 40 orientations
    areas = ds.render(idx).sum((1, 2, 3))
    side = 2 * dsp.SQUARE_HALF
    # rotation keeps the area up to pixel quantisation along the perimeter
    assert np.abs(areas - side ** 2).max() < 0.08 * side ** 2
    assert abs(areas.mean() - side ** 2) < 0.02 * side ** 2
    ellipse = ds.render(_grid_idx(ds, shape=1, scale=5, posX=16, posY=16)).sum((1, 2, 3)).mean()
    assert abs(ellipse - np.pi * dsp.ELLIPSE_AXES[0] * dsp.ELLIPSE_AXES[1]) < 0.03 * ellipse


@pytest.mark.parametrize("axis,name", [(2, "posX"), (1, "posY")])
def test_dsprites_centroid_moves_linearly(axis, name):
    ds = data.get("dsprites")
    for shape in range(3):
        idx = _grid_idx(ds, shape=shape, scale=3, orientation=7, **{"posY" if name == "posX" else "posX": 9})
        x = ds.render(idx)[..., 0]
        coords = np.arange(64) + 0.5
        cen = (x.sum(3 - axis) * coords).sum(1) / x.sum((1, 2))
        pos = ds.factor_values[ds.factor_index(name)]
        slope, icpt = np.polyfit(pos, cen, 1)
        assert abs(slope - dsp.CENTRE_SPAN) < 0.5  # 32 px over posX/posY in [0, 1]
        assert np.abs(cen - (slope * pos + icpt)).max() < 0.5


def test_orientation_endpoints_coincide_and_rotation_moves_pixels():
    ds = data.get("dsprites")
    idx = _grid_idx(ds, shape=0, scale=5, posX=16, posY=16)
    x = ds.render(idx)
    np.testing.assert_array_equal(x[0], x[-1])  # 0 and 2π, as in the original
    assert np.abs(x[5] - x[0]).sum() > 10


EVERY = ["dsprites", "color_dsprites", "noisy_dsprites", "shapes3d", "toy_linear", "toy_square", "toy_blobs"]


@pytest.mark.parametrize("name", EVERY)
def test_every_factor_changes_the_image(name):
    ds = data.get(name)
    rng = np.random.default_rng(0)
    anchors = ds.sample_factors(8, rng)
    nuis = ds.sample_nuisance(8, rng)
    base = ds.render(anchors, nuisance=nuis)
    assert base.shape[1:] == tuple(ds.image_shape) and base.dtype == np.float32
    assert base.min() >= 0 and base.max() <= 1
    for j in range(ds.num_factors):
        moved = anchors.copy()
        moved[:, j] = (moved[:, j] + ds.factor_sizes[j] // 2) % ds.factor_sizes[j]
        diff = np.abs(ds.render(moved, nuisance=nuis) - base).reshape(8, -1).sum(1)
        assert (diff > 0).mean() >= 0.75, (name, ds.factor_names[j])


@pytest.mark.parametrize("name", ["color_dsprites", "noisy_dsprites"])
def test_same_seed_same_nuisance(name):
    ds = data.get(name)
    idx = ds.sample_factors(6, 1)
    a, b = ds.render(idx, rng=3), ds.render(idx, rng=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ds.render(idx, rng=4))
    # frozen nuisance: the same draw gives the same nuisance for every image
    nz = ds.sample_nuisance(1, 5)
    twice = ds.render(np.stack([idx[0], idx[0]]), nuisance=np.repeat(nz, 2, 0))
    np.testing.assert_array_equal(twice[0], twice[1])


def test_color_and_noise_semantics():
    ds, col, noisy = data.get("dsprites"), data.get("color_dsprites"), data.get("noisy_dsprites")
    idx = ds.sample_factors(20, 2)
    mask = ds.render(idx)
    c = col.sample_nuisance(20, 0)
    assert (c >= 0.5).all() and (c <= 1).all()
    np.testing.assert_allclose(col.render(idx, nuisance=c), mask * c[:, None, None, :])
    nz = noisy.sample_nuisance(20, 0)
    out = noisy.render(idx, nuisance=nz)
    np.testing.assert_allclose(out, np.where(mask > 0, 1.0, nz))


def test_toy_linear_reads_back_and_rejects_bad_amplitudes():
    ds = data.get("toy_linear", amplitudes=[3, 1], sizes=[5, 7], side=8)
    idx = ds.sample_factors(30, 0)
    x = ds.render(idx).reshape(30, -1).astype(np.float64)
    coef = (x - 0.5) @ ds.basis.T
    u = idx / (np.array([5, 7]) - 1.0) - 0.5
    np.testing.assert_allclose(coef, u * [3, 1], atol=1e-6)
    np.testing.assert_allclose(ds.basis @ ds.basis.T, np.eye(2), atol=1e-12)
    with pytest.raises(DatasetError, match="amplitudes"):
        data.get("toy_linear", amplitudes=[100, 1], sizes=[5, 7], side=8)


def test_toy_square_pixels():
    ds = data.get("toy_square")
    x = ds.render([[2, 4, 7]])[0, ..., 0]  # side 5, column 4, brightness 1
    assert x.sum() == 25 and x[ds.TOP, 4] == 1 and x[ds.TOP, 9] == 0 and x[ds.TOP - 1, 4] == 0


# ---- toy_blobs: closed forms from the definition x = ½ + a v_A g_A + a r ρ(t_A) v_B g_B --------------
def _blob_profiles():
    yy, xx = np.mgrid[0:16, 0:16].astype(float)
    g = []
    for cy, cx in ((7.5, 3.5), (7.5, 11.5)):
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        g.append(np.where(d2 <= 16, np.exp(-d2 / 8), 0.0).ravel())
    return g


def _blob_grid(ds):
    """All 24x24 images [c_A, c_B, D] (float64) and the traversal variances measured on them:
    V_A [c_B] (A's traversal does not depend on c_A) and V_B [c_A]."""
    idx = np.stack(np.meshgrid(np.arange(24), np.arange(24), indexing="ij"), -1).reshape(-1, 2)
    X = ds.render(idx).reshape(24, 24, -1).astype(np.float64)
    return X, X.var(axis=0).sum(-1) / 256, X.var(axis=1).sum(-1) / 256


SETTINGS = [dict(r=2.0, profile="none"), dict(r=0.5, profile="none"), dict(r=2.0, profile="noflip"),
            dict(r=0.5, profile="noflip"), dict(r=1.0, profile="flip", spread=2.0),
            dict(r=1.0, profile="flip", spread=1.5), dict(r=0.8, profile="flip")]


def test_toy_blobs_a_amplitude_is_fixed_and_b_follows_the_profile():
    gA, gB = _blob_profiles()
    v = np.linspace(-0.5, 0.5, 24)
    t = np.arange(24) / 23
    assert (gA * gB).sum() == 0  # the two blobs never overlap
    for kw in SETTINGS:
        ds = data.get("toy_blobs", amplitude=0.3, **kw)
        X, _, _ = _blob_grid(ds)
        rho = np.ones(24) if kw["profile"] == "none" else ds.params["spread"] ** (2 * t - 1)
        want = 0.5 + 0.3 * v[:, None, None] * gA + 0.3 * kw["r"] * (rho[:, None] * v[None, :])[..., None] * gB
        np.testing.assert_allclose(X, want, atol=1e-6, err_msg=str(kw))
        # A's amplitude is the parameter, whatever r and the profile
        np.testing.assert_allclose(ds.amplitudes([[0, 0], [23, 5]])[:, 0], 0.3)
    ds = data.get("toy_blobs")
    assert ds.params == {"r": 2.0, "profile": "none", "spread": 1.0, "amplitude": 0.4}
    lo, hi = ds.value_range
    X, _, _ = _blob_grid(ds)
    assert X.min() == pytest.approx(lo, abs=1e-6) and X.max() == pytest.approx(hi, abs=1e-6)
    assert 0 <= lo and hi <= 1


@pytest.mark.parametrize("kw", SETTINGS, ids=lambda kw: f"{kw['profile']}-{kw['r']}-{kw.get('spread')}")
def test_toy_blobs_local_variance_order(kw):
    ds = data.get("toy_blobs", **kw)
    X, VA, VB = _blob_grid(ds)
    VA, VB = np.broadcast_to(VA[None, :], (24, 24)), np.broadcast_to(VB[:, None], (24, 24))  # [c_A, c_B]
    idx = np.stack(np.meshgrid(np.arange(24), np.arange(24), indexing="ij"), -1).reshape(-1, 2)
    np.testing.assert_allclose(ds.local_variance(idx).reshape(24, 24, 2), np.stack([VA, VB], -1), rtol=1e-5)
    order = np.sign(VB - VA)
    if kw["profile"] == "none":  # a constant variance ratio r², i.e. an amplitude ratio r
        np.testing.assert_allclose(VB / VA, kw["r"] ** 2, rtol=1e-5)
    elif kw["profile"] == "noflip":  # the gap changes with A, the order never
        assert (VB / VA).max() > 1.5 * (VB / VA).min() and (np.all(order == 1) or np.all(order == -1))
    else:  # at every value of B, the order at A's lowest level is the opposite of that at its highest
        assert np.all(order[0] == -1) and np.all(order[-1] == 1)
    # total and per-factor variance over the grid
    rep = ds.variance()
    assert rep["total"] == pytest.approx(X.reshape(576, -1).var(0).mean(), rel=1e-5)
    assert rep["A"] == pytest.approx(VA.mean(), rel=1e-5) and rep["B"] == pytest.approx(VB.mean(), rel=1e-5)
    assert rep["share_A"] + rep["share_B"] == pytest.approx(1.0)
    assert rep["ratio_min"] == pytest.approx((VB / VA).min(), rel=1e-5)


def test_toy_blobs_defaults_and_errors():
    assert data.get("toy_blobs", r=1.0, profile="flip").params["spread"] == 2.0
    assert data.get("toy_blobs", r=0.25, profile="flip", amplitude=0.1).params["spread"] == 8.0
    s = data.get("toy_blobs", r=2.0, profile="noflip").params["spread"]
    data.get("toy_blobs", r=2.0, profile="noflip", spread=s * s * (1 - 1e-6), amplitude=0.2)  # √ of the largest
    with pytest.raises(DatasetError, match="flips the local variance order"):
        data.get("toy_blobs", r=2.0, profile="noflip", spread=s * s * 1.001, amplitude=0.2)
    with pytest.raises(DatasetError, match="noflip at r=1.0"):
        data.get("toy_blobs", r=1.0, profile="noflip")
    with pytest.raises(DatasetError, match="does not invert"):
        data.get("toy_blobs", r=2.0, profile="flip", spread=1.5, amplitude=0.1)
    with pytest.raises(DatasetError, match=r"outside \[0, 1\]; use amplitude <= 0.133"):
        data.get("toy_blobs", r=2.0, profile="flip")  # spread 4: B reaches 8 a
    with pytest.raises(DatasetError, match="spread 1"):
        data.get("toy_blobs", profile="none", spread=2.0)
    for bad in (dict(amplitude=0), dict(r=-1), dict(profile="wave"), dict(profile="flip", r=1, spread=0.5)):
        with pytest.raises(DatasetError, match="toy_blobs"):
            data.get("toy_blobs", **bad)


@pytest.mark.parametrize("k", [1, 2, "random"])
def test_pairs_share_all_but_k(k):
    ds = data.get("dsprites")
    a, b, m = ds.sample_pairs(2000, 0, k=k, return_mask=True)
    changed = a != b
    np.testing.assert_array_equal(changed, m)  # a changed factor really changes
    n_changed = changed.sum(1)
    if k == "random":
        assert set(np.unique(n_changed)) == {1, 2, 3, 4}  # uniform in 1..K-1
        assert np.bincount(n_changed)[1:].min() > 400
    else:
        assert (n_changed == k).all()
    # which factors change is uniform over factors
    assert changed.sum(0).min() > 0.7 * changed.sum(0).max()
    a2, b2 = ds.sample_pairs(2000, 0, k=k)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)


def test_pairs_longitudinal_mode_keeps_identity():
    ds = data.get("dsprites")
    a, b = ds.sample_pairs(1000, 1, k="random", changeable=["posX", "scale"])
    changed = a != b
    assert not changed[:, [0, 2, 4]].any()
    assert set(np.unique(changed.sum(1))) == {1, 2}
    with pytest.raises(DatasetError, match="no factor"):
        ds.sample_pairs(5, 0, changeable=["colour"])
    with pytest.raises(DatasetError, match="k must"):
        ds.sample_pairs(5, 0, k=3, changeable=["posX", "scale"])


def test_render_validates_indices():
    ds = data.get("dsprites")
    with pytest.raises(DatasetError, match="out of range"):
        ds.render([[0, 6, 0, 0, 0]])
    with pytest.raises(DatasetError, match="shape"):
        ds.render([[0, 0, 0]])


def test_datasets_cli_lists_factors(capsys):
    from varstruct.cli.app import main

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "dsprites" in out and "orientation" in out and "toy_blobs" in out
