"""Loaders for the other standard datasets in their original release formats (nothing is
downloaded; users who have the files pass them with ``--data-file``). See docs/datasets.md.

- ``mpi3d``: the ``.npz`` release, ``images`` uint8 [N, 64, 64, 3] in C order over the factor
  grid object_color, object_shape, object_size, camera_height, background_color,
  horizontal_axis, vertical_axis with sizes [6, 6, 2, 3, 3, 40, 40] (mpi3d_real, N = 1,036,800)
  or [4, 4, 2, 3, 3, 40, 40] (mpi3d_toy / mpi3d_realistic, N = 460,800), as disentanglement_lib.
  An uncompressed member is memory-mapped (the real file is 12.7 GB), a compressed one read.
- ``smallnorb``: the NORB binary matrices ``smallnorb-<chunk>-{dat,cat,info}.mat`` (int32 magic
  number 0x1E3D4C55 uint8 / 0x1E3D4C54 int32, int32 ndim, max(3, ndim) int32 dims, the data).
  ``--data-file`` names one ``*-dat.mat``; its ``-cat``/``-info`` siblings are read, and the
  other chunk of the release (training/testing) too when it sits in the same folder, as
  disentanglement_lib concatenates both. Factors category (5), instance (10), elevation (9),
  azimuth (18, circular; the stored 0, 2, ..., 34 halved), lighting (6); the instance is a
  categorical factor (disentanglement_lib draws it at random). The left camera image (96x96)
  is resized to 64x64 with PIL's Lanczos filter (``ANTIALIAS``) as disentanglement_lib.
- ``cars3d``: the folder of ``*.mat`` files (``--data-file`` names the folder or any ``.mat`` in
  it), one per car model, each with ``im`` uint8 [H, W, 3, 24 azimuths, 4 elevations];
  factors elevation (4), azimuth (24, circular), model (183, categorical; files in sorted
  name order), images resized to 64x64 with PIL's Lanczos filter as disentanglement_lib.

Factors span the full grid of the values present (a file with fewer values gives a smaller
grid); a missing grid point, a wrong shape or dtype, or a truncated file raises a one-line
:class:`DatasetError`. Nothing is unpickled (np.load with allow_pickle=False; scipy.io.loadmat).
"""
from __future__ import annotations

import glob
import os
import re
import zipfile

import numpy as np

from .base import DatasetError, Factor, FactorDataset
from ._arrays import ArrayFactorDataset, npy_header

SIZE = 64


class FileOnly(FactorDataset):
    """A dataset that exists only as a release file: building it without one is an error."""

    release = ""

    def __init__(self):
        raise DatasetError(f"{self.name}: no procedural version; pass --data-file (the {self.release})")


class MPI3D(FileOnly):
    name, release = "mpi3d", "mpi3d .npz release"


class SmallNORB(FileOnly):
    name, release = "smallnorb", "smallnorb-*-dat.mat file of the NORB release"


class Cars3D(FileOnly):
    name, release = "cars3d", "folder of Cars3D .mat files"


def _resize(img: np.ndarray) -> np.ndarray:
    """uint8 [H, W] or [H, W, 3] -> uint8 [64, 64(, 3)], PIL Lanczos (ANTIALIAS) as disentanglement_lib."""
    from PIL import Image

    if img.shape[:2] == (SIZE, SIZE):
        return img
    return np.asarray(Image.fromarray(img).resize((SIZE, SIZE), Image.LANCZOS))


def _uint8_source(images: np.ndarray, channels: int):
    """render source over stored uint8 images [N, 64, 64(, C)] -> float32 [B, 64, 64, C] in [0, 1]."""
    def source(flat):
        return images[np.asarray(flat)].astype(np.float32).reshape(-1, SIZE, SIZE, channels) / np.float32(255.0)
    return source


# ---- MPI3D ----------------------------------------------------------------------------------
MPI3D_FACTORS = (("object_color", "categorical"), ("object_shape", "categorical"), ("object_size", "ordinal"),
                 ("camera_height", "ordinal"), ("background_color", "categorical"),
                 ("horizontal_axis", "ordinal"), ("vertical_axis", "ordinal"))
MPI3D_SIZES = {"real": (6, 6, 2, 3, 3, 40, 40), "toy": (4, 4, 2, 3, 3, 40, 40)}  # toy also realistic


