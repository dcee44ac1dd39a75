"""Finite-sample PCA: how often the top principal direction of a sample of ``toy_linear`` images
aligns with a factor axis, against the variance ratio of the two factors and the sample size.

Data (computed directly, no zoo): ``toy_linear`` with two factors of 16 values each on a 16×16
canvas, amplitudes (a_1, a_2) = (a·√ρ, a) with a = 2, so that the variance ratio of the factors is
G_1 / G_2 = ρ. For each (ρ, n) we draw ``R`` independent samples of n factor vectors (uniform on
the grid, seeded) and compute the principal directions of the centred images. The images are
x = ½ + c_1 b_1 + c_2 b_2 with orthonormal basis images b_j, so the image covariance is
B^T C B with C the 2×2 sample covariance of the coefficients c: the top principal direction is
u = cos θ b_1 + sin θ b_2 with θ = ½ atan2(2 C_12, C_11 − C_22) (exact, checked against an
SVD of the images in tests/test_analysis.py). The *misalignment* is the angle from u to the
nearest factor axis, min(|θ| mod 90°, 90° − |θ| mod 90°) ∈ [0°, 45°]; a sample is *aligned* when
it is below 10°. A uniformly random θ would be aligned with probability 20/90 ≈ 0.22 (dotted);
with no variance gap (ρ = 1) and uniformly distributed factor values, θ is not uniform but
favours 45° (the fourth moment of a uniform variable is below the Gaussian's, so C_11 − C_22
fluctuates less than 2 C_12), and the aligned share lies below that line.
Left: share of aligned samples (Wilson 95% intervals); right: median misalignment.
"""
from __future__ import annotations

import numpy as np

from ._common import new_figure, save

RATIOS = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
SIZES = (16, 64, 256, 1024)
TOLERANCE = 10.0  # degrees


def misalignment(coeffs: np.ndarray) -> np.ndarray:
    """coeffs [R, n, 2] -> the angle (degrees, [0, 45]) of each sample's top principal direction
    from the nearest factor axis."""
    c = coeffs - coeffs.mean(axis=1, keepdims=True)
    n = coeffs.shape[1]
    C = np.einsum("rni,rnj->rij", c, c) / n
    theta = 0.5 * np.degrees(np.arctan2(2 * C[:, 0, 1], C[:, 0, 0] - C[:, 1, 1]))
    t = np.abs(theta) % 90.0
    return np.minimum(t, 90.0 - t)


def simulate(ratios=RATIOS, sizes=SIZES, repeats: int = 400, n_values: int = 16, seed: int = 0,
             amplitude: float = 2.0) -> np.ndarray:
    """Misalignment angles [len(ratios), len(sizes), repeats] (degrees) of toy_linear samples."""
    import varstruct

    out = np.empty((len(ratios), len(sizes), repeats))
    for i, rho in enumerate(ratios):
        ds = varstruct.datasets.get("toy_linear", amplitudes=(amplitude * np.sqrt(rho), amplitude),
                                    sizes=(n_values, n_values), side=16)
        for k, n in enumerate(sizes):
            rng = np.random.default_rng([seed, i, k])
            idx = ds.sample_factors(repeats * n, rng)
            out[i, k] = misalignment(ds.coefficients(idx).reshape(repeats, n, 2))
    return out


def wilson(k, n, z=1.96):
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return centre - half, centre + half


def plot(angles, ratios=RATIOS, sizes=SIZES, fig=None):
    fig = fig or new_figure(figsize=(9.0, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    R = angles.shape[-1]
    for k, n in enumerate(sizes):
        hit = (angles[:, k] < TOLERANCE).sum(-1)
        lo, hi = wilson(hit, R)
        ax1.plot(ratios, hit / R, "o-", ms=3, label=f"n = {n}", color=f"C{k}")
        ax1.fill_between(ratios, lo, hi, alpha=0.2, color=f"C{k}")
        ax2.plot(ratios, np.median(angles[:, k], -1), "o-", ms=3, color=f"C{k}", label=f"n = {n}")
    ax1.axhline(2 * TOLERANCE / 90, ls=":", color="gray", label="uniform θ (20/90)")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(ratios, [f"{r:g}" for r in ratios], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("variance ratio G1 / G2")
    ax1.set_ylabel(f"share of samples aligned (< {TOLERANCE:g}°)")
    ax1.set_ylim(0, 1.02)
    ax2.set_ylabel("median angle to nearest factor axis (°)")
    ax2.set_ylim(0, 45)
    ax1.legend(fontsize=7, frameon=False)
    fig.suptitle(f"Finite-sample PCA on toy_linear (2 factors, {R} samples per point)", fontsize=10)
    return fig


def make(zoo, out, repeats: int = 400) -> dict:
    angles = simulate(repeats=repeats)
    save(plot(angles), out, "pca_finite_sample")
    aligned = (angles < TOLERANCE).mean(-1)
    return {"ratios": list(RATIOS), "sizes": list(SIZES), "repeats": repeats,
            "aligned_share": {f"n={n}": aligned[:, k].round(3).tolist() for k, n in enumerate(SIZES)},
            "median_angle": {f"n={n}": np.median(angles[:, k], -1).round(2).tolist() for k, n in enumerate(SIZES)}}


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
