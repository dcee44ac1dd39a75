"""Name → dataset: one :class:`DatasetSpec` per dataset. ``get(name, **params)`` builds one,
``get(name, data_file=PATH)`` loads it from its release file, ``names()`` lists them.

The specs name their class and file loader as ``"module:attribute"`` strings, imported on first
use: this module imports only :mod:`.base`, so the dataset modules (and the loaders in
:mod:`.files`, :mod:`.standard`) can import it without a circle.
"""
from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass

from .base import DatasetError, FactorDataset


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its ``name``; ``cls``, its class (``"module:Class"``); ``loader``, the function
    that reads its release file (``"module:function"``, path -> FactorDataset; None: no data-file
    layout); ``file_only``: it exists only as a release file (not listed by :func:`names`);
    ``folder``: its release is a folder (a path to it is accepted as ``data_file``)."""

    name: str
    cls: str
    loader: str | None = None
    file_only: bool = False
    folder: bool = False


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec("dsprites", "varstruct.data.dsprites:DSprites", "varstruct.data.files:load_dsprites_npz"),
    DatasetSpec("color_dsprites", "varstruct.data.dsprites:ColorDSprites", "varstruct.data.files:load_color_dsprites"),
    DatasetSpec("noisy_dsprites", "varstruct.data.dsprites:NoisyDSprites", "varstruct.data.files:load_noisy_dsprites"),
    DatasetSpec("shapes3d", "varstruct.data.shapes3d:Shapes3D", "varstruct.data.files:load_shapes3d_h5"),
    DatasetSpec("toy_linear", "varstruct.data.toys:ToyLinear"),
    DatasetSpec("toy_square", "varstruct.data.toys:ToySquare"),
    DatasetSpec("toy_blobs", "varstruct.data.toys:ToyBlobs"),
    DatasetSpec("toy_context", "varstruct.data.toy_context:ToyContext"),
    DatasetSpec("mpi3d", "varstruct.data.standard:MPI3D", "varstruct.data.standard:load_mpi3d", file_only=True),
    DatasetSpec("smallnorb", "varstruct.data.standard:SmallNORB", "varstruct.data.standard:load_smallnorb",
                file_only=True),
    DatasetSpec("cars3d", "varstruct.data.standard:Cars3D", "varstruct.data.standard:load_cars3d", file_only=True,
                folder=True),
)
_BY_NAME = {s.name: s for s in SPECS}

DEFAULT = "dsprites"


def _resolve(ref: str):
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def names() -> list[str]:
    return [s.name for s in SPECS if not s.file_only]


def file_only_names() -> list[str]:
    """Datasets available only from their release files (``get(name, data_file=...)``)."""
    return [s.name for s in SPECS if s.file_only]


def spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name``; DatasetError naming the known ones if there is none."""
    if name not in _BY_NAME:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(names())}; "
                           f"from their files with data_file: {', '.join(file_only_names())})")
    return _BY_NAME[name]


def dataset_class(name: str) -> type[FactorDataset]:
    return _resolve(spec(name).cls)


def get(name: str, data_file: str | None = None, **params) -> FactorDataset:
    """Build dataset ``name`` with its parameters; ``data_file`` loads a real file instead
    (the dSprites .npz layout for the dsprites family, the 3dshapes.h5 layout for shapes3d,
    the release files for mpi3d, smallnorb and cars3d: varstruct.data.standard)."""
    cls = dataset_class(name)
    if data_file is not None:
        return load_file(name, data_file, **params)
    sig = inspect.signature(cls.__init__)
    unknown = [k for k in params if k not in sig.parameters]
    if unknown:
        allowed = [p for p in sig.parameters if p != "self"]
        raise DatasetError(f"{name}: unknown parameter(s) {', '.join(unknown)} (allowed: {', '.join(allowed) or 'none'})")
    return cls(**params)


def load_file(name: str, path, **params) -> FactorDataset:
    """The dataset ``name`` with its images read from ``path`` by its spec's loader (see
    :mod:`varstruct.data.files` for dsprites, color_dsprites, noisy_dsprites and shapes3d,
    :mod:`varstruct.data.standard` for mpi3d, smallnorb and cars3d). DatasetError for a dataset
    without a data-file layout, any parameter, or a path that is missing or not a file (a
    folder only for a folder release)."""
    s = _BY_NAME.get(name)
    if s is None or s.loader is None:
        raise DatasetError(f"{name}: no data-file layout for this dataset (data files are for dsprites, "
                           "color_dsprites, noisy_dsprites (.npz), shapes3d (.h5), mpi3d (.npz), "
                           "smallnorb (*-dat.mat) and cars3d (folder of .mat))")
    if params:
        raise DatasetError(f"{name} from a data file takes no parameters (got {', '.join(params)})")
    path = os.path.abspath(os.fspath(path))
    if not os.path.exists(path):
        raise DatasetError(f"data file {path}: not found")
    if not os.path.isfile(path) and not (s.folder and os.path.isdir(path)):
        raise DatasetError(f"data file {path}: not a file")
    return _resolve(s.loader)(path)
