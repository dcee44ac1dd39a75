"""Real data files: the dSprites ``.npz`` layout and the ``3dshapes.h5`` layout (MPI3D,
SmallNORB and Cars3D: :mod:`varstruct.data.standard`).

``varstruct.datasets.get(name, data_file=path)`` (:func:`varstruct.data.registry.load_file`) calls
the loader its :class:`~varstruct.data.registry.DatasetSpec` names, which returns a
:class:`FactorDataset` whose ``render(idx)`` returns the stored images of the factor indices
idx [B, K]. Both layouts store the full factor grid in C order: image n has the factor indices
``np.unravel_index(n, sizes)``; the loaders check this against the stored labels.

- dSprites (``imgs`` uint8 [N, 64, 64] of 0/1, ``latents_values`` float [N, 6],
  ``latents_classes`` int [N, 6]; columns color, shape, scale, orientation, posX, posY): names
  ``dsprites``, and ``color_dsprites``/``noisy_dsprites``, which put their nuisance (random
  colour, noise background) on the real sprites. The images are streamed out of the archive
  and kept as packed bits (N x 512 bytes: 377 MB for the full file, not 3 GB); the pickled
  ``metadata`` entry is never read (np.load with allow_pickle=False).
- 3dshapes (``images`` uint8 [N, 64, 64, 3], ``labels`` float [N, 6]; columns floor_hue,
  wall_hue, object_hue, scale, shape, orientation): name ``shapes3d``. Images are read lazily
  with h5py at each render (sorted unique rows, read as runs of consecutive rows, mapped
  back); only the labels are loaded.

Factors of size 1 are dropped (docs/measures.md#conventions: dSprites' color). Factor values are the stored
label values. Any problem with a file raises :class:`DatasetError` naming the problem and path.
"""
from __future__ import annotations

import zipfile

import numpy as np

from ._arrays import ArrayFactorDataset, npy_header
from .base import DatasetError, Factor, drop_unit_factors
from .dsprites import ColorDSprites, NoisyDSprites
from .registry import load_file

SIZE = 64
DSPRITES_COLUMNS = (("color", "categorical"), ("shape", "categorical"), ("scale", "ordinal"),
                    ("orientation", "circular"), ("posX", "ordinal"), ("posY", "ordinal"))
SHAPES3D_COLUMNS = (("floor_hue", "circular"), ("wall_hue", "circular"), ("object_hue", "circular"),
                    ("scale", "ordinal"), ("shape", "categorical"), ("orientation", "ordinal"))
_CHUNK = 4096  # images per read when streaming dSprites images out of the archive


class _FileSprites:
    """Mixin for the dSprites variants: their sprite masks come from a dSprites file's images,
    their nuisance (colour, noise) from the procedural class."""

    def __init__(self, base: ArrayFactorDataset):
        super().__init__()
        self.base = base
        self.factors = base.factors
        self.params = dict(base.params)

    def masks(self, idx):
        return self.base.render(idx)[..., 0]

    def __reduce__(self):
        return (load_file, (self.name, self.params["data_file"]))


class FileColorDSprites(_FileSprites, ColorDSprites):
    """color_dsprites on the sprites of a dSprites .npz."""


class FileNoisyDSprites(_FileSprites, NoisyDSprites):
    """noisy_dsprites on the sprites of a dSprites .npz."""


def load_color_dsprites(path: str) -> FileColorDSprites:
    """color_dsprites on the sprites of a dSprites .npz."""
    return FileColorDSprites(load_dsprites_npz(path))


def load_noisy_dsprites(path: str) -> FileNoisyDSprites:
    """noisy_dsprites on the sprites of a dSprites .npz."""
    return FileNoisyDSprites(load_dsprites_npz(path))


