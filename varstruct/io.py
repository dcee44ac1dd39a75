"""Atomic file writing (temp file in the target's folder + rename) and netCDF helpers.

Every OS-level failure of a write (full disk, read-only folder, ...) becomes one
:class:`OutputError` line naming the file; the temp file is removed, the target is untouched.
netCDF files are serialised in memory first, so a full disk fails in a plain write, never
inside HDF5.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


from .errors import OutputError, first_line  # noqa: E402,F401


def check_folder(folder: str | os.PathLike, prefix: str) -> Path:
    """Fail with one line "<prefix>: ..." unless ``folder`` is an existing, writable folder."""
    folder = Path(folder)
    if not folder.exists():
        raise OutputError(f"{prefix}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{prefix}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{prefix}: folder {folder} is not writable")
    return folder


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before long work, if ``path``'s folder does not exist or is not writable."""
    path = Path(path)
    check_folder(path.parent if str(path.parent) else Path("."), f"cannot write {path}")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temp path beside ``path``; on success rename it onto ``path``, else remove it."""
    path = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or first_line(e)}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"cannot write {path}: {e.strerror or first_line(e)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_file(path, data) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (the one place bytes hit the disk)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        _write_file(tmp, data)
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def netcdf_safe_attrs(attrs: dict) -> dict:
    """netCDF attrs hold numbers, strings and 1-D arrays: JSON-encode everything else."""
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bool):
            out[k] = int(v)
        elif v is None:
            out[k] = "none"
        elif isinstance(v, (str, int, float, np.integer, np.floating)):
            out[k] = v
        elif isinstance(v, (list, tuple, np.ndarray)) and len(v) and all(
                isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) for x in v):
            out[k] = np.asarray(v)
        else:
            out[k] = json.dumps(v, default=_json_default)
    return out


def write_netcdf(ds, path) -> Path:
    """Write an xarray Dataset to netCDF (h5netcdf engine) atomically."""
    ds = ds.copy()
    ds.attrs = netcdf_safe_attrs(ds.attrs)
    for v in ds.variables.values():
        v.attrs = netcdf_safe_attrs(v.attrs)
    data = ds.to_netcdf(engine="h5netcdf")  # in memory: a full disk cannot fail inside HDF5
    return write_bytes(path, data)


def read_netcdf(path):
    """The xr.Dataset in a netCDF file, loaded into memory. varstruct's own result files are read by
    :mod:`varstruct.ncread` (the same Dataset, 3-4x faster); anything else by xarray (h5netcdf)."""
    import xarray as xr

    from .ncread import read

    ds = read(path)
    if ds is not None:
        return ds
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


# ---------------------------------------------------------------- the one output check
def probe_folder(folder: Path, label: str, path: Path) -> None:
    """Create and remove a file in ``folder``: catches read-only mounts that os.access misses."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".varstruct-probe.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputError(f"{label} {path}: cannot write in {folder} ({e.strerror or first_line(e)})") from None


def check_output_file(path: str | os.PathLike, overwrite: bool, label: str = "output") -> Path:
    """The one output check for a result file, run before any work.

    ``path`` must be a new name in an existing, writable folder, or (with ``overwrite``) an
    existing regular file. Refused with one :class:`OutputError` line that starts with
    ``label`` and the path: a folder, a device, FIFO or socket (``/dev/full``, ``/dev/null``),
    a symbolic link (a result never replaces what a link points to), and an existing file
    without ``overwrite``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"{label} {path}: is a folder; give a file name")
    check_folder(parent, f"{label} {path}")
    probe_folder(parent, label, path)
    if path.exists() or path.is_symlink():
        if path.is_symlink() or not path.is_file():
            raise OutputError(f"{label} {path}: not a regular file; give a new file name")
        if not overwrite:
            raise OutputError(f"{label} {path}: exists (use --overwrite to replace it)")
    return path


def check_output_dir(path: str | os.PathLike, overwrite: bool, owned=(), label: str = "output") -> Path:
    """The output check for a folder of results (a report), run before any work.

    ``path`` is created if missing (its parent must exist). An existing folder must be empty,
    unless ``overwrite``: then the files in it that match the glob patterns ``owned`` (the files
    the command writes) are removed first, and any other file is left alone. Refused with one
    :class:`OutputError` line: a path that is a file, device or link, and a non-empty folder
    without ``overwrite``. Returns the folder's Path.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputError(f"{label} {path}: not a folder; give a new folder name")
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        check_folder(parent, f"{label} {path}")
        try:
            path.mkdir()
        except OSError as e:
            raise OutputError(f"{label} {path}: cannot create it ({e.strerror or first_line(e)})") from None
        return path
    check_folder(path, f"{label} {path}")
    probe_folder(path, label, path)
    entries = [p for p in path.iterdir() if not p.name.startswith(".varstruct-probe.")]
    if entries and not overwrite:
        raise OutputError(f"{label} {path}: folder is not empty (use --overwrite to replace its results)")
    if overwrite:
        for pattern in owned:
            for p in path.glob(pattern):
                if p.is_file() or p.is_symlink():
                    try:
                        p.unlink()
                    except OSError as e:
                        raise OutputError(f"{label} {path}: cannot remove {p.name} "
                                          f"({e.strerror or first_line(e)})") from None
    return path