def _npz_member(path: str, key: str):
    """(shape, dtype, array-or-memmap) of ``key`` in an .npz: memory-mapped when stored uncompressed."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise DatasetError(f"data file {path}: not an .npz archive") from None
    with zf:
        if f"{key}.npy" not in zf.namelist():
            raise DatasetError(f"data file {path}: no array {key!r} (holds {', '.join(sorted(zf.namelist()))})")
        info = zf.getinfo(f"{key}.npy")
        with zf.open(info) as f:
            shape, fortran, dtype = npy_header(f, path, key)
            header_len = f.tell() if info.compress_type == zipfile.ZIP_STORED else None
    if dtype.hasobject:
        raise DatasetError(f"data file {path}: {key} holds Python objects (never unpickled)")
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if header_len is not None and not fortran:
        with open(path, "rb") as fh:  # local file header: 30 bytes + name + extra field
            fh.seek(info.header_offset + 26)
            n_name, n_extra = np.frombuffer(fh.read(4), "<u2")
        start = info.header_offset + 30 + int(n_name) + int(n_extra) + header_len
        if info.file_size - header_len < nbytes or os.path.getsize(path) < start + nbytes:
            raise DatasetError(f"data file {path}: {key} is truncated")
        return shape, dtype, np.memmap(path, dtype=dtype, mode="r", offset=start, shape=tuple(shape))
    try:
        with np.load(path, allow_pickle=False) as z:
            return shape, dtype, z[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"data file {path}: cannot read {key} ({e})") from None


def load_mpi3d(path: str) -> ArrayFactorDataset:
    """MPI3D from its .npz release (see the module docstring)."""
    shape, dtype, images = _npz_member(path, "images")
    if len(shape) != 4 or tuple(shape[1:]) != (SIZE, SIZE, 3) or dtype != np.uint8:
        raise DatasetError(f"data file {path}: images has shape {tuple(shape)} ({dtype}), "
                           "expected uint8 [N, 64, 64, 3]")
    sizes = next((s for s in MPI3D_SIZES.values() if int(np.prod(s)) == shape[0]), None)
    if sizes is None:
        known = ", ".join(f"{k} {int(np.prod(s))} = {'x'.join(map(str, s))}" for k, s in MPI3D_SIZES.items())
        raise DatasetError(f"data file {path}: {shape[0]} images, expected the full MPI3D grid ({known})")
    factors = [Factor(n, s, t, np.arange(float(s))) for (n, t), s in zip(MPI3D_FACTORS, sizes)]
    return ArrayFactorDataset("mpi3d", factors, (SIZE, SIZE, 3), _uint8_source(images, 3), path)


# ---- SmallNORB ------------------------------------------------------------------------------
NORB_MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32, 0x1E3D4C51: np.float32, 0x1E3D4C53: np.float64}
NORB_CHUNKS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")


def read_norb_matrix(path: str, mmap: bool = False) -> np.ndarray:
    """A NORB binary matrix: int32 magic, int32 ndim, max(3, ndim) int32 dims, then the data."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise DatasetError(f"data file {path}: truncated NORB header")
            magic, ndim = (int(v) for v in np.frombuffer(head, "<i4"))
            if magic not in NORB_MAGIC:
                raise DatasetError(f"data file {path}: not a NORB binary matrix (magic {magic:#x})")
            if not 0 < ndim <= 8:
                raise DatasetError(f"data file {path}: NORB header has {ndim} dimensions")
            raw = f.read(4 * max(3, ndim))
    except OSError as e:
        raise DatasetError(f"data file {path}: cannot read ({e})") from None
    if len(raw) < 4 * max(3, ndim):
        raise DatasetError(f"data file {path}: truncated NORB header")
    dims = tuple(int(v) for v in np.frombuffer(raw, "<i4")[:ndim])
    dtype = np.dtype(NORB_MAGIC[magic])
    offset = 8 + 4 * max(3, ndim)
    need = offset + int(np.prod(dims)) * dtype.itemsize
    if min(dims) < 0 or os.path.getsize(path) < need:
        raise DatasetError(f"data file {path}: truncated (dims {list(dims)} need {need} bytes, "
                           f"the file has {os.path.getsize(path)})")
    if mmap:
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=dims)
    return np.fromfile(path, dtype=dtype, count=int(np.prod(dims)), offset=offset).reshape(dims)


def _norb_chunk(dat: str):
    stem = dat[:-len("-dat.mat")]
    cat, info = read_norb_matrix(stem + "-cat.mat"), read_norb_matrix(stem + "-info.mat")
    images = read_norb_matrix(dat, mmap=True)
    n = images.shape[0]
    if images.ndim != 4 or images.shape[1] != 2 or images.dtype != np.uint8:
        raise DatasetError(f"data file {dat}: images {list(images.shape)} ({images.dtype}), "
                           "expected uint8 [N, 2, H, W]")
    if cat.shape != (n,) or info.shape != (n, 4):
        raise DatasetError(f"data file {stem}-cat/-info.mat: shapes {list(cat.shape)}, {list(info.shape)}, "
                           f"expected [{n}] and [{n}, 4]")
    small = np.stack([_resize(np.ascontiguousarray(images[i, 0])) for i in range(n)]) if n else \
        np.zeros((0, SIZE, SIZE), np.uint8)
    return small, np.column_stack([cat, info]).astype(np.int64)