# ---- shared checks ---------------------------------------------------------------------------
def _grid_factors(classes: np.ndarray, values: np.ndarray, columns, path: str, what: str):
    """Factors from the class indices [N, K] and values [N, K] of a C-order grid; checks the layout."""
    N = len(classes)
    if classes.size and classes.min() < 0:
        raise DatasetError(f"data file {path}: negative {what} classes")
    sizes = classes.max(0) + 1 if N else np.zeros(len(columns), np.int64)
    if N == 0 or int(np.prod(sizes)) != N:
        raise DatasetError(f"data file {path}: {N} images but the {what} span a grid of "
                           f"{'x'.join(map(str, sizes.tolist()))} = {int(np.prod(sizes))} (the full grid is expected)")
    flat = np.ravel_multi_index(tuple(classes.T), tuple(sizes))
    bad = np.flatnonzero(flat != np.arange(N))
    if len(bad):
        raise DatasetError(f"data file {path}: row {bad[0]} has {what} {classes[bad[0]].tolist()}, "
                           f"not the C-order grid position {[int(i) for i in np.unravel_index(bad[0], tuple(sizes))]}")
    strides = np.array([int(np.prod(sizes[j + 1:])) for j in range(len(sizes))])
    factors = []
    for j, (fname, ftype) in enumerate(columns):
        v = values[np.arange(sizes[j]) * strides[j], j].astype(np.float64)
        if not np.allclose(values[:, j], v[classes[:, j]], rtol=1e-6, atol=1e-9):
            raise DatasetError(f"data file {path}: values of {fname} differ between rows of the same class")
        factors.append(Factor(fname, int(sizes[j]), ftype, v))
    return drop_unit_factors(factors)


