"""evaluate() against recorded outputs: the Dataset (variables, their order, dims, dtypes, values,
attrs, coordinates) is identical to the one recorded by tests/data/make_evaluate_reference.py
from the code before the score registry (only the when/which-version attrs are left out)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from varstruct.io import read_netcdf, write_netcdf

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_evaluate_reference", DATA / "make_evaluate_reference.py")
REF = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(REF)


def _stable(ds):
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in REF.VOLATILE}
    return ds


@pytest.mark.parametrize("case", list(REF.CASES))
def test_evaluate_matches_recorded_dataset(case, tmp_path):
    res = REF.evaluate_case(case)
    assert set(REF.VOLATILE) <= set(res.attrs)
    write_netcdf(res, tmp_path / "scores.nc")
    ref, back = _stable(read_netcdf(REF.path(case))), _stable(read_netcdf(tmp_path / "scores.nc"))
    assert list(res.data_vars) == list(ref.data_vars)
    assert {k: v.dtype for k, v in res.data_vars.items()} == {k: v.dtype for k, v in ref.data_vars.items()}
    assert list(res.coords) == list(ref.coords)
    xr.testing.assert_identical(back, ref)  # values bit for bit, dims, every attr
    for k in ref.data_vars:
        np.testing.assert_array_equal(res[k].values, ref[k].values, strict=True)
