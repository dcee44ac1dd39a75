"""Units of analysis: which models share a value of a variable, so that they count once.

A collected study has one row per model, but not every variable varies per model. A dataset
measure is a property of the training data: every model trained on one dataset configuration
carries the same value, so 20 seeds of one configuration are one observation of it, not 20. The
groupings, coarse to fine:

- ``dataset_config``: the dataset and its parameters (coordinate ``dataset_config``; else
  ``dataset``);
- ``training_config``: the dataset configuration × method × hyper-parameters × training settings
  (every coordinate in :data:`TRAINING_COORDS` and every ``hp_*``; the seed is not one);
- ``model``: each model.

:func:`variable_level` returns the coarsest grouping within which a variable is constant (NaN
equal to NaN), read from the values: a score that varies between seeds is at ``model``, a
dataset measure at ``dataset_config``, ``hp_beta`` at ``training_config`` (or coarser where one
β per dataset configuration was trained).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = ("dataset_config", "training_config", "model")  # coarse -> fine
TRAINING_COORDS = ("method", "steps", "batch_size", "latent_dim", "arch", "lr", "recon", "recon_var", "precision",
                   "hidden", "mask_mode", "mask_l1")
DESCRIPTION = {
    "dataset_config": "dataset configuration (dataset and its parameters)",
    "training_config": "training configuration (dataset configuration x method x hyper-parameters; seeds pooled)",
    "model": "model",
}


def _str(values) -> np.ndarray:
    return np.asarray([repr(v) if isinstance(v, float) else str(v) for v in np.asarray(values).tolist()], dtype=object)


def unit_keys(ds) -> dict[str, np.ndarray]:
    """{level: key per model} (object arrays of strings) for the three levels of a collected study."""
    n = ds.sizes["model"]
    model = _str(ds["model"].values)
    if "dataset_config" in ds.coords:
        dcfg = _str(ds["dataset_config"].values)
    elif "dataset" in ds.coords:
        dcfg = _str(ds["dataset"].values)
    else:
        dcfg = np.full(n, "all", dtype=object)
    parts = [dcfg]
    names = [c for c in TRAINING_COORDS if c in ds.coords and ds[c].dims == ("model",)]
    names += sorted(c for c in ds.coords if str(c).startswith("hp_") and ds[c].dims == ("model",))
    for c in names:
        parts.append(np.asarray([f"{c}={v}" for v in _str(ds[c].values)], dtype=object))
    tcfg = np.asarray(["|".join(t) for t in zip(*parts)], dtype=object) if len(parts) > 1 else dcfg
    return {"dataset_config": dcfg, "training_config": tcfg, "model": model}


def constant_within(values, keys) -> bool:
    """Whether ``values`` (first axis: models) are equal within every group of ``keys``; NaN equals NaN."""
    v = np.asarray(values)
    v = v.reshape(len(v), int(np.prod(v.shape[1:])))
    df = pd.DataFrame(v)
    df["_key"] = keys
    counts = df.groupby("_key", sort=False).nunique(dropna=False)
    return bool((counts.to_numpy() <= 1).all())


def variable_level(values, keys: dict[str, np.ndarray]) -> str:
    """The coarsest level of :data:`LEVELS` within whose groups ``values`` are constant. A level
    whose every group holds one model is the model level (and is reported as ``model``)."""
    n = len(keys["model"])
    for level in LEVELS[:-1]:
        if len(set(keys[level].tolist())) == n:
            return "model"
        if constant_within(values, keys[level]):
            return level
    return "model"


def coarser(a: str, b: str) -> str:
    """The coarser of two levels."""
    return LEVELS[min(LEVELS.index(a), LEVELS.index(b))]
