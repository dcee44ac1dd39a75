"""One result schema for every xr.Dataset varstruct writes (docs/results.md).

Every result carries the same provenance attrs (:func:`provenance`) and, on each data variable,
``long_name``, ``units`` where meaningful (``"1"`` for dimensionless, as in CF) and
``definition``, a link into docs/measures.md (:func:`describe`). Attrs hold only str, int,
float and 1-D numeric arrays of length >= 2 (:func:`canonical_attrs`), so a result reads back
from netCDF with the attrs it had in memory: booleans are stored as 0/1, None is left out,
dicts, strings lists and short lists are JSON strings.

:func:`check_result` is the gate for reading results back: a netCDF file counts as a varstruct
result only when it carries this schema's provenance (its ``title`` and ``source``) and every
data variable carries ``long_name`` and ``definition``.
"""
from __future__ import annotations

import datetime as _dt
import json
import shlex
import sys

import numpy as np

CONVENTIONS = "CF-1.10"
DOCS = "docs/measures.md"
DIMENSIONLESS = "1"


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def to_json(value) -> str:
    """Compact, key-sorted JSON (numpy values as numbers, anything else as its str)."""
    return json.dumps(value, sort_keys=True, default=_json_default)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def canonical_value(v):
    """The stored form of one attr value, or None to leave it out (see the module docstring)."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        arr = np.asarray(v) if not isinstance(v, np.ndarray) else v
        if arr.ndim == 1 and len(arr) >= 2 and all(_is_number(x) for x in arr.tolist()):
            return arr.astype(np.int64 if np.issubdtype(arr.dtype, np.integer) else np.float64)
    return to_json(v)


def canonical_attrs(attrs: dict) -> dict:
    """``attrs`` with every value in its stored form (None values dropped)."""
    out = {}
    for k, v in attrs.items():
        c = canonical_value(v)
        if c is not None:
            out[str(k)] = c
    return out


def now_iso() -> str:
    """Current UTC time, ISO 8601 to the second: ``2026-12-02T05:30:00Z``."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def cli_command() -> str | None:
    """The command line when running under the ``varstruct`` CLI (console script or
    ``python -m varstruct``), else None."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    argv0 = sys.argv[0] if sys.argv else ""
    if (spec is not None and spec.name == "varstruct.__main__") or argv0.rsplit("/", 1)[-1] == "varstruct":
        return shlex.join(["varstruct", *sys.argv[1:]])
    return None


def call_string(func: str, **kwargs) -> str:
    """``func(k=v, ...)`` for the record of a library call (values as repr, None left out)."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if v is not None)
    return f"{func}({args})"


def provenance(ds, *, title: str | None = None, dataset: str | None = None, dataset_params=None,
               seed: int | None = None, n_anchors: int | None = None, command: str | None = None,
               **extra):
    """Stamp ``ds`` (an xr.Dataset, changed in place and returned) with the provenance attrs.

    Sets Conventions (CF-1.10), title, source / varstruct_version (package version), created
    (ISO 8601 UTC), command (the CLI command line when under the CLI, else ``command``),
    history (``created: command``, as CF), references, dataset, dataset_params (a JSON string;
    a str is taken as JSON already), seed, n_anchors, and every ``extra`` attr (sizes, options).
    Arguments left None are not written. Existing attrs of ``ds`` are kept unless given here;
    all end up in stored form (:func:`canonical_attrs`)."""
    from . import __version__

    created = now_iso()
    cmd = cli_command() or command
    attrs = dict(ds.attrs)
    attrs.update({
        "Conventions": CONVENTIONS,
        "title": title or attrs.get("title"),
        "source": f"varstruct {__version__}",
        "varstruct_version": __version__,
        "created": created,
        "command": cmd,
        "history": f"{created}: {cmd}" if cmd else None,
        "references": f"{DOCS} (measure definitions), docs/results.md (this schema)",
        "dataset": dataset,
        "dataset_params": (dataset_params if isinstance(dataset_params, str) or dataset_params is None
                           else to_json(dict(dataset_params))),
        "seed": None if seed is None else int(seed),
        "n_anchors": None if n_anchors is None else int(n_anchors),
    })
    attrs.update(extra)
    ds.attrs = canonical_attrs(attrs)
    return ds


def describe(ds, spec: dict):
    """Set ``long_name``, ``units`` (omitted when None) and ``definition`` (``docs/measures.md#anchor``)
    on the variables of ``ds`` named in ``spec`` = {name: (long_name, units, anchor)}; changed in
    place and returned. Variables of ``spec`` missing from ``ds`` are skipped."""
    for name, (long_name, units, anchor) in spec.items():
        if name not in ds.variables:
            continue
        attrs = dict(ds[name].attrs)
        attrs.update({"long_name": long_name, "units": units,
                      "definition": f"{DOCS}#{anchor}" if anchor else None})
        ds[name].attrs = canonical_attrs(attrs)
    return ds


def missing_descriptions(ds) -> list[str]:
    """Names of data variables without ``long_name`` or ``definition`` (empty when the result is complete)."""
    return [k for k, v in ds.data_vars.items() if not v.attrs.get("long_name") or not v.attrs.get("definition")]


def attrs_equal(a: dict, b: dict) -> bool:
    """Whether two attr dicts hold the same keys and values (arrays compared element-wise, NaN == NaN)."""
    if set(a) != set(b):
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
        elif not np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) or np.ndim(x) != np.ndim(y):
            return False
    return True


#: the ``title`` of each kind of result varstruct writes (the producers pass these to :func:`provenance`)
TITLES = {
    "scores": "varstruct disentanglement scores",
    "model_measures": "varstruct model measures",
    "dataset_measures": "varstruct dataset measures",
    "study": "varstruct collected study",
    "correlations": "varstruct correlations",
}


def check_result(ds, path, kind: str, dataset: str | None = None):
    """``ds`` (read from ``path``) if it is a varstruct result of ``kind`` (a key of
    :data:`TITLES`), else :class:`varstruct.errors.ResultFileError` with one line naming the file
    and what is wrong. Checked: the global attrs ``title`` (the kind's title), ``source``
    (``"varstruct <version>"``) and ``varstruct_version``; at least one data variable, each with
    ``long_name`` and ``definition`` (a result of this schema); and, when ``dataset`` is given,
    the ``dataset`` attr. A foreign netCDF (say a ``temperature`` on ``time``) fails the first
    check. The check is about provenance, not authenticity: it catches a wrong or foreign file,
    not a forged one."""
    from .errors import ResultFileError

    want = TITLES[kind]
    attrs = ds.attrs
    title, source = attrs.get("title"), attrs.get("source")
    if title != want or not isinstance(source, str) or not source.startswith("varstruct ") \
            or "varstruct_version" not in attrs:
        got = f"title {title!r}" if title is not None else "no varstruct provenance attrs"
        raise ResultFileError(f"{path}: not a varstruct result file ({want!r} expected, {got}; see docs/results.md)")
    if not ds.data_vars:
        raise ResultFileError(f"{path}: a {want} file without variables")
    missing = missing_descriptions(ds)
    if missing:
        raise ResultFileError(f"{path}: variable(s) {', '.join(missing[:5])} lack long_name/definition "
                              f"(not written by varstruct; see docs/results.md)")
    if dataset is not None and attrs.get("dataset") != dataset:
        raise ResultFileError(f"{path}: made on dataset {attrs.get('dataset')!r}, not {dataset!r}")
    return ds
