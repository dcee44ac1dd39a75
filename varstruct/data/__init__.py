"""Ground-truth-factor datasets (see :mod:`varstruct.data.base` for the interface)."""
from .base import DatasetError, Factor, FactorDataset
from .registry import DEFAULT, dataset_class, file_only_names, get, names

__all__ = ["DatasetError", "Factor", "FactorDataset", "DEFAULT", "dataset_class", "file_only_names", "get", "names"]
