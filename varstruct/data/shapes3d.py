"""`shapes3d`: a procedural scene with the factor layout and values of DeepMind's 3dshapes.

Factors (as in 3dshapes): floor_hue, wall_hue, object_hue (10 values in linspace(0, 0.9),
circular), scale (8 values in linspace(0.75, 1.25), ordinal), shape (4: cube, cylinder,
sphere, capsule; categorical), orientation (15 camera angles in linspace(-30, 30) degrees,
ordinal). Images 64x64x3 float32 in [0, 1]; no nuisances.

The scene is laid out like the released images (their published samples are the reference):

- a constant light-blue sky band, RGB (0.62, 0.89, 0.98), over rows 0-14 of every image;
- below it two walls meeting in a room corner, each flat-shaded (the left one darker);
  the camera angle moves the corner across the image, column 32 - 22 * orientation / 30
  (from column 54 at -30 degrees to column 10 at +30 degrees);
- the floor from the floor/wall boundary down: row 31 at the corner, falling away from it
  (slopes 0.2 +- 0.1 * orientation / 30), lightly shaded by row;
- an object standing on the floor at column 32 (floor contact row 52), 8.5 * scale px in
  radius (10-14 px wide at the smallest scale, 16-24 px, about a third of the image, at the
  largest), its outline and shading set by shape (the cube's faces also turn with the
  camera), its colour by object_hue; a light fixed to the room shades it and casts a soft
  shadow on the floor.

How it renders fast: everything except the three hues depends only on (scale, shape,
orientation), 480 combinations. Their anti-aliased layer weights are precomputed once (cached
per process) as ``W`` float32 [480, 64*64, 3] (wall, floor, object), so that an image is
``W[combo] @ colours`` with colours [3 layers, 3 RGB] = HSV->RGB of the hues below the sky
band (rows 0-14 are set to the sky colour): one gather and one batched 3x3 matmul per batch,
no per-image Python work.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import Factor, FactorDataset

SIZE = 64
HUES = np.linspace(0.0, 0.9, 10)
SCALES = np.linspace(0.75, 1.25, 8)
SHAPES = ("cube", "cylinder", "sphere", "capsule")
ORIENTATIONS = np.linspace(-30.0, 30.0, 15)
SATURATION = np.array([0.75, 0.75, 0.9])  # wall, floor, object

_CX, _BASE = 32.0, 52.0          # object centre column and floor contact row
_RADIUS = 8.5                    # object radius in px at scale 1
SKY_ROWS = 15                    # rows 0..14 are sky
SKY_RGB = np.array([0.62, 0.89, 0.98])
_HORIZON = 31.0                  # floor/wall boundary row at the corner
_ELEV = np.radians(20.0)         # camera elevation (looking down)
_LIGHT_ELEV = np.radians(40.0)


def hsv_to_rgb(h, s, v=1.0) -> np.ndarray:
    """Vectorised HSV -> RGB: h, s, v broadcastable arrays in [0, 1] -> [..., 3] in [0, 1]."""
    h, s, v = np.broadcast_arrays(np.asarray(h, np.float64), np.asarray(s, np.float64), np.asarray(v, np.float64))
    k = np.mod(np.array([5.0, 3.0, 1.0]) + 6.0 * h[..., None], 6.0)
    return v[..., None] * (1.0 - s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def _cov(sd):
    """Pixel coverage from a signed distance in pixels (negative inside): 1-px linear ramp."""
    return np.clip(0.5 - sd, 0.0, 1.0)


def _ellipse_sd(u, v, cx, cy, rx, ry):
    """Approximate signed distance (pixels) to an axis-aligned ellipse (first-order, e-1 / |∇e|)."""
    ex, ey = (u - cx) / rx, (v - cy) / ry
    e = np.sqrt(ex ** 2 + ey ** 2)
    g = np.sqrt((ex / rx) ** 2 + (ey / ry) ** 2) / np.maximum(e, 1e-9)
    return (e - 1.0) / np.maximum(g, 1e-9)


def _shade(nx, ny, nz, L):
    """Lambert shading 0.3 + 0.7 max(0, n·L); n in camera frame (x right, y up, z to camera)."""
    return 0.3 + 0.7 * np.maximum(0.0, nx * L[0] + ny * L[1] + nz * L[2])


def _round_normal(dx, dy):
    """Normal of a sphere-like surface at unit-radius offsets (dx right, dy down) -> (nx, ny, nz)."""
    d = np.sqrt(dx ** 2 + dy ** 2)
    k = np.where(d > 1.0, 1.0 / np.maximum(d, 1e-9), 1.0)
    dx, dy = dx * k, dy * k
    return dx, -dy, np.sqrt(np.maximum(0.0, 1.0 - dx ** 2 - dy ** 2))


def _polygon_sd(u, v, P):
    """Signed distance (exact inside, approximate outside) to convex polygons P [N, M, 2] (x, y)."""
    area = np.sum(P[:, :, 0] * np.roll(P[:, :, 1], -1, 1) - np.roll(P[:, :, 0], -1, 1) * P[:, :, 1], axis=1)
    sign = np.where(area > 0, 1.0, -1.0)[:, None, None]
    sd = None
    for i in range(P.shape[1]):  # over the polygon's edges (4), vectorised over combos and pixels
        a, b = P[:, i], P[:, (i + 1) % P.shape[1]]
        e = b - a
        n = np.hypot(e[:, 0], e[:, 1])[:, None, None]
        cross = (e[:, 0, None, None] * (v - a[:, 1, None, None]) - e[:, 1, None, None] * (u - a[:, 0, None, None]))
        d = -sign * cross / n
        sd = d if sd is None else np.maximum(sd, d)
    return sd


def _background(theta, u, v):
    """Per-orientation (wall, floor, sky) weights, each [O, H, W] (they sum to 1)."""
    t = (theta / 30.0)[:, None, None]
    xc = 32.0 - 22.0 * t                             # room corner column
    kL, kR = 0.2 - 0.1 * t, 0.2 + 0.1 * t            # floor/wall boundary slopes
    yh = _HORIZON + np.where(u < xc, kL * (xc - u), kR * (u - xc))
    sky = np.broadcast_to(_cov(v - SKY_ROWS), yh.shape)  # 1 above row 15
    floor = _cov(yh - v) * (1.0 - sky)               # 1 below the boundary
    left = _cov(u - xc)                              # 1 left of the corner
    wall_shade = left * 0.72 + (1.0 - left) * 0.92
    floor_shade = 0.78 + 0.22 * np.clip((v - _HORIZON) / (SIZE - _HORIZON), 0.0, 1.0)
    return (1.0 - floor - sky) * wall_shade, floor * floor_shade, sky


def _sphere(r, theta, u, v, L):
    """Sphere of radius r resting on the floor: (alpha, alpha*shade), each [N, H, W]."""
    dx, dy = (u - _CX) / r, (v - (_BASE - r)) / r
    a = _cov(r * (np.sqrt(dx ** 2 + dy ** 2) - 1.0))
    return a, a * _shade(*_round_normal(dx, dy), L)


def _capsule(r, theta, u, v, L):
    """Upright pill: radius 0.7 r, straight part 1.6 r (distance to a vertical segment)."""
    rc = 0.7 * r
    yb = _BASE - rc
    vv = np.clip(v, yb - 1.6 * r, yb)
    dx, dy = (u - _CX) / rc, (v - vv) / rc
    a = _cov(rc * (np.sqrt(dx ** 2 + dy ** 2) - 1.0))
    return a, a * _shade(*_round_normal(dx, dy), L)


def _cylinder(r, theta, u, v, L):
    """Upright cylinder: radius r, height 1.6 r, elliptical caps (ratio sin(elevation)), flat top."""
    q = np.sin(_ELEV)
    yb = _BASE - q * r
    yt = yb - 1.6 * r
    side = _cov(np.abs(u - _CX) - r) * np.clip(v - yt, 0.0, 1.0) * np.clip(yb - v + 1.0, 0.0, 1.0)
    bottom = _cov(_ellipse_sd(u, v, _CX, yb, r, q * r))
    top = _cov(_ellipse_sd(u, v, _CX, yt, r, q * r))
    a = np.maximum(np.maximum(side, bottom), top)
    nx = np.clip((u - _CX) / r, -1.0, 1.0)
    body = _shade(nx, 0.0, np.sqrt(1.0 - nx ** 2), L)
    cap = _shade(0.0, np.cos(_ELEV), np.sin(_ELEV), L)
    return a, a * (top * cap + (1.0 - top) * body)


def _cube(r, theta, u, v, L):
    """Cube of half side 0.68 r turned by yaw 45° + theta; its three visible faces (top, -X, +Z)
    are convex quads, each with its own flat shade."""
    h = 0.68 * r[:, 0, 0]
    psi = np.radians(45.0 + theta[:, 0, 0])
    c, sn = np.cos(psi), np.sin(psi)
    ce, se = np.cos(_ELEV), np.sin(_ELEV)

    def proj(X, Y, Z):  # object frame (units of h) -> image (x, y), [N, 2]
        Xr, Zr = (X * c + Z * sn) * h, (-X * sn + Z * c) * h
        return np.stack([_CX + Xr, _BASE - (Y * h * ce - Zr * se)], -1)

    faces = (  # corners and outward normal, object frame
        ([(-1, 2, -1), (1, 2, -1), (1, 2, 1), (-1, 2, 1)], (0, 1, 0)),
        ([(-1, 0, -1), (-1, 0, 1), (-1, 2, 1), (-1, 2, -1)], (-1, 0, 0)),
        ([(-1, 0, 1), (1, 0, 1), (1, 2, 1), (-1, 2, 1)], (0, 0, 1)),
    )
    a = s = 0.0
    for corners, (nx0, ny0, nz0) in faces:  # 3 faces, vectorised over combos and pixels
        cf = _cov(_polygon_sd(u, v, np.stack([proj(*p) for p in corners], 1)))
        nxr, nzr = nx0 * c + nz0 * sn, -nx0 * sn + nz0 * c
        n = [np.broadcast_to(x, h.shape)[:, None, None] for x in (nxr, ny0 * ce - nzr * se, ny0 * se + nzr * ce)]
        a = a + cf
        s = s + cf * _shade(*n, L)
    a = np.minimum(a, 1.0)
    return a, np.minimum(s, a)


_SHAPE_FUNCS = (_cube, _cylinder, _sphere, _capsule)  # in SHAPES order


@lru_cache(maxsize=1)
def layer_weights() -> np.ndarray:
    """W float32 [8*4*15, 64*64, 3]: (wall, floor, object) weights (zero on the sky rows 0-14)
    per (scale, shape, orientation) combination, index (scale * 4 + shape) * 15 + orientation.
    Read-only, cached per process."""
    S, K, O = len(SCALES), len(SHAPES), len(ORIENTATIONS)
    gs, gk, go = np.meshgrid(np.arange(S), np.arange(K), np.arange(O), indexing="ij")
    gs, gk, go = (g.reshape(-1, 1, 1) for g in (gs, gk, go))
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    u, v = x[None], y[None]
    theta = ORIENTATIONS[go]
    r = _RADIUS * SCALES[gs]
    az = np.radians(-40.0 + theta)
    L = np.stack([np.sin(az) * np.cos(_LIGHT_ELEV), np.full_like(az, np.sin(_LIGHT_ELEV)), np.cos(az) * np.cos(_LIGHT_ELEV)])
    wall, floor, sky = _background(ORIENTATIONS, u, v)  # [O, H, W]
    alpha = np.zeros((len(r), SIZE, SIZE))
    shaded = np.zeros_like(alpha)
    for k, draw in enumerate(_SHAPE_FUNCS):  # each shape drawn on its own combinations only
        m = gk[:, 0, 0] == k
        alpha[m], shaded[m] = draw(r[m], theta[m], u, v, L[:, m])
    shadow = _cov(_ellipse_sd(u, v, _CX - 0.8 * r * L[0], _BASE - 0.5, 1.3 * r, 0.35 * r) - 1.0)
    W = np.stack([(1.0 - alpha) * wall[go[:, 0, 0]],
                  (1.0 - alpha) * floor[go[:, 0, 0]] * (1.0 - 0.45 * shadow),
                  shaded], axis=-1)
    # the sky band is all sky: no wall, floor or object there (the object never reaches it)
    assert np.all(sky[:, :SKY_ROWS] == 1.0) and np.all(sky[:, SKY_ROWS:] == 0.0) and not alpha[:, :SKY_ROWS].any()
    W = np.ascontiguousarray(W.reshape(S * K * O, SIZE * SIZE, 3), dtype=np.float32)
    W.setflags(write=False)
    return W


@lru_cache(maxsize=1)
def _body_weights() -> np.ndarray:
    """layer_weights() below the sky band, float32 [480, (64 - 15) * 64, 3], contiguous."""
    W = np.ascontiguousarray(layer_weights()[:, SKY_ROWS * SIZE:])
    W.setflags(write=False)
    return W


class Shapes3D(FactorDataset):
    """Procedural 3dshapes-like scene (see the module docstring); no parameters, no nuisances."""

    name = "shapes3d"

    def __init__(self):
        self.factors = (
            Factor("floor_hue", 10, "circular", HUES.copy()),
            Factor("wall_hue", 10, "circular", HUES.copy()),
            Factor("object_hue", 10, "circular", HUES.copy()),
            Factor("scale", 8, "ordinal", SCALES.copy()),
            Factor("shape", 4, "categorical", np.arange(4.0)),
            Factor("orientation", 15, "ordinal", ORIENTATIONS.copy()),
        )
        self.image_shape = (SIZE, SIZE, 3)
        self.params = {}
        self.shape_names = SHAPES
        # colours [10 hues, 3 layers, 3 rgb] for the wall, floor and object saturations
        self._colours = hsv_to_rgb(HUES[:, None], SATURATION[None, :]).astype(np.float32)

    def _render(self, idx, nuisance, chunk: int = 512):
        W = _body_weights()
        combo = (idx[:, 3] * 4 + idx[:, 4]) * 15 + idx[:, 5]
        col = np.stack([self._colours[idx[:, 1], 0], self._colours[idx[:, 0], 1], self._colours[idx[:, 2], 2]], 1)
        out = np.empty((len(idx), SIZE * SIZE, 3), dtype=np.float32)
        sky = SKY_ROWS * SIZE
        out[:, :sky] = SKY_RGB.astype(np.float32)
        for s in range(0, len(idx), chunk):  # chunks keep the gathered weights in cache
            e = s + chunk
            np.matmul(W[combo[s:e]], col[s:e], out=out[s:e, sky:])  # [b, pixels, 3 layers] @ [b, 3 layers, 3 rgb]
        np.clip(out, 0.0, 1.0, out=out)
        return out.reshape(-1, SIZE, SIZE, 3)
