"""``correlate(collected)``: correlations between measures and scores of a study, at the right unit.

**Units of analysis.** Models are not independent observations of every variable. A dataset
measure has one value per dataset configuration, however many models were trained on it; a
config value such as ``hp_beta`` one per training configuration. For each variable the coarsest
grouping of models within which it is constant is found from its values
(:func:`varstruct.study.units.variable_level`: ``dataset_config``, ``training_config`` or
``model``), and a pair (x, y) is analysed at the coarser of its two levels: the *units* are the
points, each unit's x and y are the means over its models (models with a non-finite x or y
dropped first), and the permutation test permutes x between units. Under H0 (x independent of
the units' y) the units are exchangeable, so the test is exact whatever the number of seeds per
configuration; treating the models as points instead makes a dataset measure look significant
whenever configurations differ in y for any reason (docs/studies.md#units-of-analysis).

``level="factor"``: the points are (unit, factor) for per-factor x and y (dims model, factor),
the unit again the coarser level of the two. ``within=LEVEL``: the within-unit analysis of two
variables that vary inside the units of LEVEL: deviations from the unit means, with x permuted
within units (:func:`varstruct.study.stats.within_statistics`).

Per (x, y) pair: r (Pearson, Spearman = Pearson of ranks with average ties, or Kendall τ_b), a
two-sided permutation p-value, a percentile bootstrap 95% CI (over units; whole units for
``within``), Benjamini–Hochberg q over every tested pair; and what was analysed: ``unit``,
``n_units``, ``n_models``, ``n_distinct_x``, the models (and whole units) dropped as NaN with
the reason from the variable's definition (:mod:`varstruct.measures.nan_rules`), and a
Mann–Whitney test of whether the dropped models differ from the kept ones (``selection_p``,
flagged below 0.05). Fewer than 4 units, constant x or constant y give NaN and a ``reason``.
Each pair gets its own generator, seeded from (seed, x, y, group).
"""
from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ..errors import ConfigError
from ..validate import check_choice, check_int, check_seed
from . import units as U
from .stats import METHODS, MIN_POINTS, STATISTICS, pair_statistics, selection_test, within_statistics  # noqa: F401

LEVELS = ("model", "factor")
SELECTION_ALPHA = 0.05
UNITS = {"model": "the coarser of x's and y's levels; each unit a point, its x and y the means over its models",
         "factor": "(unit, factor) points, the unit the coarser of x's and y's levels; x and y the means over "
                   "the unit's models"}
RESULT_VARIABLES = ("r", "p", "q", "ci_low", "ci_high", "unit", "n_units", "n_models", "n_distinct_x", "n_dropped",
                    "n_dropped_units", "dropped_reason", "selection_p", "selection_flag", "within_sd_y", "reason")


def _pair_rng(seed: int, *names) -> np.random.Generator:
    key = [zlib.crc32("\x1f".join(map(str, names)).encode())]
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


# -- selecting variables and points ---------------------------------------------------------------

def _source(ds, name):
    return ds[name].attrs.get("source", "")


def _numeric(da) -> bool:
    return np.issubdtype(da.dtype, np.number) or da.dtype == bool


def candidates(ds: xr.Dataset, level: str, role: str) -> list[str]:
    """Default x (role "x": dataset and model measures) or y (role "y": scores) of a level."""
    dims = ("model",) if level == "model" else ("model", "factor")
    want = ("dataset_measure", "model_measure") if role == "x" else ("score",)
    return [k for k, v in ds.data_vars.items() if v.dims == dims and _source(ds, k) in want and _numeric(v)]


def _check_names(ds, names, level, role) -> list[str]:
    if names is None:
        names = candidates(ds, level, role)
        if not names:
            raise ConfigError(f"{role}: no {'measure' if role == 'x' else 'score'} with dims "
                              f"{'model' if level == 'model' else 'model, factor'} in the collected study")
        return names
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    if not names:
        raise ConfigError(f"{role}: give at least one variable")
    want = ("model",) if level == "model" else ("model", "factor")
    for name in names:
        if name not in ds.variables:
            opts = candidates(ds, level, role)
            raise ConfigError(f"{role} {name}: not in the collected study (e.g. {', '.join(opts[:8]) or 'none'})")
        v = ds[name]
        if v.dims != want or not _numeric(v):
            extra = " (a per-model value has one value for all factors: analyse it at level model)" \
                if level == "factor" and v.dims == ("model",) else ""
            raise ConfigError(f"{role} {name}: needs numeric values with dims {want} at level {level}, "
                              f"has {v.dims} {v.dtype}{extra}")
    return names


