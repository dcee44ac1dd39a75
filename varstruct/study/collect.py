"""``collect(models_dir)``: every finished run under a models dir as one xr.Dataset.

Dims: ``model`` (the run dir relative to ``models_dir``), and ``factor``, ``factor2``, ``latent``,
``angle_bin`` where a variable has them (outer join over runs; NaN where a run lacks an entry).
Coordinates on ``model``: the run config (dataset, method, seed, steps, batch_size, latent_dim,
arch, lr, recon), ``data_<p>`` per dataset parameter, ``hp_<h>`` per hyper-parameter (NaN or ""
where a run has none), ``mask_mode`` and ``mask_l1`` where some run has a channel mask ("" and NaN
for the runs without) and ``dataset_config`` (dataset name + parameters as JSON: the key of its
dataset measures). Variables, each with attr ``source``:
- ``score``: every variable of scores.nc;
- ``model_measure``: measures.nc reduced over anchors (float: NaN-mean over anchors; integer
  per-anchor variables such as encoding_dim are dropped);
- ``dataset_measure``: the dataset measures of the run's (dataset, parameters), reduced the same
  way over anchors and PCA anchors. They are computed once per distinct dataset configuration
  and cached in ``models_dir/_dataset_measures/``, the only place collect writes to. A cache
  file is used only if it records the same dataset configuration (its ``cache_key`` attr) and
  measure settings (seed, n_anchors, n_pca_anchors, freeze_nuisance, delta) and is a varstruct
  dataset-measure result; otherwise it is recomputed (and replaced) with a warning. An
  unwritable cache folder (a read-only models dir) is not an error: the measures are computed
  in memory, with one warning.

A run is collected only when it is finished and every file checks out; otherwise it is skipped
with one warning line naming the file and the problem (logger ``varstruct.collect``): no
weights or no scores.nc (unfinished, not evaluated), a diverged or failed run, a config.json
with a bad field (:func:`varstruct.training.config.validate_record`), weights whose sha256 differs
from the one recorded (sidecar or manifest; a manifest that is unreadable, malformed, a link,
or that does not list the run is a problem too: :func:`varstruct.runs.weights.expected_sha256`),
a scores.nc / measures.nc that is not a varstruct result of the run's dataset
(:func:`varstruct.schema.check_result`). Symbolic links to folders under ``models_dir`` are not
followed: each is reported with one warning line.
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

from ..errors import ConfigError, OutputError, RunDirError, first_line

CACHE_DIR = "_dataset_measures"
CONFIG_COORDS = ("dataset", "method", "seed", "steps", "batch_size", "latent_dim", "arch", "lr", "recon")
ANCHOR_DIMS = ("anchor", "pca_anchor")
log = logging.getLogger("varstruct.collect")


def find_runs(models_dir: Path, links: list | None = None) -> list[Path]:
    """Every dir under models_dir holding a run (config.json, status.json or a checkpoint), sorted.
    Symbolic links to folders are not followed; when ``links`` is a list, they are appended to it."""
    from ..runs.layout import RunDir

    found = []
    for root, dirs, files in os.walk(models_dir):
        dirs[:] = sorted(d for d in dirs if d != CACHE_DIR and not d.startswith("."))
        if links is not None:
            links.extend(Path(root) / d for d in dirs if (Path(root) / d).is_symlink())
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


def dataset_measures(models_dir: Path, config: dict, n_anchors: int, seed: int, n_pca_anchors: int,
                     write_cache: bool = True) -> xr.Dataset:
    """The dataset measures of a run's dataset configuration: from the cache if its entry checks
    out (:func:`cache_problem`), else computed and (with ``write_cache``) cached."""
    from ..io import read_netcdf, write_netcdf
    from ..measures.dataset import measure_dataset
    from ..models.load import dataset_from_config

    opts = {"key": dataset_key(config), "n_anchors": n_anchors, "seed": seed, "n_pca_anchors": n_pca_anchors}
    digest = hashlib.sha256(json.dumps(opts, sort_keys=True).encode()).hexdigest()[:16]
    path = models_dir / CACHE_DIR / f"{config['dataset']}-{digest}.nc"
    if path.exists() or path.is_symlink():
        try:
            if path.is_symlink() or not path.is_file():
                raise ValueError("not a regular file")
            m = read_netcdf(path)
        except Exception as e:  # noqa: BLE001 - a corrupt cache entry is recomputed
            log.warning("recomputing %s: unreadable cache (%s)", path, first_line(e))
        else:
            problem = cache_problem(m, config, n_anchors, seed, n_pca_anchors)
            if problem is None:
                return m
            log.warning("recomputing %s: %s", path, problem)
    m = measure_dataset(dataset_from_config(config), n_anchors=n_anchors, seed=seed, n_pca_anchors=n_pca_anchors)
    m.attrs["cache_key"] = opts["key"]
    if write_cache:
        try:
            if path.is_symlink() or path.is_dir():
                raise OutputError(f"cannot write {path}: not a regular file")
            path.parent.mkdir(exist_ok=True)
            write_netcdf(m, path)
        except (OSError, OutputError) as e:
            log.warning("dataset measures not cached (%s)", first_line(e))
    return m


def cache_problem(m: xr.Dataset, config: dict, n_anchors: int, seed: int, n_pca_anchors: int) -> str | None:
    """Why a cached dataset-measure file does not hold the measures of ``config``'s dataset
    configuration with these settings (None when it does): it must be a varstruct dataset-measure
    result of the same dataset whose ``cache_key`` attr is :func:`dataset_key` of ``config`` and
    whose seed, n_anchors and n_pca_anchors (capped at n_anchors) match, with the defaults
    freeze_nuisance = 1 and delta = 0.1 that collect uses."""
    from ..schema import check_result

    try:
        check_result(m, "cache file", "dataset_measures", dataset=config["dataset"])
    except ValueError as e:
        return first_line(e).removeprefix("cache file: ")
    a = m.attrs
    if a.get("cache_key") != dataset_key(config):
        return f"computed for {a.get('cache_key')}, not {dataset_key(config)}"
    want = {"seed": seed, "n_anchors": n_anchors, "n_pca_anchors": min(n_pca_anchors, n_anchors),
            "freeze_nuisance": 1, "delta": 0.1}
    for k, v in want.items():
        got = a.get(k)
        if not isinstance(got, (int, float, np.integer, np.floating)) or float(got) != v:
            return f"computed with {k} = {got}, not {v}"
    return None


def _cache_writable(models_dir: Path) -> bool:
    """Whether the dataset-measure cache can be written; one warning when it cannot."""
    from ..io import probe_folder

    folder = models_dir / CACHE_DIR
    try:
        if folder.is_symlink():
            raise OutputError(f"{folder} is a symbolic link")
        if not folder.is_dir():
            if folder.exists():
                raise OutputError(f"{folder} is not a folder")
            probe_folder(models_dir, "cache", folder)
        else:
            probe_folder(folder, "cache", folder)
        return True
    except (OSError, OutputError) as e:
        log.warning("dataset measures are computed in memory, not cached (%s)", first_line(e))
        return False


def _skip_reason(rd) -> str | None:
    """Why a run dir is not collected (None: it is), from its :meth:`RunDir.progress` (and, for a
    run with weights, its log: an old run that saved the weights of a diverged training)."""
    from ..runs.layout import RunState, log_diverged

    state = rd.progress()
    if state in (RunState.SCORED, RunState.MEASURED, RunState.RELEASED):
        if log_diverged(rd.log_path):  # weights saved by a trainer that did not stop at a non-finite loss
            return f"diverged (non-finite loss in {rd.LOG})"
        return None
    if state is RunState.TRAINED:
        return "not evaluated (no scores.nc)"
    if state is RunState.FAILED:
        return f"failed: {rd.failure()}"
    if state is RunState.BROKEN:
        try:
            rd.require("trained")
            from ..runs.weights import verify_sha256

            verify_sha256(rd.weights_path)
            return "broken"
        except RunDirError as e:
            return f"broken ({e})"
    return {"interrupted": "unfinished (training did not complete)", "empty": "no config.json",
            "missing": "missing", "diverged": "diverged (non-finite loss in train_log.csv)"}[state.value]


def _read_run(rd, models_dir: Path, settings: tuple, dm_cache: dict, write_cache: bool):
    """(config, scores, model measures, dataset-measure key) of a finished run whose files check
    out; a VarstructError / OSError (one line) otherwise."""
    from ..runs.weights import verify_sha256
    from ..schema import check_result
    from ..training.config import validate_record

    cfg = rd.read_config()
    validate_record(cfg, rd.config_path)  # the trainer's rules: bad values are refused, not used
    if not rd.is_released:  # a released run's results are collected without its weights
        verify_sha256(rd.weights_path)  # progress() checked it too, but skips it when no manifest seems to exist
    scores = _reduce(check_result(rd.read_scores(), rd.scores_path, "scores", cfg["dataset"]), "score")
    measures = xr.Dataset()
    if rd.has_measures:
        measures = _reduce(check_result(rd.read_measures(), rd.measures_path, "model_measures", cfg["dataset"]),
                           "model_measure")
    key = dataset_key(cfg)
    if key not in dm_cache:
        dm_cache[key] = _reduce(dataset_measures(models_dir, cfg, *settings, write_cache=write_cache),
                                "dataset_measure")
    return cfg, scores, measures, key


def _convergence(rd, cfg) -> dict:
    """The run's convergence verdict (:mod:`varstruct.training.convergence`) from its own
    train_log.csv; no verdict for a run without one (an imported model)."""
    from ..training.convergence import log_convergence, run_length

    try:
        log = rd.read_log()
        return log_convergence(log, run_length(cfg, log))
    except (ValueError, OSError):
        return {"converged": None, "improvement": float("nan"), "steps": 0}


def baseline_kind(cfg: dict) -> str:
    """What a run is as a baseline: the fitted kind (pca, fastica, oracle), "untrained" for a run
    of 0 steps, "" for a trained model."""
    if cfg.get("baseline"):
        return str(cfg["baseline"]["kind"])
    return "untrained" if cfg.get("steps") == 0 else ""


def _config_coords(configs: list[dict]) -> dict:
    cols: dict[str, list] = {}
    n = len(configs)
    for i, cfg in enumerate(configs):
        items = [(k, cfg.get(k)) for k in CONFIG_COORDS]
        items += [(f"data_{k}", v) for k, v in sorted((cfg.get("dataset_params") or {}).items())]
        items += [(f"hp_{k}", v) for k, v in sorted((cfg.get("hparams") or {}).items())]
        if cfg.get("mask"):  # channel-masked runs: their mask's mode and penalty ("" / NaN for the others)
            items += [("mask_mode", cfg["mask"].get("mode")), ("mask_l1", cfg["mask"].get("l1"))]
        items.append(("dataset_config", dataset_key(cfg)))
        items.append(("baseline", baseline_kind(cfg)))
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
    from ..runs.layout import RunDir
    from ..validate import check_int, check_seed

    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ConfigError(f"{models_dir}: no such models dir")
    n_anchors = check_int("n_anchors", n_anchors, 1, error=ConfigError)
    n_pca_anchors = check_int("n_pca_anchors", n_pca_anchors, 0, error=ConfigError)
    seed = check_seed("seed", seed, error=ConfigError)
    names, configs, parts, dm_cache, links, verdicts = [], [], [], {}, [], []
    runs = find_runs(models_dir, links)
    for link in links:
        log.warning("skipping %s: a symbolic link (not followed; move or copy the run dir into %s)",
                    link.relative_to(models_dir).as_posix(), models_dir)
    write_cache = None
    for path in runs:
        rd = RunDir(path)
        rel = path.relative_to(models_dir).as_posix()
        reason = _skip_reason(rd)
        if reason is None:
            if write_cache is None:
                write_cache = _cache_writable(models_dir)
            try:
                cfg, scores, measures, key = _read_run(rd, models_dir, (n_anchors, seed, n_pca_anchors), dm_cache,
                                                       write_cache)
            except (ValueError, OSError) as e:  # VarstructError is a ValueError
                reason = first_line(e)
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
        verdicts.append(_convergence(rd, cfg))
    if not parts:
        raise ConfigError(f"{models_dir}: no finished run (trained and evaluated) found")
    sources = {k: v.attrs.get("source") for p in parts for k, v in p.data_vars.items()}
    out = xr.concat(parts, dim="model", join="outer", fill_value=np.nan, data_vars="all", coords="minimal",
                    compat="override", combine_attrs="drop")
    for k, s in sources.items():
        out[k].attrs["source"] = s
    out = out.assign_coords(model=np.array(names, dtype=str), **_config_coords(configs))
    from ..training.convergence import CRITERION

    out = out.assign_coords(
        converged=("model", np.array([np.nan if v["converged"] is None else float(v["converged"]) for v in verdicts]),
                   {"long_name": "the run meets the convergence criterion (1), does not (0), no verdict (NaN)",
                    "criterion": CRITERION}),
        recon_improvement=("model", np.array([v["improvement"] for v in verdicts], dtype=float),
                           {"long_name": "relative reconstruction improvement over the last 25% of steps"}),
        recon_improvement_se=("model", np.array([v.get("improvement_se", np.nan) for v in verdicts], dtype=float),
                              {"long_name": "standard error of recon_improvement (the tail rows' scatter about the trend)"}),
        trained_steps=("model", np.array([float(v.get("steps") or np.nan) for v in verdicts]),
                       {"long_name": "steps trained (an until_converged run's stopping step; NaN: no train log)"}))
    from ..schema import call_string, provenance

    out.attrs = {}
    return provenance(out, title="varstruct collected study",
                      command=call_string("varstruct.collect", models_dir=str(models_dir), n_anchors=n_anchors,
                                          seed=seed, n_pca_anchors=n_pca_anchors),
                      models_dir=str(models_dir.resolve()), n_models=len(names),
                      dataset_measures_n_anchors=n_anchors, dataset_measures_seed=seed,
                      dataset_measures_n_pca_anchors=n_pca_anchors)
