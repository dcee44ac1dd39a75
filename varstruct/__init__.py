"""varstruct: how the structure of variance in data shapes what VAEs learn."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("varstruct")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.1.0"

from . import data as datasets  # noqa: E402  (varstruct.datasets.get(name, **params))
from . import data  # noqa: E402,F401
from .measures.dataset import measure_dataset  # noqa: E402


def __getattr__(name):
    """``varstruct.evaluate`` is imported on first use (it pulls in scikit-learn)."""
    if name == "evaluate":
        from .metrics.evaluate import evaluate
        return evaluate
    raise AttributeError(f"module 'varstruct' has no attribute {name!r}")


__all__ = ["datasets", "data", "evaluate", "measure_dataset", "__version__"]
