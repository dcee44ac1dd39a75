"""Small datasets with known answers (closed-form variance structure) and the controlled
`toy_blobs` family (docs/toy-blobs.md)."""
from __future__ import annotations

import numpy as np

from ..validate import check_choice, check_float
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

    def oracle_directions(self) -> np.ndarray:
        """[K, D]: b_j, the image factor j's coefficient scales (the oracle baseline's readout)."""
        return self.basis.copy()

    def closed_form_variance(self) -> np.ndarray:
        n = self.factor_sizes.astype(np.float64)
        return self.amplitudes ** 2 * (n + 1) / (12 * (n - 1) * self.n_pixels)


class ToySquare(FactorDataset):
    """One square of side s at column x (top-left), row `top`, brightness b on a 32x32 canvas.

    Factors: size (side s ∈ {3..8} px), xpos (20 columns), brightness (8 levels in [0.3, 1]).
    Brightness variance at an anchor grows like s², position variance like b²·s, so the local
    order of brightness and size flips across the grid (large dim squares vs small bright ones):
    the "colour vs size" example of inconsistency. Brightness stays below position everywhere.
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
    """Two Gaussian blobs g_A, g_B (σ = 2 px, truncated at radius 4 so they never overlap) on a
    16x16 canvas; their brightnesses are factors A and B (24 centred levels v ∈ [−½, ½]):

        x = ½ + a · v_A · g_A + a · r · ρ(t_A) · v_B · g_B,     t_A = c_A / 23 ∈ [0, 1].

    A's amplitude ``a`` (``amplitude``) is fixed: it does not depend on r, profile or spread.
    B's amplitude is a·r·ρ(t_A), with the profile ρ:
    - ``none``: ρ = 1 (spread 1): a constant ratio r (a consistent variance gap);
    - ``noflip``: ρ(t) = spread^(2t−1): the gap changes with A but the local variance order of
      A and B is the same at every grid point;
    - ``flip``: ρ(t) = spread^(2t−1) with the order inverting across A's range (at every value
      of B, the order at A's lowest level is the opposite of that at its highest).
    "Local variance" is the traversal variance V[c, j] that ``measure_dataset`` measures; A's
    traversal also moves B's blob (its amplitude changes with A), so (G_j = Σ g_j², D = 256)
        V_A(c) = a² (var(v) G_A + r² v_B² var_t(ρ) G_B) / D,   V_B(c) = a² r² ρ(t_A)² var(v) G_B / D,
    var over the 24 levels (ddof 0). Defaults: flip spread 2·max(r, 1/r); noflip spread √s_max,
    s_max the largest spread whose order never flips (1/r for r < 1; none for r = 1).
    No per-dataset normalisation: pixels lie in ½ ± ½·a·max(1, max r·ρ)·max g (``value_range``;
    max g = e^(−1/16) at the half-pixel centres); a setting that would leave [0, 1] is refused
    (the trainer's Bernoulli and Gaussian decoders both output σ(logits) ∈ (0, 1)), naming the
    largest amplitude that fits: a study fixes one amplitude for all its settings.
    """

    name = "toy_blobs"
    N_LEVELS = 24
    SIGMA = 2.0
    RADIUS = 4.0
    CENTRES = ((7.5, 3.5), (7.5, 11.5))

    def __init__(self, r: float = 2.0, profile: str = "none", spread: float | None = None,
                 amplitude: float = 0.4):
        r = check_float("toy_blobs: r", r, 0.0, lo_open=True, error=DatasetError)
        amplitude = check_float("toy_blobs: amplitude", amplitude, 0.0, lo_open=True, error=DatasetError)
        check_choice("toy_blobs: profile", profile, PROFILES, error=DatasetError)
        levels = np.linspace(-0.5, 0.5, self.N_LEVELS)
        self.levels = levels
        self.t = np.arange(self.N_LEVELS) / (self.N_LEVELS - 1)
        self.blobs = gaussian_blobs(self.CENTRES, self.SIGMA, self.RADIUS)  # [2, D]
        self.r, self.profile, self.amplitude = r, profile, amplitude
        if spread is None:
            spread = self._default_spread(r, profile)
        else:
            spread = check_float("toy_blobs: spread", spread, 1.0, error=DatasetError)
        if profile == "none" and spread != 1.0:
            raise DatasetError(f"toy_blobs: profile none has spread 1, got {spread}")
        if profile != "none" and not spread > 1.0:
            raise DatasetError(f"toy_blobs: profile {profile} needs spread > 1 (got {spread})")
        self.spread = spread
        self.ratio = self._ratio(spread)  # B's amplitude / A's, per level of A
        order = self._order(spread)
        if profile == "noflip" and not _constant(order):
            raise DatasetError(f"toy_blobs: noflip with r={r}, spread={spread:.4g} flips the local variance order "
                               f"(the largest spread that does not: {self._max_noflip_spread():.4g})")
        if profile == "flip" and not np.all(order[0] * order[-1] < 0):
            raise DatasetError(f"toy_blobs: flip with r={r}, spread={spread:.4g} does not invert the local variance "
                               "order across A's range at every value of B (try a larger spread)")
        peak = max(1.0, float(self.ratio.max())) * float(self.blobs.max())
        if amplitude * peak > 1.0:
            raise DatasetError(f"toy_blobs: amplitude {amplitude} with r={r}, profile={profile}, spread={spread:.4g} "
                               f"takes pixels outside [0, 1]; use amplitude <= {1.0 / peak:.4g}")
        self.factors = (Factor("A", self.N_LEVELS, "ordinal", levels), Factor("B", self.N_LEVELS, "ordinal", levels))
        self.image_shape = (16, 16, 1)
        self.params = {"r": r, "profile": profile, "spread": spread, "amplitude": amplitude}

    # ---- the profile and its closed forms ---------------------------------------------------
    def _ratio(self, spread: float) -> np.ndarray:
        return self.r * spread ** (2 * self.t - 1)

    def _local(self, spread: float) -> np.ndarray:
        """V [24 (c_A), 24 (c_B), 2] over the whole grid."""
        rho = self._ratio(spread)
        vv = self.levels.var()
        gA, gB = (self.blobs ** 2).sum(1)
        a2 = self.amplitude ** 2 / self.blobs.shape[1]
        VA = a2 * (vv * gA + self.levels[None, :] ** 2 * rho.var() * gB) * np.ones((self.N_LEVELS, 1))
        VB = a2 * rho[:, None] ** 2 * vv * gB * np.ones((1, self.N_LEVELS))
        return np.stack([VA, VB], axis=-1)

    def _order(self, spread: float) -> np.ndarray:
        """sign(V_B − V_A) [24 (c_A), 24 (c_B)]."""
        V = self._local(spread)
        return np.sign(V[..., 1] - V[..., 0])

    def _max_noflip_spread(self) -> float:
        """Largest spread at which the order never flips."""
        return largest_spread(lambda sp: _constant(self._order(sp)))

    def _default_spread(self, r: float, profile: str) -> float:
        return default_spread("toy_blobs", r, profile, self._max_noflip_spread)

    def amplitudes(self, idx) -> np.ndarray:
        """Amplitudes (a_A, a_B) = (a, a·r·ρ(t_A)) at each point, float64 [B, 2]."""
        idx = self.validate_indices(idx)
        return self.amplitude * np.stack([np.ones(len(idx)), self.ratio[idx[:, 0]]], axis=1)

    def local_variance(self, idx) -> np.ndarray:
        """Closed-form traversal variance V [B, 2] (A, B) at the points ``idx`` [B, 2]."""
        idx = self.validate_indices(idx)
        return self._local(self.spread)[idx[:, 0], idx[:, 1]]

    def variance(self) -> dict:
        """Closed-form variance structure over the uniform factor grid: ``total`` (mean over
        pixels of each pixel's variance, a² var(v) (G_A + r² E[ρ²] G_B) / D) and per factor the
        mean local traversal variance ``A``, ``B`` (``measure_dataset``'s global_variance with
        every grid point as an anchor), their ``share_A`` / ``share_B``, and the range of the
        local ratio V_B / V_A (``ratio_min``, ``ratio_max``)."""
        V = self._local(self.spread)
        gA, gB = (self.blobs ** 2).sum(1)
        total = self.amplitude ** 2 * self.levels.var() * (gA + (self.ratio ** 2).mean() * gB) / self.blobs.shape[1]
        G = V.reshape(-1, 2).mean(0)
        q = V[..., 1] / V[..., 0]
        return {"total": float(total), "A": float(G[0]), "B": float(G[1]), "share_A": float(G[0] / G.sum()),
                "share_B": float(G[1] / G.sum()), "ratio_min": float(q.min()), "ratio_max": float(q.max())}

    @property
    def value_range(self) -> tuple[float, float]:
        """(min, max) pixel value over the grid."""
        half = 0.5 * self.amplitude * max(1.0, float(self.ratio.max())) * float(self.blobs.max())
        return 0.5 - half, 0.5 + half

    def _render(self, idx, nuisance):
        coef = self.amplitudes(idx) * self.levels[idx]
        x = 0.5 + coef @ self.blobs
        return x.astype(np.float32).reshape((-1,) + self.image_shape)

    def oracle_directions(self) -> np.ndarray:
        """[2, D]: the blobs g_A, g_B whose brightness A and B set (the oracle baseline's readout)."""
        return self.blobs.copy()


PROFILES = ("none", "noflip", "flip")


def largest_spread(keeps_order) -> float:
    """The largest spread s >= 1 with ``keeps_order(s)`` true (true up to some s, false beyond),
    by bisection on log s to 60 halvings; 1 where ``keeps_order(1)`` is false."""
    if not keeps_order(1.0):
        return 1.0
    lo, hi = 0.0, 1.0  # log spread
    while keeps_order(np.exp(hi)) and hi < 50:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if keeps_order(np.exp(mid)) else (lo, mid)
    return float(np.exp(lo))


def default_spread(name: str, r: float, profile: str, max_noflip) -> float:
    """A profile's default spread: none 1, flip 2·max(r, 1/r), noflip √s_max (``max_noflip()``)."""
    if profile == "none":
        return 1.0
    if profile == "flip":
        return 2.0 * max(r, 1.0 / r)
    s_max = max_noflip()
    if not s_max > 1.0 + 1e-9:
        raise DatasetError(f"{name}: noflip at r={r} has no spread > 1 that keeps the local variance order "
                           "(use r away from 1)")
    return float(np.sqrt(s_max))


def gaussian_blobs(centres, sigma: float, radius: float, side: int = 16) -> np.ndarray:
    """[len(centres), side²] float64: exp(−d²/2σ²) around each (row, col) centre, 0 beyond
    ``radius`` (pixel centres at integer coordinates)."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    out = []
    for cy, cx in centres:
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        out.append(np.where(d2 <= radius ** 2, np.exp(-d2 / (2 * sigma ** 2)), 0.0).ravel())
    return np.stack(out)


def _constant(order: np.ndarray) -> bool:
    """True when every sign is the same non-zero value (no tie, no flip)."""
    return bool(np.all(order == 1) or np.all(order == -1))
