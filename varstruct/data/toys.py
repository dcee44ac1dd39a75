"""Small datasets with known answers (MEASURES.md §3) and the controlled `toy_blobs` family."""
from __future__ import annotations

import numpy as np

from .base import DatasetError, Factor, FactorDataset


def _as_tuple(x, name, cast=float):
    try:
        return tuple(cast(v) for v in (x if np.ndim(x) else [x]))
    except (TypeError, ValueError):
        raise DatasetError(f"{name} must be a number or a list of numbers, got {x!r}") from None


class ToyLinear(FactorDataset):
    """x(c) = 0.5 + Σ_j a_j · u_j(c_j) · b_j on a side×side×1 image.

    u_j(t) = t/(n_j−1) − 1/2 is linear in the index; b_j are orthonormal images (indicators of
    disjoint pixel blocks of m = D // K pixels, divided by √m). Closed forms (D = side²):
    traversal variance V[a, j] = a_j² (n_j+1) / (12 (n_j−1) D) at every anchor, and the
    coefficient ⟨x − 0.5, b_j⟩ = a_j u_j(c_j) reads factor j back exactly.
    """

    name = "toy_linear"

    def __init__(self, amplitudes=(2.0, 1.5, 1.0), sizes=(10, 10, 10), side: int = 16):
        amplitudes = _as_tuple(amplitudes, "amplitudes")
        sizes = _as_tuple(sizes, "sizes", int)
        if len(amplitudes) != len(sizes):
            raise DatasetError(f"toy_linear: {len(amplitudes)} amplitudes for {len(sizes)} sizes")
        if any(s < 2 for s in sizes):
            raise DatasetError("toy_linear: every factor size must be >= 2")
        side = int(side)
        D = side * side
        K = len(sizes)
        if K < 1 or D // K < 1:
            raise DatasetError(f"toy_linear: {K} factors do not fit a {side}x{side} image")
        m = D // K
        if any(a < 0 or a > np.sqrt(m) for a in amplitudes):
            raise DatasetError(f"toy_linear: amplitudes must lie in [0, {np.sqrt(m):.3g}] (√ of the block size) to keep pixels in [0, 1]")
        self.amplitudes = np.array(amplitudes, dtype=np.float64)
        self.factors = tuple(Factor(f"f{j}", s, "ordinal") for j, s in enumerate(sizes))
        self.image_shape = (side, side, 1)
        self.block = m
        basis = np.zeros((K, D), dtype=np.float64)
        for j in range(K):
            basis[j, j * m:(j + 1) * m] = 1.0 / np.sqrt(m)
        self.basis = basis  # [K, D], orthonormal rows
        self.params = {"amplitudes": list(amplitudes), "sizes": list(sizes), "side": side}

    def coefficients(self, idx) -> np.ndarray:
        """a_j u_j(c_j), float64 [B, K]."""
        idx = self.validate_indices(idx)
        u = idx / (self.factor_sizes - 1.0) - 0.5
        return u * self.amplitudes

    def _render(self, idx, nuisance):
        x = 0.5 + self.coefficients(idx) @ self.basis
        return x.astype(np.float32).reshape((-1,) + self.image_shape)

    def closed_form_variance(self) -> np.ndarray:
        n = self.factor_sizes.astype(np.float64)
        return self.amplitudes ** 2 * (n + 1) / (12 * (n - 1) * self.n_pixels)


class ToySquare(FactorDataset):
    """One square of side s at column x (top-left), row `top`, brightness b on a 32x32 canvas.

    Factors: size (side s ∈ {3..8} px), xpos (20 columns), brightness (8 levels in [0.3, 1]).
    Brightness variance at an anchor grows like s², position variance like b²·s, so the
    local order of the two flips with size: the "colour vs size" example of inconsistency.
    """

    name = "toy_square"
    SIDES = np.arange(3, 9)
    BRIGHTNESS = np.linspace(0.3, 1.0, 8)
    TOP = 12

    def __init__(self, canvas: int = 32):
        canvas = int(canvas)
        if canvas < 27:
            raise DatasetError("toy_square: canvas must be >= 27 px to hold the largest square at every position")
        self.factors = (Factor("size", 6, "ordinal", self.SIDES.astype(float)),
                        Factor("xpos", 20, "ordinal", np.arange(20.0)),
                        Factor("brightness", 8, "ordinal", self.BRIGHTNESS))
        self.image_shape = (canvas, canvas, 1)
        self.params = {"canvas": canvas}

    def _render(self, idx, nuisance):
        H = self.image_shape[0]
        side = self.SIDES[idx[:, 0]][:, None]
        x0 = idx[:, 1][:, None]
        b = self.BRIGHTNESS[idx[:, 2]].astype(np.float32)
        r = np.arange(H)[None]
        cols = (r >= x0) & (r < x0 + side)
        rows = (r >= self.TOP) & (r < self.TOP + side)
        img = (rows[:, :, None] & cols[:, None, :]).astype(np.float32) * b[:, None, None]
        return img[..., None]


