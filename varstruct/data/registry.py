"""Name → dataset constructor. ``get(name, **params)`` builds one; ``names()`` lists them."""
from __future__ import annotations

import importlib
import inspect

from .base import DatasetError, FactorDataset

# name -> (module, class); modules are imported on first use.
_REGISTRY: dict[str, tuple[str, str]] = {
    "dsprites": ("varstruct.data.dsprites", "DSprites"),
    "color_dsprites": ("varstruct.data.dsprites", "ColorDSprites"),
    "noisy_dsprites": ("varstruct.data.dsprites", "NoisyDSprites"),
    "shapes3d": ("varstruct.data.shapes3d", "Shapes3D"),
    "toy_linear": ("varstruct.data.toys", "ToyLinear"),
    "toy_square": ("varstruct.data.toys", "ToySquare"),
    "toy_blobs": ("varstruct.data.toys", "ToyBlobs"),
    "toy_context": ("varstruct.data.toy_context", "ToyContext"),
}
# datasets that exist only as release files (need data_file): not listed by names()
_FILE_ONLY: dict[str, tuple[str, str]] = {
    "mpi3d": ("varstruct.data.standard", "MPI3D"),
    "smallnorb": ("varstruct.data.standard", "SmallNORB"),
    "cars3d": ("varstruct.data.standard", "Cars3D"),
}

DEFAULT = "dsprites"


def names() -> list[str]:
    return list(_REGISTRY)


def file_only_names() -> list[str]:
    """Datasets available only from their release files (``get(name, data_file=...)``)."""
    return list(_FILE_ONLY)


def dataset_class(name: str) -> type[FactorDataset]:
    table = {**_REGISTRY, **_FILE_ONLY}
    if name not in table:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(_REGISTRY)}; "
                           f"from their files with data_file: {', '.join(_FILE_ONLY)})")
    module, cls = table[name]
    return getattr(importlib.import_module(module), cls)


def get(name: str, data_file: str | None = None, **params) -> FactorDataset:
    """Build dataset ``name`` with its parameters; ``data_file`` loads a real file instead
    (the dSprites .npz layout for the dsprites family, the 3dshapes.h5 layout for shapes3d,
    the release files for mpi3d, smallnorb and cars3d: varstruct.data.standard)."""
    cls = dataset_class(name)
    if data_file is not None:
        from .files import load_file
        return load_file(name, data_file, **params)
    sig = inspect.signature(cls.__init__)
    unknown = [k for k in params if k not in sig.parameters]
    if unknown:
        allowed = [p for p in sig.parameters if p != "self"]
        raise DatasetError(f"{name}: unknown parameter(s) {', '.join(unknown)} (allowed: {', '.join(allowed) or 'none'})")
    return cls(**params)
