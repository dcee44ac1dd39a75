"""Ground-truth-factor datasets (see :mod:`varstruct.data.base` for the interface).

``get(name, **params)``, ``names()``, ... (:mod:`.registry`) and ``FactorDataset``, ``Factor``,
``DatasetError`` (:mod:`.base`) are looked up on first use: this ``__init__`` imports no submodule,
so that importing one (``varstruct.data.toys``) does not import its siblings.
"""
import importlib

_LAZY = {"DatasetError": ".base", "Factor": ".base", "FactorDataset": ".base", "DEFAULT": ".registry",
         "DatasetSpec": ".registry", "dataset_class": ".registry", "file_only_names": ".registry", "get": ".registry",
         "names": ".registry"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
