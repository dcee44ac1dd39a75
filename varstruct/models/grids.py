"""Hyper-parameter grids of Locatello et al. 2019 (and 2020 for Ada-GVAE), by method name (held in the catalog).

``grid(method)`` -> list of hparams dicts, one per model of the published sweep (the seeds are
not part of the grid). AnnealedVAE uses γ = 1000 and iteration threshold 100000 throughout;
DIP-VAE-I uses λ_d = 10·λ_od and DIP-VAE-II λ_d = λ_od.
"""
from __future__ import annotations

from .. import catalog


def grid_names() -> list[str]:
    return list(catalog.METHODS)


def grid(method: str) -> list[dict]:
    """The published hyper-parameter settings of ``method`` (fresh copies; the settings are
    :attr:`varstruct.catalog.Method.grid`)."""
    return [dict(h) for h in catalog.method(method).grid]
