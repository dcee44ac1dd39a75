"""A fast reader of varstruct's own result files (netCDF4 written by xarray + h5netcdf).

``xr.open_dataset(engine="h5netcdf")`` resolves every variable's dimension scales through HDF5
object references, which costs ~100-500 ms for a 40-variable scores or measures file; ``collect``
reads two per run. This reader takes the dimensions from the netCDF4 bookkeeping attributes
(``_Netcdf4Dimid`` of each dimension scale, ``_Netcdf4Coordinates`` of each variable) and applies
the CF decoding xarray applies to these files: ``_FillValue`` masking, ``dtype: bool``, variable-
length strings, the ``coordinates`` attribute. Anything else (groups, packed or time-encoded
variables, compound or enum types, string attributes it cannot decode) makes :func:`read`
return None, and the caller reads the file with xarray. ``tests/test_ncread.py`` checks that
every result file of the committed zoo reads identically (``xr.testing.assert_identical``).
"""
from __future__ import annotations

import numpy as np

_INTERNAL = {"_Netcdf4Coordinates", "_Netcdf4Dimid", "DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME",
             "_FillValue", "coordinates", "_NCProperties", "_nc3_strict"}
_UNSUPPORTED = {"scale_factor", "add_offset", "calendar", "_Unsigned", "_Encoding", "compress", "missing_value"}


class _Fallback(Exception):
    pass


def _attr(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.bytes_):
        return bytes(v).decode("utf-8")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "SO":
            raise _Fallback
        return v[0] if v.size == 1 else v
    if isinstance(v, np.generic):
        return v
    if isinstance(v, str):
        return v
    raise _Fallback


def _attrs(items) -> dict:
    return {k: _attr(v) for k, v in items if k not in _INTERNAL}


def _values(d):
    import h5py

    if d.dtype.kind == "O":
        info = h5py.check_string_dtype(d.dtype)
        if info is None:
            raise _Fallback
        raw = d[()]
        out = np.empty(np.shape(raw), dtype=object)
        flat = np.asarray(raw, dtype=object).reshape(-1)
        out.reshape(-1)[:] = [x.decode(info.encoding) if isinstance(x, bytes) else x for x in flat]
        return out.astype(str) if np.ndim(raw) else np.asarray(out[()], dtype=str)  # as xarray decodes them
    if d.dtype.kind not in "biuf":
        raise _Fallback
    return d[()]


def read(path):
    """The xr.Dataset in ``path``, or None when the file needs xarray's general reader."""
    import h5py
    import xarray as xr

    try:
        with h5py.File(path, "r") as h:
            names = {}
            datasets = {}
            for name, obj in h.items():
                if not isinstance(obj, h5py.Dataset):
                    return None  # groups
                datasets[name] = obj
                if obj.attrs.get("CLASS", b"") == b"DIMENSION_SCALE":
                    names[int(obj.attrs["_Netcdf4Dimid"])] = name
            variables, coord_names = {}, set()
            for name, d in datasets.items():
                a = d.attrs
                if _UNSUPPORTED & set(a.keys()):
                    return None
                is_scale = a.get("CLASS", b"") == b"DIMENSION_SCALE"
                if is_scale and bytes(a.get("NAME", b"")).startswith(b"This is a netCDF dimension but not"):
                    continue  # a dimension without a coordinate variable
                if "_Netcdf4Coordinates" in a:
                    dims = tuple(names[int(i)] for i in np.atleast_1d(a["_Netcdf4Coordinates"]))
                elif is_scale:
                    dims = (name,)
                elif d.shape == ():
                    dims = ()
                else:
                    return None
                if len(dims) != len(d.shape):
                    return None
                if "units" in a and " since " in str(_attr(a["units"])):
                    return None  # times
                values = _values(d)
                attrs = _attrs(a.items())
                if "_FillValue" in a and values.dtype.kind in "fiu":
                    fill = np.asarray(a["_FillValue"]).reshape(-1)[0]
                    if not (values.dtype.kind == "f" and np.isnan(fill)):
                        mask = values == fill
                        if np.any(mask):
                            values = np.where(mask, np.nan, values.astype(np.float64))
                        elif values.dtype.kind in "iu":
                            values = values.astype(np.float64)  # xarray decodes masked ints as float
                if attrs.get("dtype") == "bool":
                    attrs.pop("dtype")
                    values = values.astype(bool)
                if "coordinates" in a:
                    coord_names.update(str(_attr(a["coordinates"])).split())
                if is_scale:
                    coord_names.add(name)
                variables[name] = xr.Variable(dims, values, attrs)
            root = dict(h.attrs.items())
            if "coordinates" in root:
                coord_names.update(str(_attr(root["coordinates"])).split())
            gattrs = _attrs(root.items())
    except _Fallback:
        return None
    except (OSError, KeyError, ValueError):
        return None
    coords = {k: v for k, v in variables.items() if k in coord_names}
    data = {k: v for k, v in variables.items() if k not in coord_names}
    return xr.Dataset(data, coords=coords, attrs=gattrs)
