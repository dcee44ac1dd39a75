"""dSprites rendered procedurally, with the original's factor values and geometry, and its
colour/noise variants.

Factors (as in the original file): shape (square, ellipse, heart; categorical), scale (6 values
in [0.5, 1]), orientation (40 values in [0, 2π], both endpoints included as in the original, so
the first and last images coincide; circular), posX and posY (32 values in [0, 1]). Images are
64x64x1 and binary, no anti-aliasing: a pixel is 1 where its centre lies inside the sprite.

Geometry, as in the released dSprites (pixel-index coordinates: row r, column c; the pixel
(r, c) is lit iff the point (c, r) is inside the sprite):

- centre: column 15.5 + 32·posX, row 15.5 + 32·posY (15.5 at 0 to 47.5 at 1, 32/31 px per
  step); a 10-px square at position (0, 0) covers columns and rows 11-20;
- square: side 20·scale (10, 12, ..., 20 px; area 100 ... 400);
- ellipse: semi-axes 12.75·scale x 7.25·scale, wider than high; areas 76, 104, 144, 184,
  232, 288 px (released 76, 104, 144, 184, 228, 288), bounding box 12x8 at scale 0.5 to
  26x14 at scale 1;
- heart: (x² + y² − 1)³ ≤ 5 x² y³ with x = u / (6.4·scale), y = v / (6.7·scale) + 0.355
  (u right, v up from the centre; lobes up, point down, centred on its bounding box); areas
  58, 84, 110, 140, 180, 218 px (released 58, 84, 108, 140, 182, 222), bounding box 10 wide x
  9 high at scale 0.5 to 20 x 17 at scale 1;
- rotation about the sprite's centre; increasing orientation turns the sprite
  counter-clockwise on screen.

Every sprite fits the canvas at every orientation and position. Rendering is vectorised over
the batch in torch: per image one affine map of the pixel grid into the sprite's frame and one
inside-test, in chunks of 512 images that stay in cache, over the 32x32 window around the
sprite's centre that holds every pixel it can reach (the rest of the canvas is 0).
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Factor, FactorDataset

SIZE = 64
CENTRE_0, CENTRE_SPAN = 15.5, 32.0  # centre = 15.5 + 32 * position (pixel-index coordinates)
SQUARE_HALF = 10.0                  # half side at scale 1
ELLIPSE_AXES = (12.75, 7.25)        # semi-axes at scale 1 (horizontal, vertical)
HEART_AXES = (6.4, 6.7)             # x, y units of the implicit heart at scale 1
HEART_POWER = 5.0                   # (x² + y² − 1)³ ≤ HEART_POWER · x² y³
HEART_SHIFT = 0.355                 # y of the bounding-box centre in heart units

SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)


def dsprites_factors() -> tuple[Factor, ...]:
    return (Factor("shape", 3, "categorical", np.arange(1.0, 4.0)),
            Factor("scale", 6, "ordinal", SCALES),
            Factor("orientation", 40, "circular", ORIENTATIONS),
            Factor("posX", 32, "ordinal", POSITIONS),
            Factor("posY", 32, "ordinal", POSITIONS))


_GRID = torch.arange(SIZE, dtype=torch.float32)  # pixel-index coordinates


def render_sprites(shape: np.ndarray, scale: np.ndarray, angle: np.ndarray, px: np.ndarray, py: np.ndarray,
                   chunk: int = 512) -> np.ndarray:
    """Binary sprite masks float32 [B, 64, 64] for per-image shape index, scale, angle (rad) and
    position in [0, 1]. Pixel (row r, col c) is the point (c, r); x grows to the right, y
    downwards; the sprite is rotated counter-clockwise on screen by ``angle``.

    Every sprite lies within ``REACH · scale`` px of its centre, so where that disc fits a
    ``WINDOW``-px square inside the canvas (scale <= 1 and positions in [0, 1]: every dSprites
    image) only that square is evaluated, with the same arithmetic per pixel; the rest is 0."""
    B = len(shape)
    out = np.zeros((B, SIZE, SIZE), dtype=np.float32)
    shape, scale, angle, px, py = (np.asarray(a) for a in (shape, scale, angle, px, py))
    for s in range(0, B, chunk):
        order = s + np.argsort(shape[s:s + chunk], kind="stable")  # images grouped by shape
        sh = shape[order]
        sc = torch.as_tensor(scale[order], dtype=torch.float32)
        th = torch.as_tensor(angle[order], dtype=torch.float32)
        cx = CENTRE_0 + CENTRE_SPAN * torch.as_tensor(px[order], dtype=torch.float32)
        cy = CENTRE_0 + CENTRE_SPAN * torch.as_tensor(py[order], dtype=torch.float32)
        ox, oy = _window(cx, sc), _window(cy, sc)
        if ox is None or oy is None:  # a sprite reaches beyond any window: the whole canvas
            ox = oy = np.zeros(len(sh), dtype=np.int64)
            gx = gy = _GRID.expand(len(sh), SIZE)
        else:
            offs = torch.arange(WINDOW)
            gx, gy = _GRID[torch.from_numpy(ox)[:, None] + offs], _GRID[torch.from_numpy(oy)[:, None] + offs]
        bounds = np.searchsorted(sh, np.arange(len(SHAPES) + 1))
        mask = _inside(bounds, sc[:, None, None], th, cx[:, None, None], cy[:, None, None],
                       gx[:, None, :], gy[:, :, None]).numpy()
        n = mask.shape[1]
        for j, i in enumerate(order):  # one slice copy per image: ~1 µs, a sixth of a batched index_put's cost
            out[i, oy[j]:oy[j] + n, ox[j]:ox[j] + n] = mask[j]
    return out


REACH = 10.0 * 2 ** 0.5 + 1.0  # px at scale 1: > the square's half-diagonal (the farthest sprite point) + 1
WINDOW = 32  # px; WINDOW = SIZE evaluates the whole canvas


def _window(c: torch.Tensor, scale: torch.Tensor):
    """First pixel index [b] of a WINDOW-px span holding every pixel within REACH·scale of c,
    or None where some image's span does not fit the canvas."""
    r = REACH * scale
    o = torch.floor(c - r).clamp(0, SIZE - WINDOW)  # o <= c - r unless clamped to 0
    ok = (o + WINDOW > c + r) | (o == SIZE - WINDOW)  # and the span reaches past c + r or the canvas' end
    return o.long().numpy() if bool(ok.all()) else None


