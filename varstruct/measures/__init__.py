"""Dataset and model measures (defined in docs/measures.md), returned as labelled xarray Datasets.

``measure_dataset`` and ``measure_model`` are imported on first use, so that importing a
torch-free measure module (``varstruct.measures.rotation``, ``variance_stats``, ...) does not
import torch."""
import importlib

_LAZY = {"measure_dataset": ".dataset", "measure_model": ".model"}
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