def _values(ds, name) -> np.ndarray:
    """float64 [model] or [model, factor]."""
    v = ds[name]
    if "factor" in v.dims:
        v = v.transpose("model", "factor")
    return np.asarray(v.values, dtype=np.float64)


def _unit_means(v, keys, order):
    """Means of v's rows [n(, K)] per key, in ``order``; NaN-aware over the rows."""
    df = pd.DataFrame(v.reshape(len(v), int(np.prod(v.shape[1:]))))
    df["_k"] = keys
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = df.groupby("_k", sort=False).mean()
    return m.reindex(order).to_numpy()


def _pooled_within_sd(v, keys) -> float:
    """sqrt(mean over units with >= 2 finite values of their variance (ddof 1)); NaN if none."""
    df = pd.DataFrame({"v": v, "k": keys}).dropna()
    var = df.groupby("k", sort=False)["v"].var(ddof=1).dropna()
    return float(np.sqrt(var.mean())) if len(var) else float("nan")


def analysis_points(ds: xr.Dataset, x: str, y: str, level: str = "model", keys=None, levels=None) -> dict:
    """Everything one pair's analysis needs: the unit-level points and the bookkeeping.

    Returns {unit, x, y (float arrays over points), label, dataset (per point), n_models,
    n_units, n_dropped, n_dropped_units, dropped_reason, selection_p, within_sd_y, n_distinct_x}.
    ``keys`` / ``levels``: precomputed :func:`units.unit_keys` and {variable: level}.
    """
    keys = U.unit_keys(ds) if keys is None else keys
    xv, yv = _values(ds, x), _values(ds, y)
    lx = levels[x] if levels and x in levels else U.variable_level(xv, keys)
    ly = levels[y] if levels and y in levels else U.variable_level(yv, keys)
    unit = U.coarser(lx, ly)
    key = keys[unit]
    dataset = ds["dataset"].values.astype(str) if "dataset" in ds.coords else np.full(len(key), "")
    if level == "factor":
        factors = ds["factor"].values.astype(str)
        fx, fy = np.isfinite(xv), np.isfinite(yv)
        kept = fx & fy
        cells = (fx | fy)  # cells where at least one is defined
        n_dropped = int((cells & ~kept).sum())
        model_kept = kept.any(axis=1)
        xk, yk = np.where(kept, xv, np.nan), np.where(kept, yv, np.nan)
        order = list(dict.fromkeys(key[model_kept].tolist()))
        mx, my = _unit_means(xk, key, order), _unit_means(yk, key, order)
        first = {k: i for i, k in reversed(list(enumerate(key)))}
        ok = np.isfinite(mx) & np.isfinite(my)
        ui, fj = np.nonzero(ok)
        px, py = mx[ok], my[ok]
        label = [f"{order[i]}:{factors[j]}" for i, j in zip(ui, fj)]
        pdataset = [dataset[first[order[i]]] for i in ui]
        all_units = {(k, j) for k, row in zip(key, cells) for j in np.flatnonzero(row)}
        n_dropped_units = len(all_units) - len(px)
        n_models = int(model_kept.sum())
        sel = selection_test(yv[fx & fy], yv[~fx & fy]) if (~fx & fy).any() else \
            selection_test(xv[fx & fy], xv[fx & ~fy])
        within_sd = float("nan")
        unit_name = f"{unit} x factor"
        n_units = len(px)
    else:
        fx, fy = np.isfinite(xv), np.isfinite(yv)
        kept = fx & fy
        n_dropped = int((~kept).sum())
        order = list(dict.fromkeys(key[kept].tolist()))
        px, py = _unit_means(xv[kept], key[kept], order)[:, 0], _unit_means(yv[kept], key[kept], order)[:, 0]
        first = {k: i for i, k in reversed(list(enumerate(key)))}
        label = order
        pdataset = [dataset[first[k]] for k in order]
        n_dropped_units = len(set(key.tolist())) - len(order)
        n_models = int(kept.sum())
        sel = _selection(xv, yv, key, unit)
        within_sd = _pooled_within_sd(yv[kept], key[kept]) if unit != "model" else float("nan")
        unit_name = unit
        n_units = len(px)
    reasons = []
    nx, ny = int((~np.isfinite(xv) & np.isfinite(yv)).sum()), int((np.isfinite(xv) & ~np.isfinite(yv)).sum())
    both = int((~np.isfinite(xv) & ~np.isfinite(yv)).sum())
    from ..measures.nan_rules import nan_reason
    if nx:
        reasons.append(f"{nx} x NaN: {nan_reason(x, ds[x].attrs)}")
    if ny:
        reasons.append(f"{ny} y NaN: {nan_reason(y, ds[y].attrs)}")
    if both:
        reasons.append(f"{both} both NaN")
    distinct = np.unique(np.round(px[np.isfinite(px)], 12)).size
    return {"unit": unit_name, "x": np.asarray(px, float), "y": np.asarray(py, float), "label": list(label),
            "dataset": list(pdataset), "n_models": n_models, "n_units": n_units, "n_dropped": n_dropped,
            "n_dropped_units": int(n_dropped_units), "dropped_reason": "; ".join(reasons), "selection_p": sel,
            "within_sd_y": within_sd, "n_distinct_x": int(distinct)}


