"""dSprites rendered procedurally, with the original's factor values, and its colour/noise variants.

Factors (as in the original file): shape (square, ellipse, heart; categorical), scale (6 values
in [0.5, 1]), orientation (40 values in [0, 2π], both endpoints included as in the original, so
the first and last images coincide; circular), posX and posY (32 values in [0, 1]). Images are
64x64x1 and binary: a pixel is 1 where its centre lies inside the sprite.

Geometry: at scale 1 the square has side 14 px, the ellipse semi-axes 10 x 5 px and the heart a
width of about 17 px; the sprite centre moves linearly over [11, 53] px with posX/posY, so
every sprite fits the canvas at every orientation. Rendering is vectorised over the batch in
torch: per image one affine map of the pixel grid into the sprite's frame and one inside-test,
in chunks of 512 images that stay in cache.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Factor, FactorDataset

SIZE = 64
MARGIN = 11.0
SQUARE_HALF = 7.0
ELLIPSE_AXES = (10.0, 5.0)
HEART_SCALE = 7.5  # the implicit heart spans about [-1.14, 1.14] units horizontally

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


_GRID = (torch.arange(SIZE, dtype=torch.float32) + 0.5)


def render_sprites(shape: np.ndarray, scale: np.ndarray, angle: np.ndarray, px: np.ndarray, py: np.ndarray,
                   chunk: int = 512) -> np.ndarray:
    """Binary sprite masks float32 [B, 64, 64] for per-image shape index, scale, angle (rad) and
    position in [0, 1]. Pixel (row r, col c) has centre (c + ½, r + ½); x grows to the right,
    y downwards; the sprite is rotated counter-clockwise on screen by ``angle``."""
    B = len(shape)
    out = np.empty((B, SIZE, SIZE), dtype=np.float32)
    g = _GRID
    for s in range(0, B, chunk):
        sl = slice(s, min(s + chunk, B))
        sh = torch.from_numpy(np.asarray(shape[sl]))
        sc = torch.as_tensor(scale[sl], dtype=torch.float32)[:, None, None]
        th = torch.as_tensor(angle[sl], dtype=torch.float32)
        cx = (MARGIN + torch.as_tensor(px[sl], dtype=torch.float32) * (SIZE - 2 * MARGIN))[:, None, None]
        cy = (MARGIN + torch.as_tensor(py[sl], dtype=torch.float32) * (SIZE - 2 * MARGIN))[:, None, None]
        cos, sin = torch.cos(th)[:, None, None] / sc, torch.sin(th)[:, None, None] / sc
        dx = g[None, None, :] - cx  # [b, 1, W]
        dy = cy - g[None, :, None]  # [b, H, 1] (y up)
        # coordinates in the sprite's frame (rotate by -angle, divide by scale)
        u = dx * cos + dy * sin
        v = dy * cos - dx * sin
        mask = torch.empty(u.shape, dtype=torch.bool)
        for k, name in enumerate(SHAPES):
            sel = (sh == k).nonzero().squeeze(1)
            if len(sel) == 0:
                continue
            uk, vk = u[sel], v[sel]
            if name == "square":
                m = (uk.abs() <= SQUARE_HALF) & (vk.abs() <= SQUARE_HALF)
            elif name == "ellipse":
                m = (uk / ELLIPSE_AXES[0]) ** 2 + (vk / ELLIPSE_AXES[1]) ** 2 <= 1.0
            else:  # heart: (x² + y² − 1)³ − x² y³ ≤ 0, point down, centred on its bounding box
                x = uk / HEART_SCALE
                y = vk / HEART_SCALE + 0.125
                x2 = x * x
                m = (x2 + y * y - 1.0) ** 3 <= x2 * y ** 3
            mask[sel] = m
        out[sl] = mask.numpy()
    return out


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

