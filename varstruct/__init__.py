"""varstruct: how the structure of variance in data shapes what VAEs learn."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("varstruct")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.1.0"

from . import data as datasets  # noqa: E402  (varstruct.datasets.get(name, **params))
from . import data  # noqa: E402,F401
from .measures.dataset import measure_dataset  # noqa: E402
from .measures.model import measure_model  # noqa: E402

__all__ = ["datasets", "data", "measure_dataset", "measure_model", "__version__"]