def load_smallnorb(path: str) -> ArrayFactorDataset:
    """SmallNORB from its binary matrices (see the module docstring)."""
    if not path.endswith("-dat.mat"):
        raise DatasetError(f"data file {path}: expected a smallnorb-*-dat.mat file")
    for suffix in ("-cat.mat", "-info.mat"):
        if not os.path.isfile(path[:-len("-dat.mat")] + suffix):
            raise DatasetError(f"data file {path}: missing its {os.path.basename(path[:-8] + suffix)}")
    paths = [path]
    m = re.fullmatch(r"smallnorb-(.+)-dat\.mat", os.path.basename(path))
    if m and m.group(1) in NORB_CHUNKS:
        other = NORB_CHUNKS[1 - NORB_CHUNKS.index(m.group(1))]
        sib = os.path.join(os.path.dirname(path), f"smallnorb-{other}-dat.mat")
        if all(os.path.isfile(sib[:-8] + s) for s in ("-dat.mat", "-cat.mat", "-info.mat")):
            paths.append(sib)
    parts = [_norb_chunk(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])  # category, instance, elevation, azimuth, lighting
    labels[:, 3] //= 2  # azimuth 0, 2, ..., 34 -> 0..17
    names = (("category", "categorical"), ("instance", "categorical"), ("elevation", "ordinal"),
             ("azimuth", "circular"), ("lighting", "categorical"))
    return _grid_dataset("smallnorb", names, labels, images, 1, path)


def _grid_dataset(name, columns, labels, images, channels, path) -> ArrayFactorDataset:
    """Order images by the full grid of the label values present (C order); error if not full."""
    vals, ranks = zip(*(np.unique(labels[:, j], return_inverse=True) for j in range(labels.shape[1])))
    sizes = tuple(len(v) for v in vals)
    classes = np.stack([r.reshape(-1) for r in ranks], 1)
    flat = np.ravel_multi_index(tuple(classes.T), sizes) if len(classes) else np.zeros(0, np.int64)
    counts = np.bincount(flat, minlength=int(np.prod(sizes)))
    if len(labels) == 0 or counts.min() != 1 or counts.max() != 1:
        raise DatasetError(f"data file {path}: the labels do not cover the grid "
                           f"{'x'.join(map(str, sizes))} exactly once (missing or repeated factor combinations)")
    order = np.empty(len(flat), np.int64)
    order[flat] = np.arange(len(flat))
    images = np.ascontiguousarray(images[order])
    # a factor with a single value is dropped (C order over the others is unchanged)
    factors = [Factor(n, s, t, v.astype(np.float64)) for (n, t), s, v in zip(columns, sizes, vals) if s > 1]
    return ArrayFactorDataset(name, factors, (SIZE, SIZE, channels), _uint8_source(images, channels), path)


# ---- Cars3D ---------------------------------------------------------------------------------
def load_cars3d(path: str) -> ArrayFactorDataset:
    """Cars3D from its folder of .mat files (see the module docstring)."""
    import scipy.io

    folder = path if os.path.isdir(path) else os.path.dirname(path)
    files = sorted(glob.glob(os.path.join(folder, "*.mat")))
    if not files:
        raise DatasetError(f"data file {path}: no .mat files (the Cars3D folder is expected)")
    out = np.empty((4, 24, len(files), SIZE, SIZE, 3), dtype=np.uint8)
    for m, f in enumerate(files):
        try:
            im = scipy.io.loadmat(f, variable_names=["im"]).get("im")
        except Exception as e:  # scipy raises ValueError, TypeError, OSError... on a bad file
            why = (str(e).splitlines() or [""])[0]
            raise DatasetError(f"data file {f}: not a readable Cars3D .mat ({type(e).__name__}: {why})") from None
        if (im is None or im.ndim != 5 or im.shape[2:] != (3, 24, 4) or im.shape[0] != im.shape[1]
                or im.dtype != np.uint8):
            got = "no 'im'" if im is None else f"im {list(im.shape)} ({im.dtype})"
            raise DatasetError(f"data file {f}: {got}, expected uint8 [H, H, 3, 24 azimuths, 4 elevations]")
        for e in range(4):
            for a in range(24):
                out[e, a, m] = _resize(np.ascontiguousarray(im[:, :, :, a, e]))
    factors = [Factor("elevation", 4, "ordinal", np.arange(4.0)), Factor("azimuth", 24, "circular", np.arange(24.0)),
               Factor("model", len(files), "categorical", np.arange(float(len(files))))]
    factors = [f for f in factors if f.size > 1]
    images = out.reshape(-1, SIZE, SIZE, 3)
    return ArrayFactorDataset("cars3d", factors, (SIZE, SIZE, 3), _uint8_source(images, 3), folder)