# ---- dSprites .npz ---------------------------------------------------------------------------
def _stream_bits(zf: zipfile.ZipFile, path: str, n_rows: int) -> np.ndarray:
    """imgs.npy streamed out of the archive as packed bits uint8 [N, 64*64/8]; checks 0/1 values."""
    with zf.open("imgs.npy") as f:
        shape, fortran, dtype = npy_header(f, path, "imgs")
        if len(shape) != 3 or tuple(shape[1:]) != (SIZE, SIZE):
            raise DatasetError(f"data file {path}: imgs has shape {tuple(shape)}, expected [N, {SIZE}, {SIZE}]")
        if shape[0] != n_rows:
            raise DatasetError(f"data file {path}: {shape[0]} imgs but {n_rows} rows of latents")
        if dtype not in (np.dtype(np.uint8), np.dtype(np.bool_)) or fortran:
            raise DatasetError(f"data file {path}: imgs must be a C-order uint8 array, got {dtype}{' (Fortran order)' if fortran else ''}")
        row = SIZE * SIZE
        out = np.empty((n_rows, row // 8), dtype=np.uint8)
        for s in range(0, n_rows, _CHUNK):
            n = min(_CHUNK, n_rows - s)
            buf = f.read(n * row)
            if len(buf) != n * row:
                raise DatasetError(f"data file {path}: imgs is truncated")
            chunk = np.frombuffer(buf, dtype=np.uint8).reshape(n, row)
            if chunk.max(initial=0) > 1:
                raise DatasetError(f"data file {path}: imgs must hold 0/1 pixels (dSprites layout), found {chunk.max()}")
            out[s:s + n] = np.packbits(chunk, axis=1)
    return out


def load_dsprites_npz(path: str) -> ArrayFactorDataset:
    """dSprites from its .npz (never unpickles: the ``metadata`` entry is not read)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise DatasetError(f"data file {path}: not an .npz archive (the dSprites layout is expected)") from None
    with zf:
        members = set(zf.namelist())
        missing = [k for k in ("imgs", "latents_values", "latents_classes") if f"{k}.npy" not in members]
        if missing:
            raise DatasetError(f"data file {path}: missing array(s) {', '.join(missing)} "
                               "(the dSprites .npz holds imgs, latents_values, latents_classes)")
        try:
            with np.load(path, allow_pickle=False) as z:
                classes, values = z["latents_classes"], z["latents_values"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetError(f"data file {path}: cannot read the latents ({e})") from None
        K = len(DSPRITES_COLUMNS)
        for key, a in (("latents_classes", classes), ("latents_values", values)):
            if a.ndim != 2 or a.shape[1] != K:
                raise DatasetError(f"data file {path}: {key} has shape {a.shape}, expected [N, {K}]")
        if not np.issubdtype(classes.dtype, np.integer):
            raise DatasetError(f"data file {path}: latents_classes must be integers, got {classes.dtype}")
        if not np.issubdtype(values.dtype, np.number):
            raise DatasetError(f"data file {path}: latents_values must be numbers, got {values.dtype}")
        if len(values) != len(classes):
            raise DatasetError(f"data file {path}: {len(values)} rows of latents_values but {len(classes)} of latents_classes")
        factors = _grid_factors(classes.astype(np.int64), values, DSPRITES_COLUMNS, path, "latents_classes")
        bits = _stream_bits(zf, path, len(classes))

    def source(flat):
        return np.unpackbits(bits[flat], axis=1).astype(np.float32).reshape(-1, SIZE, SIZE, 1)

    return ArrayFactorDataset("dsprites", factors, (SIZE, SIZE, 1), source, path)


# ---- 3dshapes .h5 ----------------------------------------------------------------------------
class _H5Images:
    """Lazy reader of ``images`` rows; opens the file per call (safe with forked workers).

    Reads each run of consecutive rows with one slice: h5py's fancy indexing is 20-100x slower
    (about 500 images/s on a chunked file against 30,000+ for slices)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, flat):
        import h5py
        uniq, inv = np.unique(flat, return_inverse=True)
        if len(uniq) == 0:
            return np.zeros((0, SIZE, SIZE, 3), dtype=np.float32)
        cut = np.flatnonzero(np.diff(uniq) != 1) + 1
        starts, stops = uniq[np.r_[0, cut]], uniq[np.r_[cut - 1, len(uniq) - 1]] + 1
        rows = np.empty((len(uniq), SIZE, SIZE, 3), dtype=np.uint8)
        try:
            with h5py.File(self.path, "r") as f:
                images = f["images"]
                pos = 0
                for a, b in zip(starts.tolist(), stops.tolist()):  # one read per run
                    rows[pos:pos + b - a] = images[a:b]
                    pos += b - a
        except (OSError, KeyError) as e:
            raise DatasetError(f"data file {self.path}: cannot read images ({e})") from None
        return rows[inv.reshape(-1)].astype(np.float32) / np.float32(255.0)


def load_shapes3d_h5(path: str) -> ArrayFactorDataset:
    """3dshapes from its .h5: labels loaded and checked, images read lazily per render."""
    import h5py
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DatasetError(f"data file {path}: not an HDF5 file (the 3dshapes.h5 layout is expected)") from None
    with f:
        missing = [k for k in ("images", "labels") if not isinstance(f.get(k), h5py.Dataset)]
        if missing:
            raise DatasetError(f"data file {path}: missing dataset(s) {', '.join(missing)} "
                               "(3dshapes.h5 holds images and labels)")
        images, labels = f["images"], f["labels"]
        K = len(SHAPES3D_COLUMNS)
        if labels.ndim != 2 or labels.shape[1] != K or not np.issubdtype(labels.dtype, np.number):
            raise DatasetError(f"data file {path}: labels has shape {labels.shape} ({labels.dtype}), expected numbers [N, {K}]")
        if images.ndim != 4 or tuple(images.shape[1:]) != (SIZE, SIZE, 3) or images.dtype != np.uint8:
            raise DatasetError(f"data file {path}: images has shape {images.shape} ({images.dtype}), expected uint8 [N, {SIZE}, {SIZE}, 3]")
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(f"data file {path}: {images.shape[0]} images but {labels.shape[0]} labels")
        try:
            values = labels[()].astype(np.float64)
        except OSError as e:
            raise DatasetError(f"data file {path}: cannot read labels ({e})") from None
    if not np.all(np.isfinite(values)):
        raise DatasetError(f"data file {path}: labels hold non-finite values")
    # classes: rank of each label among its column's distinct values (to 1e-6)
    key = np.round(values, 6)
    classes = np.stack([np.unique(key[:, j], return_inverse=True)[1].reshape(-1) for j in range(K)], 1)
    factors = _grid_factors(classes, values, SHAPES3D_COLUMNS, path, "label classes")
    return ArrayFactorDataset("shapes3d", factors, (SIZE, SIZE, 3), _H5Images(path), path)
