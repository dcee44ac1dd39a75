"""varstruct: how the structure of variance in data shapes what VAEs learn.

Everything is imported on first use, so ``import varstruct`` (and ``varstruct --help``) loads
neither torch nor xarray.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("varstruct")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.1.0"

__all__ = ["datasets", "data", "measure_dataset", "measure_model", "evaluate", "__version__", "train",
           "TrainConfig", "load_model", "RunDir", "collect", "correlate"]

_LAZY = {"train": "varstruct.training", "TrainConfig": "varstruct.training", "load_model": "varstruct.models",
         "measure_model": "varstruct.measures.model", "evaluate": "varstruct.metrics.evaluate",
         "measure_dataset": "varstruct.measures.dataset", "RunDir": "varstruct.runs.layout",
         "collect": "varstruct.study.collect", "correlate": "varstruct.study.correlate"}
_MODULES = {"datasets": "varstruct.data", "data": "varstruct.data"}  # varstruct.datasets.get(name, **params)


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'varstruct' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