def _inside(bounds, sc, th, cx, cy, gx, gy) -> torch.Tensor:
    """Which pixels (columns gx [b, 1, W], rows gy [b, H, 1]) lie inside each sprite [b, H, W];
    the images are grouped by shape, shape k at rows bounds[k]:bounds[k + 1]."""
    cos, sin = torch.cos(th)[:, None, None] / sc, torch.sin(th)[:, None, None] / sc
    dx = gx - cx  # [b, 1, W]
    dy = cy - gy  # [b, H, 1] (y up)
    # coordinates in the sprite's frame at scale 1 (rotate by -angle, divide by scale)
    u = dx * cos + dy * sin
    v = dy * cos - dx * sin
    mask = torch.empty(u.shape, dtype=torch.bool)
    for k, name in enumerate(SHAPES):
        lo, hi = bounds[k], bounds[k + 1]
        if lo == hi:
            continue
        uk, vk = u[lo:hi], v[lo:hi]
        if name == "square":
            m = (uk.abs() <= SQUARE_HALF) & (vk.abs() <= SQUARE_HALF)
        elif name == "ellipse":
            m = (uk / ELLIPSE_AXES[0]) ** 2 + (vk / ELLIPSE_AXES[1]) ** 2 <= 1.0
        else:  # heart, point down, centred on its bounding box
            x = uk / HEART_AXES[0]
            y = vk / HEART_AXES[1] + HEART_SHIFT
            x2 = x * x
            m = (x2 + y * y - 1.0) ** 3 <= HEART_POWER * x2 * y ** 3
        mask[lo:hi] = m
    return mask


class DSprites(FactorDataset):
    """dSprites, rendered procedurally: 64x64x1 binary images (see the module docstring)."""

    name = "dsprites"

    def __init__(self):
        self.factors = dsprites_factors()
        self.image_shape = (SIZE, SIZE, 1)
        self.params = {}

    def masks(self, idx: np.ndarray) -> np.ndarray:
        """Binary sprite masks float32 [B, 64, 64]."""
        return render_sprites(idx[:, 0], SCALES[idx[:, 1]], ORIENTATIONS[idx[:, 2]],
                              POSITIONS[idx[:, 3]], POSITIONS[idx[:, 4]])

    def _render(self, idx, nuisance):
        return self.masks(idx)[..., None]


class ColorDSprites(DSprites):
    """dSprites with a random sprite colour U(0.5, 1)^3 per image on black (64x64x3), as
    disentanglement_lib's ColorDSprites. The colour is a nuisance (frozen per anchor in measures)."""

    name = "color_dsprites"
    has_nuisance = True

    def __init__(self):
        super().__init__()
        self.image_shape = (SIZE, SIZE, 3)

    def sample_nuisance(self, n, rng=None):
        return np.random.default_rng(rng).uniform(0.5, 1.0, size=(int(n), 3)).astype(np.float32)

    def _render(self, idx, nuisance):
        colour = np.asarray(nuisance, dtype=np.float32)
        return self.masks(idx)[..., None] * colour[:, None, None, :]


class NoisyDSprites(DSprites):
    """dSprites in white on a U(0, 1) noise background (64x64x3), as disentanglement_lib's
    NoisyDSprites: image = min(sprite + noise, 1). The noise image is a nuisance."""

    name = "noisy_dsprites"
    has_nuisance = True

    def __init__(self):
        super().__init__()
        self.image_shape = (SIZE, SIZE, 3)

    def sample_nuisance(self, n, rng=None):
        return np.random.default_rng(rng).random((int(n), SIZE, SIZE, 3), dtype=np.float32)

    def _render(self, idx, nuisance):
        noise = np.asarray(nuisance, dtype=np.float32)
        return np.minimum(self.masks(idx)[..., None] + noise, 1.0)

