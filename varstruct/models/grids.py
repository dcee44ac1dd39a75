"""Hyper-parameter grids of Locatello et al. 2019 (and 2020 for Ada-GVAE), by method name.

``grid(method)`` -> list of hparams dicts, one per model of the published sweep (the seeds are
not part of the grid). AnnealedVAE uses γ = 1000 and iteration threshold 100000 throughout;
DIP-VAE-I uses λ_d = 10·λ_od and DIP-VAE-II λ_d = λ_od.
"""
from __future__ import annotations

from .errors import ConfigError

_GRIDS: dict[str, list[dict]] = {
    "ae": [{}],
    "beta_vae": [{"beta": b} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)],
    "annealed_vae": [{"c_max": c, "gamma": 1000.0, "iteration_threshold": 100000}
                     for c in (5.0, 10.0, 25.0, 50.0, 75.0, 100.0)],
    "beta_tcvae": [{"beta": b} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 10.0)],
    "factor_vae": [{"gamma": g} for g in (10.0, 20.0, 30.0, 40.0, 50.0, 100.0)],
    "dip_vae_i": [{"lambda_od": l, "lambda_d": 10.0 * l} for l in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)],
    "dip_vae_ii": [{"lambda_od": l, "lambda_d": l} for l in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)],
    "ada_gvae": [{"beta": b, "k": 1} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)],
    "ordered_ae": [{"p": p} for p in (0.05, 0.1, 0.2)],
}


def grid_names() -> list[str]:
    return list(_GRIDS)


def grid(method: str) -> list[dict]:
    """The published hyper-parameter settings of ``method`` (fresh copies)."""
    if method not in _GRIDS:
        raise ConfigError(f"no grid for method {method!r} (known: {', '.join(_GRIDS)})")
    return [dict(h) for h in _GRIDS[method]]