def _selection(xv, yv, key, unit) -> float:
    """Mann-Whitney p of the dropped vs kept models' y (where x is NaN and y defined; else of x,
    where y is NaN), at the pair's unit: with units coarser than the model, the unit means of
    the units with no model left against those of the kept units (a unit's models are one
    observation); NaN when either side has fewer than 2."""
    fx, fy = np.isfinite(xv), np.isfinite(yv)
    kept = fx & fy
    if (~fx & fy).any():
        v, dropped, defined = yv, ~fx & fy, fy
    else:
        v, dropped, defined = xv, fx & ~fy, fx
    if unit == "model":
        return selection_test(v[kept], v[dropped])
    df = pd.DataFrame({"v": np.where(defined, v, np.nan), "kept": kept, "k": key})
    g = df.groupby("k", sort=False).agg(v=("v", "mean"), kept=("kept", "any"))
    return selection_test(g["v"][g["kept"]].to_numpy(), g["v"][~g["kept"]].to_numpy())


def points(ds: xr.Dataset, x: str, y: str, level: str = "model") -> pd.DataFrame:
    """The points one pair is analysed on: DataFrame with columns x, y, dataset, label (one row
    per unit, or per (unit, factor) at level factor; see :func:`analysis_points`)."""
    check_choice("level", level, LEVELS, error=ConfigError)
    a = analysis_points(ds, x, y, level)
    return pd.DataFrame({"x": a["x"], "y": a["y"], "dataset": a["dataset"], "label": a["label"]},
                        columns=["x", "y", "dataset", "label"])