class ToyBlobs(FactorDataset):
    """Two Gaussian blobs (σ = 2 px, support truncated at radius 4 so they never overlap) on a
    16x16 canvas; their brightnesses are factors A and B (24 centred levels v ∈ [−½, ½]).

    Pixel = ½ + s·(v_A g_A + ρ(t_A) v_B g_B), with blob profiles g (peak 1), t_A = c_A/23 and
    the amplitude ratio ρ(t) = r · spread^(2t−1):
    - profile ``none``: spread = 1, B is r times A everywhere (a consistent variance gap);
    - ``noflip``: B stays stronger than A everywhere (r/spread > 1) by a margin that varies with A;
    - ``flip``: B is weaker than A for small A and stronger for large A (r/spread < 1 < r·spread).
    s = 0.9 / max(1, max_t ρ(t)) keeps pixels in [0.05, 0.95].
    """

    name = "toy_blobs"
    N_LEVELS = 24
    SIGMA = 2.0
    RADIUS = 4.0
    CENTRES = ((7.5, 3.5), (7.5, 11.5))

    def __init__(self, r: float = 2.0, profile: str = "none", spread: float | None = None):
        r = float(r)
        if not r > 0:
            raise DatasetError(f"toy_blobs: amplitude ratio r must be > 0, got {r}")
        if profile not in ("none", "noflip", "flip"):
            raise DatasetError(f"toy_blobs: profile must be none, noflip or flip, got {profile!r}")
        if spread is None:
            spread = {"none": 1.0, "noflip": np.sqrt(r) if r > 1 else 1.0, "flip": 2.0 * max(r, 1.0 / r)}[profile]
        spread = float(spread)
        if profile == "none" and spread != 1.0:
            raise DatasetError("toy_blobs: profile none has spread 1")
        if profile == "noflip" and not (spread >= 1.0 and r / spread > 1.0):
            raise DatasetError(f"toy_blobs: noflip needs B stronger everywhere: r / spread > 1 (r={r}, spread={spread})")
        if profile == "flip" and not (r / spread < 1.0 < r * spread):
            raise DatasetError(f"toy_blobs: flip needs r / spread < 1 < r · spread (r={r}, spread={spread})")
        self.r, self.profile, self.spread = r, profile, spread
        levels = np.linspace(-0.5, 0.5, self.N_LEVELS)
        self.levels = levels
        self.factors = (Factor("A", self.N_LEVELS, "ordinal", levels), Factor("B", self.N_LEVELS, "ordinal", levels))
        self.image_shape = (16, 16, 1)
        yy, xx = np.mgrid[0:16, 0:16].astype(np.float64)
        blobs = []
        for cy, cx in self.CENTRES:
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            blobs.append(np.where(d2 <= self.RADIUS ** 2, np.exp(-d2 / (2 * self.SIGMA ** 2)), 0.0).ravel())
        self.blobs = np.stack(blobs)  # [2, D]
        t = np.arange(self.N_LEVELS) / (self.N_LEVELS - 1)
        self.ratio = r * spread ** (2 * t - 1)  # amplitude of B relative to A, per value of A
        self.scale = 0.9 / max(1.0, float(self.ratio.max()))
        self.params = {"r": r, "profile": profile, "spread": spread}

    def amplitudes(self, idx) -> np.ndarray:
        """Effective amplitudes (a_A, a_B) at each point, float64 [B, 2]."""
        idx = self.validate_indices(idx)
        return np.stack([np.full(len(idx), self.scale), self.scale * self.ratio[idx[:, 0]]], axis=1)

    def _render(self, idx, nuisance):
        coef = self.amplitudes(idx) * self.levels[idx]
        x = 0.5 + coef @ self.blobs
        return x.astype(np.float32).reshape((-1,) + self.image_shape)
