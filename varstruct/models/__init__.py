"""Networks, channel-masked layers, objectives, hyper-parameter grids and model dirs.

Public API: ``load_model(dir)`` and ``load_dataset(dir)`` (:mod:`.load`), ``ModelDirError``,
``build_model(config)``, ``VAE``, ``make_objective(method, hparams, ...)``, ``METHODS``,
``grid(method)``. Submodules import torch lazily (``ModelDirError``/``ConfigError`` do not).
"""
from __future__ import annotations

import importlib

from .errors import ConfigError, ModelDirError

_LAZY = {
    "load_model": "load", "load_dataset": "load",
    "build_model": "nets", "default_arch": "nets", "VAE": "nets", "ARCHS": "nets",
    "make_objective": "objectives", "objective_class": "objectives", "METHODS": "objectives",
    "grid": "grids", "grid_names": "grids",
    "MaskedLinear": "masked", "MaskedConv2d": "masked", "MaskedConvTranspose2d": "masked",
}

__all__ = ["ConfigError", "ModelDirError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
