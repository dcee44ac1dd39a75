"""``correlate(collected)``: rank/linear correlations between measures and scores of a study.

Units of analysis (``level``):
- ``model``: each model is a point; x a per-model measure (dataset measure of its training data, a
  model measure or a numeric config coordinate such as ``hp_beta``), y a global score.
- ``factor``: each (dataset configuration, factor) is a point; x a per-factor measure, y a
  per-factor score, both averaged (NaN-aware) over the models trained on that dataset
  configuration (seeds, methods; within a ``by`` group when given).

Per (x, y) pair over the n points where both are finite: the coefficient r (Pearson, Spearman =
Pearson of ranks with average ties, or Kendall τ_b); a two-sided permutation p-value
(``scipy.stats.permutation_test``, pairings); a percentile bootstrap 95% CI of r
(``scipy.stats.bootstrap``, paired; a resample with constant x or y counts as r = 0); and
Benjamini–Hochberg q-values over every tested pair (``scipy.stats.false_discovery_control``).
Each pair gets its own generator, seeded from (seed, x, y, group), so its numbers do not depend
on which other pairs are tested. n < 4, constant x or constant y give NaN and a ``reason``.
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

METHODS = ("spearman", "pearson", "kendall")
LEVELS = ("model", "factor")
MIN_POINTS = 4
UNITS = {"model": "each model is a point (x: a per-model measure or config value, y: a global score)",
         "factor": "each (dataset configuration, factor) is a point; x and y averaged over the models "
                   "(seeds, methods) trained on that dataset configuration"}
_KENDALL_BATCH_ELEMENTS = 2 ** 24


def _pearson(x, y, axis=-1):
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=axis) / np.sqrt((xc * xc).sum(axis=axis) * (yc * yc).sum(axis=axis))


def _spearman(x, y, axis=-1):
    return _pearson(stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis), axis=axis)


def _kendall(x, y, axis=-1):
    """τ_b = Σ_ij sgn(x_i−x_j) sgn(y_i−y_j) / √(Σ sgn(x_i−x_j)² · Σ sgn(y_i−y_j)²)."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    x, y = np.broadcast_arrays(x, y)
    dx = np.sign(x[..., :, None] - x[..., None, :])
    dy = np.sign(y[..., :, None] - y[..., None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=(-1, -2)) / np.sqrt((dx * dx).sum(axis=(-1, -2)) * (dy * dy).sum(axis=(-1, -2)))


STATISTICS = {"pearson": _pearson, "spearman": _spearman, "kendall": _kendall}


def _pair_rng(seed: int, *names) -> np.random.Generator:
    key = [zlib.crc32("\x1f".join(map(str, names)).encode())]
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def pair_statistics(x, y, method: str = "spearman", n_permutations: int = 999, n_resamples: int = 999,
                    rng=None, confidence_level: float = 0.95) -> dict:
    """{r, p, ci_low, ci_high, n, reason} for one pair (NaN entries dropped first)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(ok.sum())
    out = {"r": np.nan, "p": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": n, "reason": ""}
    if n < MIN_POINTS:
        out["reason"] = f"n = {n} < {MIN_POINTS}"
        return out
    if np.all(x == x[0]):
        out["reason"] = "constant x"
        return out
    if np.all(y == y[0]):
        out["reason"] = "constant y"
        return out
    rng = np.random.default_rng(rng)
    f = STATISTICS[method]
    batch = max(1, _KENDALL_BATCH_ELEMENTS // (n * n)) if method == "kendall" else None
    out["r"] = float(f(x, y))
    perm = stats.permutation_test((x,), lambda xs, axis=-1: f(xs, y, axis=axis), permutation_type="pairings",
                                  vectorized=True, n_resamples=n_permutations, alternative="two-sided",
                                  batch=batch, rng=rng)
    out["p"] = float(perm.pvalue)

    def boot(xs, ys, axis=-1):
        return np.nan_to_num(f(xs, ys, axis=axis), nan=0.0)

    ci = stats.bootstrap((x, y), boot, paired=True, vectorized=True, n_resamples=n_resamples,
                         confidence_level=confidence_level, method="percentile", batch=batch, rng=rng)
    out["ci_low"], out["ci_high"] = float(ci.confidence_interval.low), float(ci.confidence_interval.high)
    return out


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
        raise ConfigError(f"--{role}: give at least one variable")
    for name in names:
        if name not in ds.variables:
            opts = candidates(ds, level, role)
            raise ConfigError(f"--{role} {name}: not in the collected study (e.g. {', '.join(opts[:8]) or 'none'})")
        v = ds[name]
        ok_dims = {("model",)} if level == "model" else {("model",), ("model", "factor")}
        if v.dims not in ok_dims or not _numeric(v):
            raise ConfigError(f"--{role} {name}: needs numeric values with dims "
                              f"{' or '.join(map(str, ok_dims))} at level {level}, has {v.dims} {v.dtype}")
    return names


def points(ds: xr.Dataset, x: str, y: str, level: str = "model") -> pd.DataFrame:
    """The points of one pair: DataFrame with columns x, y, dataset, label (NaN rows kept)."""
    check_choice("level", level, LEVELS, error=ConfigError)
    if level == "model":
        return pd.DataFrame({"x": ds[x].values.astype(float), "y": ds[y].values.astype(float),
                             "dataset": ds["dataset"].values.astype(str), "label": ds["model"].values.astype(str)})
    key = ds["dataset_config"].values.astype(str)
    rows = []
    xv = ds[x].broadcast_like(ds[y]) if "factor" not in ds[x].dims else ds[x]
    yv = ds[y].broadcast_like(ds[x]) if "factor" not in ds[y].dims else ds[y]
    xv, yv = xv.transpose("model", "factor").values.astype(float), yv.transpose("model", "factor").values.astype(float)
    for k in dict.fromkeys(key):
        sel = key == k
        name = str(ds["dataset"].values[sel][0])
        with warnings.catch_warnings():  # all-NaN columns (a factor this dataset lacks) give NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mx, my = np.nanmean(xv[sel], axis=0), np.nanmean(yv[sel], axis=0)
        for j, f in enumerate(ds["factor"].values.astype(str)):
            if np.isfinite(mx[j]) or np.isfinite(my[j]):
                rows.append({"x": mx[j], "y": my[j], "dataset": name, "label": f"{k}:{f}"})
    return pd.DataFrame(rows, columns=["x", "y", "dataset", "label"])


def _load(collected) -> xr.Dataset:
    if isinstance(collected, xr.Dataset):
        return collected
    path = Path(collected)
    if path.is_dir():
        from .collect import collect
        return collect(path)
    if path.is_file():
        from ..io import read_netcdf
        try:
            return read_netcdf(path)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input problem
            raise ConfigError(f"{path}: not a collected study netCDF ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    raise ConfigError(f"{path}: no such models dir or study file")


def correlate(collected, x=None, y=None, level: str = "model", by: str | None = None, method: str = "spearman",
              n_permutations: int = 999, n_resamples: int = 999, seed: int = 0) -> xr.Dataset:
    """Correlations of every (x, y) pair; see the module docstring.

    collected: a collected study (:func:`varstruct.collect`), a netCDF of one, or a models dir.
    x, y: variable names (list or comma-separated); None picks the level's measures / scores.
    by: a coordinate on ``model``; the analysis is repeated within each of its values (dim ``group``).
    Returns an xr.Dataset with dims (x, y) [+ group]: r, p, q, ci_low, ci_high, n, reason;
    attrs: level, unit, method, n_permutations, n_resamples, seed, by, confidence_level, n_tests.
    """
    check_choice("level", level, LEVELS, error=ConfigError)
    check_choice("method", method, METHODS, error=ConfigError)
    n_permutations = check_int("n_permutations", n_permutations, 1, error=ConfigError)
    n_resamples = check_int("n_resamples", n_resamples, 2, error=ConfigError)
    seed = check_seed("seed", seed, error=ConfigError)
    ds = _load(collected)
    if "model" not in ds.dims or ds.sizes["model"] == 0:
        raise ConfigError("the collected study has no models")
    xs, ys = _check_names(ds, x, level, "x"), _check_names(ds, y, level, "y")
    if by is not None:
        if by not in ds.coords or ds[by].dims != ("model",):
            coords = [c for c in ds.coords if ds[c].dims == ("model",) and c != "model"]
            raise ConfigError(f"--by {by}: not a coordinate on model (known: {', '.join(coords)})")
        labels = ds[by].values
        groups = list(dict.fromkeys(labels.tolist()))
    else:
        labels, groups = None, [None]
    shape = (len(groups), len(xs), len(ys))
    res = {k: np.full(shape, np.nan) for k in ("r", "p", "ci_low", "ci_high")}
    res["n"] = np.zeros(shape, dtype=np.int64)
    res["reason"] = np.full(shape, "", dtype=object)
    for g, group in enumerate(groups):
        sub = ds if group is None else ds.isel(model=np.flatnonzero(labels == group))
        for i, xn in enumerate(xs):
            for j, yn in enumerate(ys):
                if xn == yn:
                    res["reason"][g, i, j] = "x is y"
                    continue
                pts = points(sub, xn, yn, level)
                st = pair_statistics(pts["x"].values, pts["y"].values, method, n_permutations, n_resamples,
                                     rng=_pair_rng(seed, xn, yn, "" if group is None else group))
                for k in ("r", "p", "ci_low", "ci_high", "n", "reason"):
                    res[k][g, i, j] = st[k]
    q = np.full(shape, np.nan)
    tested = np.isfinite(res["p"])
    if tested.any():
        q[tested] = stats.false_discovery_control(res["p"][tested], method="bh")
    res["q"] = q
    dims = ("group", "x", "y")
    out = xr.Dataset({k: (dims, res[k] if k != "reason" else res[k].astype(str))
                      for k in ("r", "p", "q", "ci_low", "ci_high", "n", "reason")},
                     coords={"x": xs, "y": ys})
    if by is None:
        out = out.isel(group=0, drop=True)
    else:
        out = out.assign_coords(group=np.asarray(groups))
    from ..schema import call_string, provenance

    provenance(out, title="varstruct correlations", seed=seed,
               command=call_string("varstruct.correlate", x=",".join(xs), y=",".join(ys), level=level, by=by,
                                   method=method, n_permutations=n_permutations, n_resamples=n_resamples,
                                   seed=seed))
    out.attrs = {**out.attrs, "level": level, "unit": UNITS[level], "method": method, "n_permutations": n_permutations,
                 "n_resamples": n_resamples, "seed": seed, "by": by or "", "confidence_level": 0.95,
                 "n_tests": int(tested.sum()), "p_value": "two-sided permutation test (scipy.stats.permutation_test)",
                 "ci": "percentile bootstrap (scipy.stats.bootstrap, paired)",
                 "q_value": "Benjamini-Hochberg over all tested pairs (scipy.stats.false_discovery_control)"}
    return out


def to_table(corr: xr.Dataset) -> pd.DataFrame:
    """One row per pair (and group), sorted by |r| descending, NaN rows last."""
    df = corr[["r", "p", "q", "ci_low", "ci_high", "n", "reason"]].to_dataframe().reset_index()
    df["abs_r"] = df["r"].abs()
    df = df.sort_values("abs_r", ascending=False, na_position="last", kind="stable").drop(columns="abs_r")
    return df.reset_index(drop=True)
