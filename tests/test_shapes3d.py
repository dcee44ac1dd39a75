"""shapes3d: the 3dshapes factor layout, every factor visibly changes the image, determinism."""
import numpy as np
import pytest

import varstruct
from varstruct.data.base import DatasetError
from varstruct.data.shapes3d import Shapes3D, hsv_to_rgb


@pytest.fixture(scope="module")
def ds():
    return varstruct.datasets.get("shapes3d")


def test_factor_layout_matches_3dshapes(ds):
    assert isinstance(ds, Shapes3D)
    assert ds.factor_names == ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    assert ds.factor_sizes.tolist() == [10, 10, 10, 8, 4, 15]
    assert ds.factor_types == ["circular", "circular", "circular", "ordinal", "categorical", "ordinal"]
    for j in range(3):
        np.testing.assert_allclose(ds.factor_values[j], np.arange(10) / 10)
    np.testing.assert_allclose(ds.factor_values[3], 0.75 + np.arange(8) / 14)
    np.testing.assert_allclose(ds.factor_values[4], [0, 1, 2, 3])
    np.testing.assert_allclose(ds.factor_values[5], -30 + np.arange(15) * 60 / 14)
    assert ds.image_shape == (64, 64, 3) and not ds.has_nuisance and ds.sample_nuisance(3, 0) is None
    with pytest.raises(DatasetError, match="unknown parameter"):
        varstruct.datasets.get("shapes3d", size=32)


def test_shape_range_determinism(ds):
    idx = ds.sample_factors(300, 0)
    x = ds.render(idx)
    assert x.shape == (300, 64, 64, 3) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0.1
    np.testing.assert_array_equal(x, Shapes3D().render(idx))
    # a batch renders exactly as its images one by one (no cross-talk inside the batch)
    np.testing.assert_array_equal(x[:5], np.concatenate([ds.render(i) for i in idx[:5]]))
    assert ds.render(idx[:0]).shape == (0, 64, 64, 3)


def test_hsv_to_rgb_known_values():
    np.testing.assert_allclose(hsv_to_rgb([0, 1 / 3, 2 / 3, 1 / 6], 1.0),
                               [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(hsv_to_rgb(0.5, 0.5, 0.8), [0.4, 0.8, 0.8])
    np.testing.assert_allclose(hsv_to_rgb(0.3, 0.0, 0.7), [0.7, 0.7, 0.7])


def test_every_factor_changes_the_image(ds):
    """At seeded anchors, moving any one factor to any other value changes the image clearly."""
    anchors = ds.sample_factors(12, 1)
    base = ds.render(anchors)
    for j, n in enumerate(ds.factor_sizes):
        for v in range(n):
            idx = anchors.copy()
            idx[:, j] = v
            diff = np.abs(ds.render(idx) - base).sum((1, 2, 3))[anchors[:, j] != v]
            # at least the equivalent of 10 pixels changing fully in one channel
            assert diff.min() > 10.0, (ds.factor_names[j], v, diff.min())


def test_hues_colour_their_own_regions(ds):
    """floor_hue changes the bottom row and not the top; wall_hue the reverse; object_hue only
    the centre (the object)."""
    anchors = ds.sample_factors(20, 2)
    base = ds.render(anchors)

    def changed(j):
        idx = anchors.copy()
        idx[:, j] = (idx[:, j] + 5) % 10
        return np.abs(ds.render(idx) - base).max(-1) > 1e-6  # [A, H, W]

    floor, wall, obj = changed(0), changed(1), changed(2)
    assert floor[:, -1].all() and not floor[:, 17].any()
    assert wall[:, 17].all() and not wall[:, -1].any()
    assert not (floor | wall | obj)[:, :15].any()  # the sky band belongs to no factor
    assert obj[:, 46, 32].all() and not obj[:, :, :12].any() and not obj[:, :, -12:].any()


@pytest.mark.parametrize("shape", [0, 1, 2, 3])
def test_object_grows_with_scale(ds, shape):
    """The object's footprint (pixels that object_hue changes) grows strictly with scale."""
    areas = []
    for s in range(8):
        a = np.array([[1, 4, 0, s, shape, 7], [1, 4, 5, s, shape, 7]])
        x = ds.render(a)
        areas.append((np.abs(x[0] - x[1]).max(-1) > 1e-6).sum())
    assert np.all(np.diff(areas) > 0), areas
    assert areas[-1] / areas[0] > 2.0  # (1.25/0.75)^2 ≈ 2.8


def test_shapes_have_distinct_outlines(ds):
    feet = []
    for shape in range(4):
        a = np.array([[1, 4, 0, 4, shape, 7], [1, 4, 5, 4, shape, 7]])
        x = ds.render(a)
        feet.append(np.abs(x[0] - x[1]).max(-1) > 1e-6)
    for i in range(4):
        for k in range(i + 1, 4):
            assert (feet[i] ^ feet[k]).sum() > 20, (i, k)


def test_layout_like_the_released_scene(ds):
    """Sky band RGB (0.62, 0.89, 0.98) on rows 0-14 of every image, walls below it, the floor
    from about the middle down, the object up to a third of the image wide at the largest scale."""
    idx = ds.sample_factors(200, 3)
    x = ds.render(idx)
    np.testing.assert_allclose(x[:, :15], np.broadcast_to([0.62, 0.89, 0.98], (200, 15, 64, 3)), atol=1e-6)
    assert np.abs(x[:, 15] - [0.62, 0.89, 0.98]).max(-1).min() > 0.05  # row 15 is wall
    floor_only = ds.render(np.array([[0, 5, 0, 0, 2, 7], [5, 5, 0, 0, 2, 7]]))
    rows = np.flatnonzero((np.abs(floor_only[0] - floor_only[1]).max(-1) > 1e-6).any(1))
    assert 28 <= rows.min() <= 34 and rows.max() == 63  # floor from about the middle down
    for shape in range(4):
        a = np.array([[1, 4, 0, 7, shape, 7], [1, 4, 5, 7, shape, 7]])
        y = ds.render(a)
        cols = np.flatnonzero((np.abs(y[0] - y[1]).max(-1) > 1e-6).any(0))
        assert 15 <= len(cols) <= 24, (shape, len(cols))  # about a third of 64 at scale 1.25


def test_orientation_moves_the_wall_corner(ds):
    """The corner between the walls (where the wall shade jumps along row 20) moves from right
    to left as the camera turns from -30 to +30 degrees."""
    corners = []
    for o in range(15):
        x = ds.render(np.array([[0, 0, 0, 0, 2, o]]))[0, 20].sum(-1)
        corners.append(np.argmax(np.abs(np.diff(x))))
    assert np.all(np.diff(corners) < 0) and corners[0] > 48 and corners[-1] < 16, corners
