"""MPI3D / SmallNORB / Cars3D loaders on small files written here in the original formats."""
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from varstruct import data
from varstruct.data import standard
from varstruct.data.base import DatasetError


def lanczos(img):
    """disentanglement_lib's resize: PIL ANTIALIAS (= LANCZOS) to 64x64, uint8."""
    return np.asarray(Image.fromarray(img).resize((64, 64), Image.LANCZOS))


# ---- MPI3D ------------------------------------------------------------------------------------
TINY = (2, 2, 2, 3, 1, 2, 2)  # a small grid in place of [6, 6, 2, 3, 3, 40, 40]


@pytest.fixture
def mpi3d_images(monkeypatch):
    monkeypatch.setitem(standard.MPI3D_SIZES, "tiny", TINY)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(int(np.prod(TINY)), 64, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("compressed", [False, True])
def test_mpi3d_reads_the_grid(tmp_path, mpi3d_images, compressed):
    p = tmp_path / "mpi3d_real.npz"
    (np.savez_compressed if compressed else np.savez)(p, images=mpi3d_images)
    ds = data.get("mpi3d", data_file=str(p))
    assert ds.factor_names == ["object_color", "object_shape", "object_size", "camera_height",
                               "background_color", "horizontal_axis", "vertical_axis"]
    assert ds.factor_sizes.tolist() == list(TINY) and ds.image_shape == (64, 64, 3)
    idx = ds.sample_factors(20, 0)
    flat = np.ravel_multi_index(tuple(idx.T), TINY)  # C order, as disentanglement_lib's factor_bases
    np.testing.assert_array_equal(ds.render(idx), mpi3d_images[flat].astype(np.float32) / 255)


def test_mpi3d_real_sizes_by_default():
    assert standard.MPI3D_SIZES["real"] == (6, 6, 2, 3, 3, 40, 40)
    assert int(np.prod(standard.MPI3D_SIZES["real"])) == 1036800
    with pytest.raises(DatasetError, match="no procedural version"):
        data.get("mpi3d")


def test_mpi3d_bad_files(tmp_path, mpi3d_images):
    p = tmp_path / "m.npz"
    np.savez(p, images=mpi3d_images)
    raw = p.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    np.savez(tmp_path / "small.npz", images=mpi3d_images[:, :32, :32])
    np.savez(tmp_path / "count.npz", images=mpi3d_images[:-1])
    np.savez(tmp_path / "other.npz", imgs=mpi3d_images)
    np.savez(tmp_path / "objects.npz", images=np.array([None, 1], dtype=object))
    for name, msg in [("cut", "npz|truncated"), ("junk", "not an .npz"), ("small", "shape"),
                      ("count", "full MPI3D grid"), ("other", "no array 'images'"), ("objects", "objects|shape")]:
        with pytest.raises(DatasetError, match=msg) as e:
            data.get("mpi3d", data_file=str(tmp_path / f"{name}.npz"))
        assert "\n" not in str(e.value)


# ---- SmallNORB --------------------------------------------------------------------------------
def write_norb(path, array):
    """The NORB binary matrix format: int32 magic, int32 ndim, max(3, ndim) int32 dims, data."""
    magic = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype(np.int32): 0x1E3D4C54}[array.dtype]
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    with open(path, "wb") as f:
        f.write(np.array([magic, array.ndim] + dims, dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(array).tobytes())


def norb_chunk(folder, chunk, instances, rng):
    grid = np.array(np.meshgrid([0, 1], instances, [0, 1], [0, 2, 4], [0, 1], indexing="ij")).reshape(5, -1).T
    grid = grid[rng.permutation(len(grid))]  # the release is not in grid order
    images = rng.integers(0, 256, size=(len(grid), 2, 96, 96), dtype=np.uint8)
    stem = os.path.join(folder, f"smallnorb-{chunk}")
    write_norb(stem + "-dat.mat", images)
    write_norb(stem + "-cat.mat", grid[:, 0].astype(np.int32))
    write_norb(stem + "-info.mat", grid[:, 1:].astype(np.int32))
    return stem + "-dat.mat", grid, images


def test_smallnorb_both_chunks_resized(tmp_path):
    rng = np.random.default_rng(1)
    dat, g1, im1 = norb_chunk(tmp_path, standard.NORB_CHUNKS[0], [4, 6], rng)
    _, g2, im2 = norb_chunk(tmp_path, standard.NORB_CHUNKS[1], [0], rng)
    ds = data.get("smallnorb", data_file=dat)
    assert ds.factor_names == ["category", "instance", "elevation", "azimuth", "lighting"]
    assert ds.factor_sizes.tolist() == [2, 3, 2, 3, 2] and ds.image_shape == (64, 64, 1)
    np.testing.assert_array_equal(ds.factor_values[1], [0, 4, 6])
    np.testing.assert_array_equal(ds.factor_values[3], [0, 1, 2])  # azimuth 0, 2, 4 halved
    grid, images = np.concatenate([g1, g2]), np.concatenate([im1, im2])
    for row in [0, 5, len(grid) - 1]:
        c, inst, e, az, light = grid[row]
        idx = [c, [0, 4, 6].index(inst), e, az // 2, light]
        want = lanczos(images[row, 0]).astype(np.float32) / 255  # left camera
        np.testing.assert_array_equal(ds.render([idx])[0, :, :, 0], want)


def test_smallnorb_lanczos_keeps_a_constant_image(tmp_path):
    assert np.all(lanczos(np.full((96, 96), 77, np.uint8)) == 77)


def test_smallnorb_bad_files(tmp_path):
    dat, _, _ = norb_chunk(tmp_path, "x", [1], np.random.default_rng(2))
    raw = Path(dat).read_bytes()
    Path(dat).write_bytes(raw[:-100])
    with pytest.raises(DatasetError, match="truncated"):
        data.get("smallnorb", data_file=dat)
    Path(dat).write_bytes(b"\x00" * 64)
    with pytest.raises(DatasetError, match="not a NORB binary matrix"):
        data.get("smallnorb", data_file=dat)
    os.remove(dat.replace("-dat", "-cat"))
    with pytest.raises(DatasetError, match="missing"):
        data.get("smallnorb", data_file=dat)
    with pytest.raises(DatasetError, match="-dat.mat"):
        data.get("smallnorb", data_file=dat.replace("-dat", "-info"))


def test_smallnorb_missing_grid_point(tmp_path):
    rng = np.random.default_rng(3)
    dat, grid, _ = norb_chunk(tmp_path, "x", [1], rng)
    write_norb(dat.replace("-dat", "-cat"), np.zeros(len(grid), np.int32))  # every image category 0
    with pytest.raises(DatasetError, match="exactly once"):
        data.get("smallnorb", data_file=dat)


def test_smallnorb_through_the_cli(tmp_path):
    dat, _, _ = norb_chunk(tmp_path, "x", [1, 2], np.random.default_rng(4))
    from varstruct.cli.app import main

    out = tmp_path / "m.nc"
    assert main(["measure", "dataset", "smallnorb", "--data-file", dat, "--anchors", "4", "--pca-anchors", "2",
                 "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["measure", "dataset", "mpi3d", "--data-file", dat, "--out", str(tmp_path / "x.nc")]) == 2


# ---- Cars3D -----------------------------------------------------------------------------------
def test_cars3d_folder(tmp_path):
    rng = np.random.default_rng(5)
    ims = [rng.integers(0, 256, size=(128, 128, 3, 24, 4), dtype=np.uint8),
           rng.integers(0, 256, size=(64, 64, 3, 24, 4), dtype=np.uint8)]
    for i, im in enumerate(ims):
        scipy.io.savemat(tmp_path / f"car_{i:03d}_mesh.mat", {"im": im})
    ds = data.get("cars3d", data_file=str(tmp_path / "car_001_mesh.mat"))  # any file names the folder
    assert ds.factor_names == ["elevation", "azimuth", "model"] and ds.factor_sizes.tolist() == [4, 24, 2]
    assert ds.factor_types == ["ordinal", "circular", "categorical"]
    for e, a, m in [(0, 0, 0), (3, 17, 0), (2, 5, 1)]:
        want = lanczos(np.ascontiguousarray(ims[m][:, :, :, a, e])).astype(np.float32) / 255
        np.testing.assert_array_equal(ds.render([[e, a, m]])[0], want)
    assert data.get("cars3d", data_file=str(tmp_path)).factor_sizes.tolist() == [4, 24, 2]


def test_cars3d_bad_files(tmp_path):
    (tmp_path / "car_000_mesh.mat").write_bytes(b"MATLAB 5.0 garbage" * 3)
    with pytest.raises(DatasetError, match="not a readable Cars3D") as e:
        data.get("cars3d", data_file=str(tmp_path))
    assert "\n" not in str(e.value)
    scipy.io.savemat(tmp_path / "car_000_mesh.mat", {"im": np.zeros((64, 64, 3, 24, 3), np.uint8)})
    with pytest.raises(DatasetError, match="24 azimuths"):
        data.get("cars3d", data_file=str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no .mat"):
        data.get("cars3d", data_file=str(empty))
