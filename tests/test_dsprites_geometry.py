"""dSprites geometry pinned to the released dataset (issue 10; numbers measured on its frames),
not to the renderer's own output. Pixel-index coordinates: row r, column c."""
import numpy as np
import pytest

from varstruct import data

# released dSprites at orientation 0, position (0, 0), scales 0.5 ... 1
SQUARE_SIDE = [10, 12, 14, 16, 18, 20]
ELLIPSE_AREA = [76, 104, 144, 184, 228, 288]
HEART_AREA = [58, 84, 108, 140, 182, 222]
BBOX = {1: ((12, 8), (26, 14)), 2: ((10, 9), (20, 17))}  # (width, height) at scale 0.5 and 1


@pytest.fixture(scope="module")
def ds():
    return data.get("dsprites")


def _img(ds, shape, scale=5, orientation=0, x=0, y=0):
    return ds.render(np.array([[shape, scale, orientation, x, y]]))[0, :, :, 0]


def _bbox(m):
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return cols[0], cols[-1], rows[0], rows[-1]  # c0, c1, r0, r1 (inclusive)


def test_square_sides_exact(ds):
    for s, side in enumerate(SQUARE_SIDE):
        m = _img(ds, 0, s)
        assert m.sum() == side ** 2
        c0, c1, r0, r1 = _bbox(m)
        assert (c1 - c0 + 1, r1 - r0 + 1) == (side, side)
        assert (c0 + c1) / 2 == 15.5 and (r0 + r1) / 2 == 15.5
    # "centre 15.5": the 10-px square covers columns and rows 11-20
    assert _bbox(_img(ds, 0, 0)) == (11, 20, 11, 20)


@pytest.mark.parametrize("shape,areas", [(1, ELLIPSE_AREA), (2, HEART_AREA)])
def test_ellipse_and_heart_areas_and_boxes(ds, shape, areas):
    got = np.array([_img(ds, shape, s).sum() for s in range(6)])
    np.testing.assert_allclose(got, areas, rtol=0.03)  # a few % of area
    for s, (w, h) in zip((0, 5), BBOX[shape]):
        c0, c1, r0, r1 = _bbox(_img(ds, shape, s))
        assert abs((c1 - c0 + 1) - w) <= 1 and abs((r1 - r0 + 1) - h) <= 1, (shape, s)
        assert abs((c0 + c1) / 2 - 15.5) <= 0.5 and abs((r0 + r1) / 2 - 15.5) <= 0.5


def test_ellipse_wider_than_high_heart_point_down(ds):
    e = _img(ds, 1)
    c0, c1, r0, r1 = _bbox(e)
    assert c1 - c0 > r1 - r0
    h = _img(ds, 2, x=16, y=16).astype(bool)
    c0, c1, r0, r1 = _bbox(h)
    top, bottom = h[r0], h[r1]
    # lobes up: two separate runs in the top row; point down: a narrow bottom row at the centre
    assert np.count_nonzero(np.diff(top.astype(int)) == 1) == 2
    assert bottom.sum() <= 2 and abs(np.flatnonzero(bottom).mean() - (c0 + c1) / 2) <= 0.5
    # the notch between the lobes: the centre column starts below the lobes' tops
    mid = int(round((c0 + c1) / 2))
    assert np.flatnonzero(h[:, mid])[0] > r0


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_centre_at_positions_0_and_1(ds, shape):
    for x, y, cx, cy in ((0, 0, 15.5, 15.5), (31, 31, 47.5, 47.5), (0, 31, 15.5, 47.5), (31, 0, 47.5, 15.5)):
        c0, c1, r0, r1 = _bbox(_img(ds, shape, 5, 0, x, y))
        assert abs((c0 + c1) / 2 - cx) <= 0.5 and abs((r0 + r1) / 2 - cy) <= 0.5, (shape, x, y)


def test_one_position_step_moves_about_one_pixel(ds):
    """32 px over the 31 steps: every step of posX moves the square's box by 1 or 2 columns."""
    boxes = np.array([_bbox(_img(ds, 0, 0, 0, x, 0))[0] for x in range(32)])
    assert boxes[0] == 11 and boxes[-1] == 43 and set(np.diff(boxes)) <= {1, 2}


