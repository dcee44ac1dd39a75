"""``toy_context``: a controlled family whose profiles differ only in the local consistency of
the variance order of A and B, with matched global variance shares and no A→B cross term.

Three Gaussian blobs g_A, g_B, g_C (σ = 2 px, truncated at radius 4 px, non-overlapping) on a
16×16×1 canvas; their brightnesses are the factors A, B and C (24 centred levels v ∈ [−½, ½]
each, ordinal). With t_C = c_C / 23 ∈ [0, 1] the position of C in its range:

    x = ½ + a·v_A·g_A + a·ρ(t_C)·v_B·g_B + a_C·v_C·g_C

B's amplitude is driven by the *context* factor C, not by A: traversing A changes A's blob
only (no cross term between A and B). The profile ρ(t) = k·s^(2t−1), with k chosen so that
E_t[ρ²] = r² for every spread s:

- ``none``: s = 1, ρ ≡ r: B's local variance is r² times A's everywhere;
- ``noflip``: ρ varies with C, but the local order of A and B is the same at every grid point;
- ``flip``: the order inverts across C's range (ρ(0) < 1 < ρ(1)).

Closed forms (G_j = Σ g_j², equal for the three blobs; D = 256; var over the 24 levels):

    V_A(c) = a² var(v) G / D                                         (constant)
    V_B(c) = a² ρ(t_C)² var(v) G / D                                 (depends on C only)
    V_C(c) = (a_C² var(v) + a² v_B² var_t(ρ)) G / D                  (the C→B cross term)

so the global variances are a² var(v) G / D · (1, r², q²) for *every* profile when
a_C = a·sqrt(q² − var_t(ρ)): C's own amplitude shrinks by exactly the cross term that the
profile adds to C's traversal. The shares of A, B and C are equal across none / noflip / flip
at one (r, q): the profiles differ in the local consistency of B's variance (and in how much
of C's variance comes from B's blob), nothing else in the global variance structure.
The C→B cross term cannot be removed (C drives B's amplitude); it is reported
(``variance()["cross_C"]``) and matched in C's total.

Parameters: ``r`` (B/A, the root mean square of ρ; default 2), ``profile``, ``spread``
(default: none 1, noflip √s_max with s_max the largest spread whose order never flips, flip
2·max(r, 1/r)), ``amplitude`` (a, default 0.2), ``c_ratio`` (q, C's global variance relative to
A's, as a ratio of amplitudes; default 1.1·√var_t(ρ) of the flip profile at this r, so all three
profiles of one r share it). Settings that do not do what their profile says, need a negative
a_C², or take pixels outside [0, 1] are refused (DatasetError naming the limit).
"""
from __future__ import annotations

import numpy as np

from ..validate import check_choice, check_float
from .base import DatasetError, Factor, FactorDataset
from .toys import _constant, default_spread, gaussian_blobs, largest_spread

PROFILES = ("none", "noflip", "flip")


