"""``collect(models_dir)``: every finished run under a models dir as one xr.Dataset.

Dims: ``model`` (the run dir relative to ``models_dir``), and ``factor``, ``factor2``, ``latent``,
``angle_bin`` where a variable has them (outer join over runs; NaN where a run lacks an entry).
Coordinates on ``model``: the run config (dataset, method, seed, steps, batch_size, latent_dim,
arch, lr, recon), ``data_<p>`` per dataset parameter, ``hp_<h>`` per hyper-parameter (NaN or ""
where a run has none) and ``dataset_config`` (dataset name + parameters as JSON: the key of its
dataset measures). Variables, each with attr ``source``:
- ``score``: every variable of scores.nc;
- ``model_measure``: measures.nc reduced over anchors (float: NaN-mean over anchors; integer
  per-anchor variables such as encoding_dim are dropped);
- ``dataset_measure``: the dataset measures of the run's (dataset, parameters), reduced the same
  way over anchors and PCA anchors. They are computed once per distinct dataset configuration
  and cached in ``models_dir/_dataset_measures/``, the only place collect writes to.
Runs that are not finished (no weights or no scores.nc) or broken are skipped with one warning
line each (logger ``varstruct.collect``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import ConfigError, RunDirError, first_line

CACHE_DIR = "_dataset_measures"
CONFIG_COORDS = ("dataset", "method", "seed", "steps", "batch_size", "latent_dim", "arch", "lr", "recon")
ANCHOR_DIMS = ("anchor", "pca_anchor")
log = logging.getLogger("varstruct.collect")


def find_runs(models_dir: Path) -> list[Path]:
    """Every dir under models_dir holding a run (config.json, status.json or a checkpoint), sorted."""
    from ..rundir import RunDir

    found = []
    for root, dirs, files in os.walk(models_dir):
        dirs[:] = sorted(d for d in dirs if d != CACHE_DIR and not d.startswith("."))
        if {RunDir.CONFIG, RunDir.STATUS, RunDir.CHECKPOINT, RunDir.WEIGHTS} & set(files):
            found.append(Path(root))
            dirs[:] = []
    return sorted(found)


def _reduce(ds: xr.Dataset, source: str) -> xr.Dataset:
    out = {}
    for name, v in ds.data_vars.items():
        red = [d for d in v.dims if d in ANCHOR_DIMS]
        if red:
            if not np.issubdtype(v.dtype, np.floating):
                continue
            with warnings.catch_warnings():  # all-NaN slices give NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                v = v.mean(dim=red, skipna=True)
        elif v.dtype == bool or np.issubdtype(v.dtype, np.integer):
            v = v.astype(np.float64)
        elif not np.issubdtype(v.dtype, np.floating):
            continue
        v = v.reset_coords(drop=True)
        v.attrs = {**{k: a for k, a in v.attrs.items() if isinstance(a, (str, int, float))}, "source": source}
        out[name] = v
    res = xr.Dataset(out)
    return res.drop_vars([c for c in res.coords if c not in res.dims])


def dataset_key(config: dict) -> str:
    """The dataset configuration of a run: name + parameters (+ data file) as canonical JSON."""
    key = {"dataset": config["dataset"], "params": config.get("dataset_params") or {}}
    if config.get("data_file"):
        key["data_file"] = config["data_file"]
    return json.dumps(key, sort_keys=True, default=str)


def dataset_measures(models_dir: Path, config: dict, n_anchors: int, seed: int, n_pca_anchors: int) -> xr.Dataset:
    """The dataset measures of a run's dataset configuration, from the cache or computed and cached."""
    from ..io import read_netcdf, write_netcdf
    from ..measures.dataset import measure_dataset
    from ..rundir import dataset_from_config

    opts = {"key": dataset_key(config), "n_anchors": n_anchors, "seed": seed, "n_pca_anchors": n_pca_anchors}
    digest = hashlib.sha256(json.dumps(opts, sort_keys=True).encode()).hexdigest()[:16]
    path = models_dir / CACHE_DIR / f"{config['dataset']}-{digest}.nc"
    if path.is_file():
        try:
            return read_netcdf(path)
        except Exception as e:  # noqa: BLE001 - a corrupt cache entry is recomputed
            log.warning("recomputing %s: unreadable cache (%s)", path, first_line(e))
    m = measure_dataset(dataset_from_config(config), n_anchors=n_anchors, seed=seed, n_pca_anchors=n_pca_anchors)
    m.attrs["cache_key"] = opts["key"]
    path.parent.mkdir(exist_ok=True)
    write_netcdf(m, path)
    return m


