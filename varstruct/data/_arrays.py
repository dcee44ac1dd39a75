"""The dataset of a real file's images (:class:`ArrayFactorDataset`) and the ``.npy`` header
reader its loaders share (:func:`npy_header`). Near the bottom of :mod:`varstruct.data`: it imports
only :mod:`.base` and :mod:`.registry` (to reload a pickled dataset from its file), never a loader;
the loaders (:mod:`.files`: dSprites, 3dshapes; :mod:`.standard`: MPI3D, SmallNORB, Cars3D) import it.
"""
from __future__ import annotations

import numpy as np

from ..errors import DatasetError
from .base import FactorDataset
from .registry import load_file


class ArrayFactorDataset(FactorDataset):
    """Images of a real file: ``render(idx)`` = ``source(ravel_multi_index(idx, sizes))``.

    source: flat image indices int64 [B] -> float32 [B, H, W, C] in [0, 1]. ``params`` records
    the ``data_file`` (absolute path). Pickles by path (reloads the file), so process pools stay cheap."""

    def __init__(self, name: str, factors, image_shape, source, path: str):
        self.name = name
        self.factors = tuple(factors)
        self.image_shape = tuple(int(s) for s in image_shape)
        self._source = source
        self.params = {"data_file": str(path)}

    def flat_index(self, idx) -> np.ndarray:
        """C-order row of each factor vector, int64 [B]."""
        idx = self.validate_indices(idx)
        return np.ravel_multi_index(tuple(idx.T), tuple(self.factor_sizes)).astype(np.int64)

    def _render(self, idx, nuisance):
        return self._source(self.flat_index(idx))

    def __reduce__(self):
        return (load_file, (self.name, self.params["data_file"]))


def npy_header(f, path: str, key: str):
    """(shape, fortran_order, dtype) of the ``.npy`` array at the file position of ``f`` (array
    ``key`` of the data file ``path``, for messages); DatasetError for a bad magic string or an
    unsupported format version (1.0 and 2.0 are read)."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
    except ValueError as e:
        raise DatasetError(f"data file {path}: {key} is not a readable .npy array ({e})") from None
    raise DatasetError(f"data file {path}: {key} has unsupported .npy version {version}")