class ToyContext(FactorDataset):
    """See the module docstring."""

    name = "toy_context"
    N_LEVELS = 24
    SIGMA = 2.0
    RADIUS = 4.0
    CENTRES = ((3.5, 3.5), (3.5, 11.5), (11.5, 7.5))  # A, B, C: pairwise >= 8 px apart

    def __init__(self, r: float = 2.0, profile: str = "none", spread: float | None = None, amplitude: float = 0.2,
                 c_ratio: float | None = None):
        r = check_float("toy_context: r", r, 0.0, lo_open=True, error=DatasetError)
        amplitude = check_float("toy_context: amplitude", amplitude, 0.0, lo_open=True, error=DatasetError)
        check_choice("toy_context: profile", profile, PROFILES, error=DatasetError)
        self.levels = np.linspace(-0.5, 0.5, self.N_LEVELS)
        self.t = np.arange(self.N_LEVELS) / (self.N_LEVELS - 1)
        self.blobs = gaussian_blobs(self.CENTRES, self.SIGMA, self.RADIUS)  # [3, D]
        self.r, self.profile, self.amplitude = r, profile, amplitude
        if spread is None:
            spread = self._default_spread(profile)
        else:
            spread = check_float("toy_context: spread", spread, 1.0, error=DatasetError)
        if profile == "none" and spread != 1.0:
            raise DatasetError(f"toy_context: profile none has spread 1, got {spread}")
        if profile != "none" and not spread > 1.0:
            raise DatasetError(f"toy_context: profile {profile} needs spread > 1 (got {spread})")
        self.spread = spread
        self.rho = self._rho(spread)
        order = np.sign(self.rho ** 2 - 1.0)  # sign(V_B − V_A) along C (the blobs' energies G are equal)
        if profile == "noflip" and not _constant(order):
            raise DatasetError(f"toy_context: noflip with r={r}, spread={spread:.4g} flips the local variance order "
                               f"(the largest spread that does not: {self._max_noflip_spread():.4g})")
        if profile == "flip" and not order[0] * order[-1] < 0:
            raise DatasetError(f"toy_context: flip with r={r}, spread={spread:.4g} does not invert the local variance "
                               "order across C's range (try a larger spread)")
        if c_ratio is None:
            c_ratio = 1.1 * float(np.sqrt(self._rho(self._default_spread("flip")).var()))
        c_ratio = check_float("toy_context: c_ratio", c_ratio, 0.0, lo_open=True, error=DatasetError)
        own = c_ratio ** 2 - self.rho.var()
        if own <= 0:
            raise DatasetError(f"toy_context: c_ratio {c_ratio:.4g} is below the C->B cross term of this profile; "
                               f"use c_ratio > {np.sqrt(self.rho.var()):.4g}")
        self.c_ratio = c_ratio
        self.amplitude_c = amplitude * float(np.sqrt(own))
        peak = max(amplitude, amplitude * float(self.rho.max()), self.amplitude_c) * float(self.blobs.max())
        if peak > 1.0:
            raise DatasetError(f"toy_context: amplitude {amplitude} with r={r}, profile={profile}, spread={spread:.4g} "
                               f"takes pixels outside [0, 1]; use amplitude <= {amplitude / peak:.4g}")
        self.factors = tuple(Factor(n, self.N_LEVELS, "ordinal", self.levels) for n in ("A", "B", "C"))
        self.image_shape = (16, 16, 1)
        self.params = {"r": r, "profile": profile, "spread": spread, "amplitude": amplitude, "c_ratio": c_ratio}

    # ---- the profile and its closed forms ---------------------------------------------------
    def _rho(self, spread: float) -> np.ndarray:
        """ρ(t) = k·s^(2t−1) over C's 24 levels, k such that mean ρ² = r²."""
        shape = spread ** (2 * self.t - 1)
        return self.r * shape / np.sqrt(np.mean(shape ** 2))

    def _max_noflip_spread(self) -> float:
        """Largest spread whose order never flips (ρ stays on one side of 1); 1 if none."""
        return largest_spread(lambda sp: _constant(np.sign(self._rho(sp) ** 2 - 1.0)))

    def _default_spread(self, profile: str) -> float:
        return default_spread("toy_context", self.r, profile, self._max_noflip_spread)

    def amplitudes(self, idx) -> np.ndarray:
        """(a_A, a_B, a_C) = (a, a·ρ(t_C), a_C) at each point, float64 [n, 3]."""
        idx = self.validate_indices(idx)
        n = len(idx)
        return np.stack([np.full(n, self.amplitude), self.amplitude * self.rho[idx[:, 2]],
                         np.full(n, self.amplitude_c)], axis=1)

    def local_variance(self, idx) -> np.ndarray:
        """Closed-form traversal variance V [n, 3] (A, B, C) at the points ``idx`` [n, 3]."""
        idx = self.validate_indices(idx)
        vv = self.levels.var()
        G = (self.blobs ** 2).sum(1)
        D = self.blobs.shape[1]
        a2 = self.amplitude ** 2
        VA = np.full(len(idx), a2 * vv * G[0] / D)
        VB = a2 * self.rho[idx[:, 2]] ** 2 * vv * G[1] / D
        VC = (self.amplitude_c ** 2 * vv * G[2] + a2 * self.levels[idx[:, 1]] ** 2 * self.rho.var() * G[1]) / D
        return np.stack([VA, VB, VC], axis=1)

    def variance(self) -> dict:
        """Closed-form variance structure over the uniform factor grid: per factor the mean local
        traversal variance ``A``, ``B``, ``C`` (``measure_dataset``'s global_variance with every grid
        point an anchor), ``share_A``/``share_B``/``share_C``, the range of V_B / V_A
        (``ratio_min``, ``ratio_max``), ``cross_C`` (the part of C's global variance that is B's
        blob moving), ``cross_A`` (0: A's traversal moves no other blob) and ``total`` (mean over
        pixels of each pixel's variance)."""
        vv = self.levels.var()
        G = (self.blobs ** 2).sum(1)
        D = self.blobs.shape[1]
        a2 = self.amplitude ** 2
        A = a2 * vv * G[0] / D
        B = a2 * np.mean(self.rho ** 2) * vv * G[1] / D
        cross = a2 * vv * self.rho.var() * G[1] / D  # E[v_B²] = var(v): the levels are centred
        C = self.amplitude_c ** 2 * vv * G[2] / D + cross
        total = (a2 * vv * G[0] + a2 * np.mean(self.rho ** 2) * vv * G[1] + self.amplitude_c ** 2 * vv * G[2]) / D
        S = A + B + C
        q = self.rho ** 2 * G[1] / G[0]
        return {"A": float(A), "B": float(B), "C": float(C), "share_A": float(A / S), "share_B": float(B / S),
                "share_C": float(C / S), "ratio_min": float(q.min()), "ratio_max": float(q.max()),
                "cross_A": 0.0, "cross_C": float(cross), "total": float(total)}

    @property
    def value_range(self) -> tuple[float, float]:
        half = 0.5 * max(self.amplitude, self.amplitude * float(self.rho.max()), self.amplitude_c) * float(self.blobs.max())
        return 0.5 - half, 0.5 + half

    def _render(self, idx, nuisance):
        coef = self.amplitudes(idx) * self.levels[idx]
        x = 0.5 + coef @ self.blobs
        return x.astype(np.float32).reshape((-1,) + self.image_shape)

    def oracle_directions(self) -> np.ndarray:
        """[3, D]: the blobs g_A, g_B, g_C whose brightness A, B and C set (the oracle baseline's
        readout; B's blob is also scaled by ρ(C))."""
        return self.blobs.copy()
