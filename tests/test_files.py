"""Real-file loaders: round-trips on small files written in the dSprites .npz and 3dshapes.h5
layouts, the pickled dSprites metadata is never unpickled, bad files give DatasetError."""
import os

import h5py
import numpy as np
import pytest

import varstruct
from varstruct.data.base import DatasetError
from varstruct.data.files import ArrayFactorDataset

DSPRITES_SIZES = (1, 3, 2, 4, 3, 3)     # color, shape, scale, orientation, posX, posY
SHAPES3D_SIZES = (2, 2, 2, 2, 4, 3)     # floor_hue, wall_hue, object_hue, scale, shape, orientation


def _grid(sizes):
    """All factor index vectors in C order, int64 [prod(sizes), K]."""
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), 1).astype(np.int64)


class _Trap:
    """Unpickling this calls open(marker, 'w'): the marker file proves an unpickle happened."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _dsprites_arrays(seed=0):
    rng = np.random.default_rng(seed)
    classes = _grid(DSPRITES_SIZES)
    vals = [np.array([1.0]), np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0]),
            np.linspace(0, 2 * np.pi, 4), np.linspace(0, 1, 3), np.linspace(0, 1, 3)]
    values = np.stack([vals[j][classes[:, j]] for j in range(6)], 1)
    imgs = rng.integers(0, 2, size=(len(classes), 64, 64), dtype=np.uint8)
    return {"imgs": imgs, "latents_values": values, "latents_classes": classes}, vals


def _write_npz(path, arrays, metadata=None, compressed=True):
    extra = {} if metadata is None else {"metadata": np.array(metadata, dtype=object)}
    (np.savez_compressed if compressed else np.savez)(path, **arrays, **extra)
    return str(path)


def _shapes3d_arrays(seed=0):
    rng = np.random.default_rng(seed)
    classes = _grid(SHAPES3D_SIZES)
    vals = [np.array([0.0, 0.5]), np.array([0.1, 0.6]), np.array([0.2, 0.9]), np.array([0.75, 1.25]),
            np.array([0.0, 1.0, 2.0, 3.0]), np.array([-30.0, 0.0, 30.0])]
    labels = np.stack([vals[j][classes[:, j]] for j in range(6)], 1)
    images = rng.integers(0, 256, size=(len(classes), 64, 64, 3), dtype=np.uint8)
    return {"images": images, "labels": labels}, vals


def _write_h5(path, arrays, chunked=False):
    with h5py.File(path, "w") as f:
        for k, a in arrays.items():
            opts = {"chunks": (1,) + a.shape[1:], "compression": "gzip"} if chunked and k == "images" else {}
            f.create_dataset(k, data=a, **opts)
    return str(path)


# ---- dSprites ---------------------------------------------------------------------------------
@pytest.fixture
def dsprites_file(tmp_path):
    arrays, vals = _dsprites_arrays()
    marker = tmp_path / "UNPICKLED"
    path = _write_npz(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", arrays, _Trap(marker))
    return path, arrays, vals, marker


def test_metadata_trap_works(dsprites_file):
    """Control: the metadata entry really writes the marker when it is unpickled."""
    path, _, _, marker = dsprites_file
    with np.load(path, allow_pickle=True) as z:
        z["metadata"]
    assert marker.exists()


def test_dsprites_round_trip_never_unpickles(dsprites_file):
    path, arrays, vals, marker = dsprites_file
    ds = varstruct.datasets.get("dsprites", data_file=path)
    assert not marker.exists()
    assert isinstance(ds, ArrayFactorDataset) and ds.name == "dsprites"
    assert ds.params == {"data_file": path}
    assert ds.factor_names == ["shape", "scale", "orientation", "posX", "posY"]  # size-1 color dropped
    assert ds.factor_sizes.tolist() == [3, 2, 4, 3, 3]
    assert ds.factor_types == ["categorical", "ordinal", "circular", "ordinal", "ordinal"]
    for j in range(5):
        np.testing.assert_array_equal(ds.factor_values[j], vals[j + 1])
    assert ds.image_shape == (64, 64, 1)
    # every grid point, in a shuffled order with repeats, gives exactly its stored image
    rows = np.random.default_rng(1).integers(0, 216, 500)
    idx = arrays["latents_classes"][rows][:, 1:]
    x = ds.render(idx)
    assert x.dtype == np.float32 and x.shape == (500, 64, 64, 1)
    np.testing.assert_array_equal(x, arrays["imgs"][rows][..., None].astype(np.float32))
    assert not marker.exists()
    fn, args = ds.__reduce__()  # reloads by path
    np.testing.assert_array_equal(fn(*args).render(idx[:7]), x[:7])


def test_dsprites_uncompressed_npz(tmp_path):
    arrays, _ = _dsprites_arrays(3)
    path = _write_npz(tmp_path / "d.npz", arrays, compressed=False)
    ds = varstruct.datasets.get("dsprites", data_file=path)
    idx = _grid(DSPRITES_SIZES)[:, 1:]
    np.testing.assert_array_equal(ds.render(idx)[..., 0], arrays["imgs"].astype(np.float32))


def test_relative_path_is_recorded_absolute(tmp_path, monkeypatch):
    arrays, _ = _dsprites_arrays()
    _write_npz(tmp_path / "d.npz", arrays)
    monkeypatch.chdir(tmp_path)
    ds = varstruct.datasets.get("dsprites", data_file="d.npz")
    assert ds.params == {"data_file": str(tmp_path / "d.npz")}


def test_color_and_noisy_dsprites_wrap_the_real_sprites(dsprites_file):
    path, arrays, _, marker = dsprites_file
    rows = np.array([0, 5, 77, 215, 5])
    idx = arrays["latents_classes"][rows][:, 1:]
    sprites = arrays["imgs"][rows][..., None].astype(np.float32)
    col = varstruct.datasets.get("color_dsprites", data_file=path)
    assert col.name == "color_dsprites" and col.image_shape == (64, 64, 3) and col.has_nuisance
    assert col.factor_sizes.tolist() == [3, 2, 4, 3, 3] and col.params == {"data_file": path}
    colour = col.sample_nuisance(5, 0)
    np.testing.assert_allclose(col.render(idx, nuisance=colour), sprites * colour[:, None, None, :])
    np.testing.assert_array_equal(col.render(idx, rng=4), col.render(idx, rng=4))
    noisy = varstruct.datasets.get("noisy_dsprites", data_file=path)
    noise = noisy.sample_nuisance(5, 0)
    np.testing.assert_allclose(noisy.render(idx, nuisance=noise), np.minimum(sprites + noise, 1.0))
    assert not marker.exists()


def _mutate(arrays, key, value):
    out = dict(arrays)
    if value is None:
        del out[key]
    else:
        out[key] = value
    return out


@pytest.mark.parametrize("case, match", [
    ("missing_imgs", "missing array.*imgs"),
    ("imgs_32px", "imgs has shape"),
    ("imgs_short", "imgs but 216 rows"),
    ("imgs_255", "0/1 pixels"),
    ("imgs_float", "uint8"),
    ("classes_1d", "latents_classes has shape"),
    ("classes_float", "must be integers"),
    ("values_short", "rows of latents_values"),
    ("not_c_order", "not the C-order grid position"),
    ("not_full_grid", "full grid"),
    ("values_inconsistent", "values of scale differ"),
])
def test_dsprites_bad_files(tmp_path, case, match):
    arrays, _ = _dsprites_arrays()
    imgs, classes, values = arrays["imgs"], arrays["latents_classes"], arrays["latents_values"]
    bad = {
        "missing_imgs": _mutate(arrays, "imgs", None),
        "imgs_32px": _mutate(arrays, "imgs", imgs[:, :32, :32]),
        "imgs_short": _mutate(arrays, "imgs", imgs[:-1]),
        "imgs_255": _mutate(arrays, "imgs", imgs * 255),
        "imgs_float": _mutate(arrays, "imgs", imgs.astype(np.float32)),
        "classes_1d": _mutate(arrays, "latents_classes", classes[:, 0]),
        "classes_float": _mutate(arrays, "latents_classes", classes.astype(float)),
        "values_short": _mutate(arrays, "latents_values", values[:-1]),
        "not_c_order": {**arrays, "latents_classes": classes[::-1], "latents_values": values[::-1]},
        "not_full_grid": {"imgs": imgs[:-1], "latents_classes": classes[:-1], "latents_values": values[:-1]},
        "values_inconsistent": _mutate(arrays, "latents_values", values + (np.arange(6) == 2) * 0.01 * (np.arange(216) == 1)[:, None]),
    }[case]
    path = _write_npz(tmp_path / f"{case}.npz", bad)
    with pytest.raises(DatasetError, match=match) as e:
        varstruct.datasets.get("dsprites", data_file=path)
    assert path in str(e.value) and "\n" not in str(e.value)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        varstruct.datasets.get("dsprites", data_file=str(tmp_path / "nope.npz"))
    with pytest.raises(DatasetError, match="not a file"):
        varstruct.datasets.get("shapes3d", data_file=str(tmp_path))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DatasetError, match="not an .npz archive") as e:
        varstruct.datasets.get("dsprites", data_file=str(garbage))
    assert str(garbage) in str(e.value)
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        varstruct.datasets.get("shapes3d", data_file=str(garbage))


def test_unsupported_name_and_params(dsprites_file):
    path = dsprites_file[0]
    with pytest.raises(DatasetError, match="no data-file layout"):
        varstruct.datasets.get("toy_square", data_file=path)
    with pytest.raises(DatasetError, match="takes no parameters"):
        varstruct.datasets.get("dsprites", data_file=path, canvas=3)
    with pytest.raises(DatasetError, match="unknown dataset"):
        varstruct.datasets.get("mnist", data_file=path)


# ---- 3dshapes ---------------------------------------------------------------------------------
@pytest.fixture(params=[False, True], ids=["contiguous", "chunked-gzip"])
def shapes3d_file(tmp_path, request):
    arrays, vals = _shapes3d_arrays()
    return _write_h5(tmp_path / "3dshapes.h5", arrays, chunked=request.param), arrays, vals


def test_shapes3d_round_trip(shapes3d_file):
    path, arrays, vals = shapes3d_file
    ds = varstruct.datasets.get("shapes3d", data_file=path)
    assert isinstance(ds, ArrayFactorDataset) and ds.name == "shapes3d"
    assert ds.params == {"data_file": path}
    assert ds.factor_names == ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    assert ds.factor_sizes.tolist() == list(SHAPES3D_SIZES)
    assert ds.factor_types == ["circular", "circular", "circular", "ordinal", "categorical", "ordinal"]
    for j in range(6):
        np.testing.assert_array_equal(ds.factor_values[j], vals[j])
    assert ds.image_shape == (64, 64, 3)
    rows = np.random.default_rng(2).integers(0, len(arrays["labels"]), 300)  # unsorted, repeats
    idx = _grid(SHAPES3D_SIZES)[rows]
    x = ds.render(idx)
    assert x.dtype == np.float32 and x.shape == (300, 64, 64, 3)
    np.testing.assert_array_equal(x, arrays["images"][rows].astype(np.float32) / np.float32(255))
    assert x.min() >= 0 and x.max() <= 1
    assert ds.render(idx[:0]).shape == (0, 64, 64, 3)


def test_shapes3d_reads_images_lazily(shapes3d_file):
    """Images are read at render time, not held in memory: a change to the file shows up."""
    path, arrays, _ = shapes3d_file
    ds = varstruct.datasets.get("shapes3d", data_file=path)
    with h5py.File(path, "r+") as f:
        f["images"][3] = 255
    np.testing.assert_array_equal(ds.render(_grid(SHAPES3D_SIZES)[[3, 4]]),
                                  np.stack([np.ones((64, 64, 3), np.float32), arrays["images"][4] / np.float32(255)]))


@pytest.mark.parametrize("case, match", [
    ("missing_labels", "missing dataset.*labels"),
    ("images_1ch", "images has shape"),
    ("images_float", "images has shape"),
    ("labels_5cols", "labels has shape"),
    ("n_mismatch", "192 images but 191 labels"),
    ("not_c_order", "not the C-order grid position"),
    ("not_full_grid", "full grid"),
    ("labels_nan", "non-finite"),
])
def test_shapes3d_bad_files(tmp_path, case, match):
    arrays, _ = _shapes3d_arrays()
    images, labels = arrays["images"], arrays["labels"]
    nan = labels.copy()
    nan[7, 2] = np.nan
    bad = {
        "missing_labels": {"images": images},
        "images_1ch": {"images": images[..., :1], "labels": labels},
        "images_float": {"images": images.astype(np.float32), "labels": labels},
        "labels_5cols": {"images": images, "labels": labels[:, :5]},
        "n_mismatch": {"images": images, "labels": labels[:-1]},
        "not_c_order": {"images": images, "labels": labels[np.random.default_rng(0).permutation(len(labels))]},
        "not_full_grid": {"images": images[:-1], "labels": labels[:-1]},
        "labels_nan": {"images": images, "labels": nan},
    }[case]
    path = _write_h5(tmp_path / f"{case}.h5", bad)
    with pytest.raises(DatasetError, match=match) as e:
        varstruct.datasets.get("shapes3d", data_file=path)
    assert path in str(e.value) and "\n" not in str(e.value)


def test_npz_given_for_shapes3d_and_h5_for_dsprites(dsprites_file, shapes3d_file):
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        varstruct.datasets.get("shapes3d", data_file=dsprites_file[0])
    with pytest.raises(DatasetError, match="not an .npz archive"):
        varstruct.datasets.get("dsprites", data_file=shapes3d_file[0])
    assert os.path.exists(shapes3d_file[0])