def _load(collected) -> xr.Dataset:
    if isinstance(collected, xr.Dataset):
        ds = collected
    else:
        path = Path(collected)
        if path.is_dir():
            from .collect import collect
            ds = collect(path)
        elif path.is_file():
            from ..io import read_netcdf
            try:
                ds = read_netcdf(path)
            except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input problem
                raise ConfigError(f"{path}: not a collected study netCDF "
                                  f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        else:
            raise ConfigError(f"{path}: no such models dir or study file")
    if "model" in ds.coords:
        labels = pd.Series(ds["model"].values.astype(str))
        dup = labels[labels.duplicated()].unique()
        if len(dup):
            raise ConfigError(f"the study has {labels.duplicated().sum()} duplicate model label(s), e.g. {dup[0]!r}: "
                              f"each model must appear once")
    return ds


def correlate(collected, x=None, y=None, level: str = "model", by: str | None = None, method: str = "spearman",
              n_permutations: int = 999, n_resamples: int = 999, seed: int = 0, within: str | None = None) -> xr.Dataset:
    """Correlations of every (x, y) pair at its unit of analysis; see the module docstring.

    collected: a collected study (:func:`varstruct.collect`), a netCDF of one, or a models dir.
    x, y: variable names (list or comma-separated); None picks the level's measures / scores.
    by: a coordinate on ``model``; the analysis is repeated within each of its values (dim ``group``).
    within: None, or "dataset_config" / "training_config": the within-unit analysis (level model).
    Returns an xr.Dataset with dims (x, y) [+ group] holding :data:`RESULT_VARIABLES`; attrs: level,
    unit, within, method, n_permutations, n_resamples, seed, by, confidence_level, n_tests,
    n_baselines_excluded (models with a ``baseline`` coordinate other than "": untrained or fitted
    baselines, left out of every analysis).
    """
    check_choice("level", level, LEVELS, error=ConfigError)
    check_choice("method", method, METHODS, error=ConfigError)
    if within is not None:
        check_choice("within", within, U.LEVELS[:-1], error=ConfigError)
        if level != "model":
            raise ConfigError("within: the within-unit analysis works at level model")
    n_permutations = check_int("n_permutations", n_permutations, 1, error=ConfigError)
    n_resamples = check_int("n_resamples", n_resamples, 2, error=ConfigError)
    seed = check_seed("seed", seed, error=ConfigError)
    ds = _load(collected)
    n_baselines = 0
    if "baseline" in ds.coords and "model" in ds.dims:  # untrained / fitted baselines are not models of the study
        is_baseline = np.asarray(ds["baseline"].values).astype(str) != ""
        n_baselines = int(is_baseline.sum())
        ds = ds.isel(model=np.flatnonzero(~is_baseline))
    if "model" not in ds.dims or ds.sizes["model"] == 0:
        raise ConfigError("the collected study has no models" +
                          (f" (its {n_baselines} baseline(s) are not correlated)" if n_baselines else ""))
    xs, ys = _check_names(ds, x, level, "x"), _check_names(ds, y, level, "y")
    if by is not None:
        if by not in ds.coords or ds[by].dims != ("model",):
            coords = [c for c in ds.coords if ds[c].dims == ("model",) and c != "model"]
            raise ConfigError(f"by {by}: not a coordinate on model (known: {', '.join(coords)})")
        labels = ds[by].values
        groups = list(dict.fromkeys(labels.tolist()))
    else:
        labels, groups = None, [None]
    shape = (len(groups), len(xs), len(ys))
    res = {k: np.full(shape, np.nan) for k in ("r", "p", "ci_low", "ci_high", "selection_p", "within_sd_y")}
    for k in ("n_units", "n_models", "n_distinct_x", "n_dropped", "n_dropped_units"):
        res[k] = np.zeros(shape, dtype=np.int64)
    for k in ("reason", "unit", "dropped_reason"):
        res[k] = np.full(shape, "", dtype=object)
    for g, group in enumerate(groups):
        sub = ds if group is None else ds.isel(model=np.flatnonzero(labels == group))
        keys = U.unit_keys(sub)
        levels = {v: U.variable_level(_values(sub, v), keys) for v in dict.fromkeys(xs + ys)}
        for i, xn in enumerate(xs):
            for j, yn in enumerate(ys):
                if xn == yn:
                    res["reason"][g, i, j] = "x is y"
                    continue
                rng = _pair_rng(seed, xn, yn, "" if group is None else group)
                if within is not None:
                    st = _within_pair(sub, xn, yn, within, keys, method, n_permutations, n_resamples, rng)
                else:
                    a = analysis_points(sub, xn, yn, level, keys, levels)
                    st = pair_statistics(a["x"], a["y"], method, n_permutations, n_resamples, rng=rng, what="units")
                    st.update({k: a[k] for k in ("unit", "n_units", "n_models", "n_distinct_x", "n_dropped",
                                                 "n_dropped_units", "dropped_reason", "selection_p", "within_sd_y")})
                    if st["reason"] == "constant x" and a["n_distinct_x"] == 1:
                        st["reason"] = "constant x (one distinct value over the units)"
                for k in st:
                    if k in res:
                        res[k][g, i, j] = st[k]
    q = np.full(shape, np.nan)
    tested = np.isfinite(res["p"])
    if tested.any():
        q[tested] = stats.false_discovery_control(res["p"][tested], method="bh")
    res["q"] = q
    res["selection_flag"] = (np.nan_to_num(res["selection_p"], nan=1.0) < SELECTION_ALPHA).astype(np.int8)
    dims = ("group", "x", "y")
    out = xr.Dataset({k: (dims, res[k] if res[k].dtype != object else res[k].astype(str)) for k in RESULT_VARIABLES},
                     coords={"x": xs, "y": ys})
    if by is None:
        out = out.isel(group=0, drop=True)
    else:
        out = out.assign_coords(group=np.asarray(groups))
    from ..schema import call_string, provenance

    provenance(out, title="varstruct correlations", seed=seed,
               command=call_string("varstruct.correlate", x=",".join(xs), y=",".join(ys), level=level, by=by,
                                   within=within, method=method, n_permutations=n_permutations,
                                   n_resamples=n_resamples, seed=seed))
    unit_text = UNITS[level] if within is None else \
        f"models; deviations from the means of their {U.DESCRIPTION[within]}, x permuted within units"
    out.attrs = {**out.attrs, "level": level, "unit": unit_text, "within": within or "", "method": method,
                 "n_permutations": n_permutations, "n_resamples": n_resamples, "seed": seed, "by": by or "",
                 "confidence_level": 0.95, "n_tests": int(tested.sum()), "n_baselines_excluded": n_baselines, "selection_alpha": SELECTION_ALPHA,
                 "p_value": ("two-sided permutation test, x permuted within units" if within else
                             "two-sided permutation test over units (scipy.stats.permutation_test)"),
                 "ci": ("percentile bootstrap over whole units" if within else
                        "percentile bootstrap over units (scipy.stats.bootstrap, paired)"),
                 "q_value": "Benjamini-Hochberg over all tested pairs (scipy.stats.false_discovery_control)",
                 "selection": "Mann-Whitney U of y, dropped (x NaN) vs kept (else of x, y NaN vs kept), at the "
                              "pair's unit (unit means of whole dropped units vs kept units)"}
    for k, (long_name, units) in _DESCRIBE.items():
        out[k].attrs.update({"long_name": long_name, **({"units": units} if units else {})})
    return out


_DESCRIBE = {
    "r": ("correlation coefficient over the units", "1"), "p": ("two-sided permutation p-value", "1"),
    "q": ("Benjamini-Hochberg q-value", "1"), "ci_low": ("lower end of the 95% bootstrap CI of r", "1"),
    "ci_high": ("upper end of the 95% bootstrap CI of r", "1"),
    "unit": ("unit of analysis (the points of the test)", None),
    "n_units": ("units analysed (points of the test)", None), "n_models": ("models in the analysed units", None),
    "n_distinct_x": ("distinct x values over the units", None),
    "n_dropped": ("models dropped: x or y NaN (cells at level factor)", None),
    "n_dropped_units": ("units with no model left", None), "dropped_reason": ("why models were dropped", None),
    "selection_p": ("Mann-Whitney p: dropped vs kept models differ", "1"),
    "selection_flag": ("1 where selection_p < selection_alpha", None),
    "within_sd_y": ("pooled standard deviation of y within units", None),
    "reason": ("why r is NaN", None),
}


def _within_pair(ds, x, y, within, keys, method, n_permutations, n_resamples, rng) -> dict:
    xv, yv = _values(ds, x), _values(ds, y)
    key = keys[within]
    st = within_statistics(xv, yv, key, method, n_permutations, n_resamples, rng=rng)
    kept = np.isfinite(xv) & np.isfinite(yv)
    from ..measures.nan_rules import nan_reason
    nx = int((~np.isfinite(xv) & np.isfinite(yv)).sum())
    ny = int((np.isfinite(xv) & ~np.isfinite(yv)).sum())
    reasons = ([f"{nx} x NaN: {nan_reason(x, ds[x].attrs)}"] if nx else []) + \
              ([f"{ny} y NaN: {nan_reason(y, ds[y].attrs)}"] if ny else [])
    sel = selection_test(yv[kept], yv[~np.isfinite(xv) & np.isfinite(yv)]) if nx else float("nan")
    return {**st, "unit": f"model within {within}", "n_models": st["n"],
            "n_distinct_x": int(np.unique(xv[kept]).size), "n_dropped": int((~kept).sum()),
            "n_dropped_units": len(set(key.tolist())) - len(set(key[kept].tolist())),
            "dropped_reason": "; ".join(reasons), "selection_p": sel,
            "within_sd_y": _pooled_within_sd(yv[kept], key[kept])}


def to_table(corr: xr.Dataset) -> pd.DataFrame:
    """One row per pair (and group), ranked by q (ascending), then |r| (descending); NaN rows last."""
    cols = [c for c in ("r", "p", "q", "ci_low", "ci_high", "unit", "n_units", "n_models", "n_distinct_x",
                        "n_dropped", "selection_p", "reason") if c in corr]
    df = corr[cols].to_dataframe().reset_index()
    df["_abs_r"] = -df["r"].abs()
    df = df.sort_values(["q", "_abs_r"], ascending=True, na_position="last", kind="stable").drop(columns="_abs_r")
    return df.reset_index(drop=True)
