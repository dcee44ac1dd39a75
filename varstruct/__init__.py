"""varstruct: how the structure of variance in data shapes what VAEs learn."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("varstruct")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.1.0"

from . import data as datasets  # noqa: E402  (varstruct.datasets.get(name, **params))
from . import data  # noqa: E402,F401
from .measures.dataset import measure_dataset  # noqa: E402

__all__ = ["datasets", "data", "measure_dataset", "measure_model", "evaluate", "__version__", "train",
           "TrainConfig", "load_model", "collect", "correlate"]

# Imported on first use (they pull in torch).
_LAZY = {"train": "varstruct.training", "TrainConfig": "varstruct.training", "load_model": "varstruct.models",
         "measure_model": "varstruct.measures.model", "evaluate": "varstruct.metrics.evaluate",
         "collect": "varstruct.study.collect", "correlate": "varstruct.study.correlate"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'varstruct' has no attribute {name!r}")
