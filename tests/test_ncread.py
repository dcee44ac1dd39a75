"""The fast reader of result files gives exactly what xarray gives, and defers to xarray otherwise."""
import glob
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from varstruct.io import read_netcdf, write_netcdf
from varstruct.ncread import read

ROOT = Path(__file__).resolve().parents[1]


def _same(a, b):
    xr.testing.assert_identical(a, b)
    for k in b.variables:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].attrs.keys() == b[k].attrs.keys(), k


def _xarray(path):
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def test_every_feature_of_a_result_file(tmp_path):
    ds = xr.Dataset(
        {"score": ((), 0.25, {"long_name": "a score", "units": "1"}),
         "per_factor": (("factor",), np.array([0.1, np.nan, 0.3])),
         "counts": (("factor",), np.array([1, -1, 3], dtype=np.int64)),
         "flags": (("latent",), np.array([True, False])),
         "matrix": (("latent", "factor"), np.arange(6.0).reshape(2, 3)),
         "no_coord_dim": (("anchor", "factor"), np.ones((4, 3), dtype=np.float32)),
         "label": ((), "text")},
        coords={"factor": ["A", "B", "long_name_here"], "latent": [0, 1],
                "factor_type": ("factor", ["ordinal", "circular", "categorical"]),
                "factor_size": ("factor", [24, 40, 3]), "scalar_coord": 3.5},
        attrs={"title": "t", "seed": 0, "params": '{"r": 2}', "sizes": np.array([1, 2, 3]), "ratio": 0.5})
    p = tmp_path / "x.nc"
    write_netcdf(ds, p)
    got = read(p)
    assert got is not None
    _same(got, _xarray(p))
    _same(read_netcdf(p), _xarray(p))


@pytest.mark.parametrize("pattern", ["pretrained/_dataset_measures/*.nc", "pretrained/toy_context/**/scores.nc",
                                     "pretrained/dsprites/**/measures.nc", "tests/data/**/*.nc"])
def test_committed_result_files_read_identically(pattern):
    files = sorted(glob.glob(str(ROOT / pattern), recursive=True))[:3]
    if not files:
        pytest.skip(f"no file matches {pattern}")
    for f in files:
        got = read(f)
        assert got is not None, f
        _same(got, _xarray(f))


def test_files_it_does_not_handle_go_to_xarray(tmp_path):
    import pandas as pd

    times = xr.Dataset({"v": (("time",), [1.0, 2.0])},
                       coords={"time": pd.date_range("2026-01-01", periods=2)})
    p = tmp_path / "t.nc"
    times.to_netcdf(p, engine="h5netcdf")
    assert read(p) is None  # time-encoded: xarray decodes it
    xr.testing.assert_identical(read_netcdf(p), _xarray(p))
    g = tmp_path / "g.nc"
    times.to_netcdf(g, engine="h5netcdf")
    xr.Dataset({"w": ("x", [1.0])}).to_netcdf(g, engine="h5netcdf", group="sub", mode="a")
    assert read(g) is None  # groups
    assert read(tmp_path / "missing.nc") is None