def _skip_reason(rd) -> str | None:
    """Why a run dir is not collected (None: it is), from its :meth:`RunDir.progress` only."""
    from ..rundir import RunState

    state = rd.progress()
    if state in (RunState.SCORED, RunState.MEASURED):
        return None
    if state is RunState.TRAINED:
        return "not evaluated (no scores.nc)"
    if state is RunState.FAILED:
        return f"failed: {rd.failure()}"
    if state is RunState.BROKEN:
        try:
            rd.require("trained")
            from ..models.store import verify_sha256

            verify_sha256(rd.weights_path)
            return "broken"
        except RunDirError as e:
            return f"broken ({e})"
    return {"interrupted": "unfinished (training did not complete)", "empty": "no config.json",
            "missing": "missing", "diverged": "diverged (non-finite loss in train_log.csv)"}[state.value]


def _config_coords(configs: list[dict]) -> dict:
    cols: dict[str, list] = {}
    n = len(configs)
    for i, cfg in enumerate(configs):
        items = [(k, cfg.get(k)) for k in CONFIG_COORDS]
        items += [(f"data_{k}", v) for k, v in sorted((cfg.get("dataset_params") or {}).items())]
        items += [(f"hp_{k}", v) for k, v in sorted((cfg.get("hparams") or {}).items())]
        items.append(("dataset_config", dataset_key(cfg)))
        for k, v in items:
            cols.setdefault(k, [None] * n)[i] = v
    coords = {}
    for k, vals in cols.items():
        present = [v for v in vals if v is not None]
        if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            coords[k] = ("model", np.array([np.nan if v is None else float(v) for v in vals]))
            if all(isinstance(v, int) for v in present) and len(present) == n:
                coords[k] = ("model", np.array(vals, dtype=np.int64))
        else:
            coords[k] = ("model", np.array(["" if v is None else v if isinstance(v, str) else json.dumps(v)
                                            for v in vals], dtype=str))
    return coords


def collect(models_dir, n_anchors: int = 1000, seed: int = 0, n_pca_anchors: int = 200) -> xr.Dataset:
    """One Dataset of every finished run under ``models_dir`` (see the module docstring).
    n_anchors, seed, n_pca_anchors: the dataset-measure settings (:func:`varstruct.measure_dataset`)."""
    from ..rundir import RunDir
    from ..validate import check_int, check_seed

    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ConfigError(f"{models_dir}: no such models dir")
    n_anchors = check_int("n_anchors", n_anchors, 1, error=ConfigError)
    n_pca_anchors = check_int("n_pca_anchors", n_pca_anchors, 0, error=ConfigError)
    seed = check_seed("seed", seed, error=ConfigError)
    names, configs, parts, dm_cache = [], [], [], {}
    for path in find_runs(models_dir):
        rd = RunDir(path)
        rel = path.relative_to(models_dir).as_posix()
        reason = _skip_reason(rd)
        if reason is None:
            try:
                cfg = rd.read_config()
                scores = _reduce(rd.read_scores(), "score")
                measures = _reduce(rd.read_measures(), "model_measure") if rd.has_measures else xr.Dataset()
                key = dataset_key(cfg)
                if key not in dm_cache:
                    dm_cache[key] = _reduce(dataset_measures(models_dir, cfg, n_anchors, seed, n_pca_anchors),
                                            "dataset_measure")
            except (RunDirError, ValueError, OSError) as e:
                reason = f"unreadable ({first_line(e)})"
        if reason is not None:
            log.warning("skipping %s: %s", rel, reason)
            continue
        clash = (set(scores.data_vars) | set(measures.data_vars)) & set(dm_cache[key].data_vars) | \
            set(scores.data_vars) & set(measures.data_vars)
        if clash:
            raise RunDirError(f"{path}: variable name(s) {', '.join(sorted(clash))} in more than one source")
        parts.append(xr.merge([scores, measures, dm_cache[key]], join="outer", compat="override"))
        names.append(rel)
        configs.append(cfg)
    if not parts:
        raise ConfigError(f"{models_dir}: no finished run (trained and evaluated) found")
    sources = {k: v.attrs.get("source") for p in parts for k, v in p.data_vars.items()}
    out = xr.concat(parts, dim="model", join="outer", fill_value=np.nan, data_vars="all", coords="minimal",
                    compat="override", combine_attrs="drop")
    for k, s in sources.items():
        out[k].attrs["source"] = s
    out = out.assign_coords(model=np.array(names, dtype=str), **_config_coords(configs))
    from ..schema import call_string, provenance

    out.attrs = {}
    return provenance(out, title="varstruct collected study",
                      command=call_string("varstruct.collect", models_dir=str(models_dir), n_anchors=n_anchors,
                                          seed=seed, n_pca_anchors=n_pca_anchors),
                      models_dir=str(models_dir.resolve()), n_models=len(names),
                      dataset_measures_n_anchors=n_anchors, dataset_measures_seed=seed,
                      dataset_measures_n_pca_anchors=n_pca_anchors)