def test_rotation_counter_clockwise_about_the_position(ds):
    """A heart turned by the orientation nearest 90° (index 10, 2π·10/39 ≈ 92°) has its point
    (down at 0) turned counter-clockwise on screen, to the right; it stays centred on its position."""
    o = int(np.argmin(np.abs(ds.factor_values[2] - np.pi / 2)))
    m0, m1 = _img(ds, 2, 5, 0, 16, 16), _img(ds, 2, 5, o, 16, 16)
    centre = 15.5 + 32 * 16 / 31
    rr, cc = np.nonzero(m1)
    # at 0 the point is the lowest pixel (largest row); after a quarter turn counter-clockwise
    # (x right, y up on screen) the bottom goes to the right: the point is the rightmost pixel
    r0, c0 = np.nonzero(m0)
    assert r0.max() - centre > centre - r0.min() - 2  # point down at 0
    tip = cc.max()
    assert tip - centre > centre - cc.min() - 2
    assert (m1[:, tip].sum() <= 2)  # the tip is a point, the lobes (left) are wide
    c0_, c1_, r0_, r1_ = _bbox(m1)
    assert abs((r0_ + r1_) / 2 - centre) <= 1.0 and abs(np.mean([c0_, c1_]) - centre) <= 1.5
    # the ellipse at a quarter turn is higher than wide (about its centre)
    c0e, c1e, r0e, r1e = _bbox(_img(ds, 1, 5, o, 16, 16))
    assert r1e - r0e > c1e - c0e and abs((c0e + c1e) / 2 - centre) <= 0.5


def test_small_rotation_direction(ds):
    """A small positive orientation lifts the square's right edge (counter-clockwise on screen):
    its top-right region gains pixels above the original top row."""
    o = 1  # 2π/39 ≈ 9.2°
    m = _img(ds, 0, 5, o, 16, 16).astype(bool)
    c0, c1, r0, r1 = _bbox(_img(ds, 0, 5, 0, 16, 16))
    above = m[:r0]  # rows above the unrotated square
    cols = np.nonzero(above)[1]
    assert len(cols) and cols.mean() > (c0 + c1) / 2  # the right part rises


def test_orientation_period(ds):
    vals = ds.factor_values[2]
    assert len(vals) == 40 and vals[0] == 0 and np.isclose(vals[-1], 2 * np.pi)
    for shape in range(3):
        a, b = _img(ds, shape, 5, 0, 9, 20), _img(ds, shape, 5, 39, 9, 20)
        np.testing.assert_array_equal(a, b)  # first and last identical
        assert np.abs(_img(ds, shape, 5, 20, 9, 20) - a).sum() > 10  # half a turn differs


def test_traversal_variances_like_the_released_frames(ds):
    """Σ_pixels Var over a traversal (ddof 0) at the issue's anchors, against the released
    frames' values, within 5 %."""
    def V(idx):
        return ds.render(np.array(idx))[..., 0].astype(np.float64).var(0).sum()

    released = {
        "scale heart": (31.8, [[2, s, 0, 0, 0] for s in range(6)]),
        "scale ellipse": (40.9, [[1, s, 0, 0, 0] for s in range(6)]),
        "scale square": (58.3, [[0, s, 0, 0, 0] for s in range(6)]),
        "orientation heart": (58.1, [[2, 5, o, 0, 0] for o in range(40)]),
        "posY heart": (150.3, [[2, 5, 0, 0, y] for y in range(32)]),
        "posX heart": (137.4, [[2, 5, 0, x, 31] for x in range(32)]),
    }
    for name, (ref, idx) in released.items():
        assert V(idx) == pytest.approx(ref, rel=0.05), name


def test_window_rendering_is_the_whole_canvas_evaluated(monkeypatch):
    """The 32-px window around each sprite loses no pixel: at the largest scale, every
    orientation, the corner and edge positions and random images, the images equal the
    inside-test evaluated on the whole canvas (WINDOW = SIZE)."""
    import itertools

    from varstruct.data import dsprites as D

    ds = data.get("dsprites")
    edge = [0, 1, 15, 30, 31]
    idx = np.array(list(itertools.product(range(3), [4, 5], range(40), edge, edge)))
    idx = np.concatenate([idx, ds.sample_factors(2000, np.random.default_rng(1))])
    windowed = ds.render(idx)
    # a 26-px square (scale 1.3) reaches beyond any window: evaluated on the whole canvas
    big = D.render_sprites(np.array([0]), np.array([1.3]), np.array([0.0]), np.array([0.5]), np.array([0.5]))
    monkeypatch.setattr(D, "WINDOW", D.SIZE)
    whole = ds.render(idx)
    assert whole.sum() > 0.05 * whole.size
    np.testing.assert_array_equal(windowed, whole)
    assert big.sum() == 26 ** 2
