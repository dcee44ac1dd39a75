"""`varstruct import dlib`: disentanglement_lib's released models as run dirs (docs/importing.md).

The fixtures in tests/data/dlib/ were written by TensorFlow with disentanglement_lib's own
architecture and TF-Hub export code (tests/data/make_dlib_fixture.py): the imported models must
reproduce TensorFlow's recorded outputs, and dlib's metric code's recorded scores. TensorFlow is
not needed here.
"""
import importlib.util
import io
import json
import os
import shutil
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from varstruct.cli.app import main
from varstruct.importers import crc32c as C
from varstruct.importers import dlib as D
from varstruct.importers import tfbundle as T
from varstruct.importers.ginfile import GinError, parse_gin
from varstruct.models.load import load_model
from varstruct.runs.layout import RunDir

DATA = Path(__file__).parent / "data"
FIX = DATA / "dlib"
REC = json.loads((FIX / "dlib_fixture.json").read_text())
CASES = REC["cases"]
ATOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _maker():
    spec = importlib.util.spec_from_file_location("make_dlib_fixture", DATA / "make_dlib_fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MAKER = _maker()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("dlib") / "models"
    results = D.import_models([FIX], out)
    assert [r.state for r in results] == ["imported"] * 4, results
    return out


def _run(out, stem):
    return RunDir(out / f"dlib_{CASES[stem]['model_num']:05d}")


# ---------------------------------------------------------------- CRC-32C
def test_crc32c_known_values():
    """RFC 3720 B.4 test vectors and the usual check value."""
    assert C.crc32c(b"123456789") == 0xE3069283
    assert C.crc32c(bytes(32)) == 0x8A9136AA
    assert C.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert C.crc32c(bytes(range(32))) == 0x46DD794E
    assert C.crc32c(b"") == 0


@pytest.mark.parametrize("n", [4095, 4096, 4097, 10_000, 123_457])
def test_crc32c_chunked_equals_bytewise(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    assert C.crc32c(data) == C._crc_small(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def test_mask_is_leveldbs():
    # leveldb's crc32c::Mask: rotate right by 15 and add 0xa282ead8
    c = 0x12345678
    assert C.mask(c) == ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------- gin
def test_gin_parsed_as_text():
    b = parse_gin("# c\nmodel.model = @vae()\nvae.beta = 4.  # beta\ndataset.name = 'dsprites_full'\n"
                  "a/B.c = [1,\n  2]\nx.y = %MACRO\nimport foo.bar\nx.z = True\nvae.beta = 6.\n")
    assert b == {"model.model": "@vae()", "vae.beta": 6.0, "dataset.name": "dsprites_full", "a/B.c": [1, 2],
                 "x.y": "%MACRO", "x.z": True}
    assert parse_gin("n.s = '#not a comment'")["n.s"] == "#not a comment"
    with pytest.raises(GinError, match="line 1"):
        parse_gin("__import__('os').system('x')")
    with pytest.raises(GinError, match="unclosed"):
        parse_gin("a.b = [1,\n")


# ---------------------------------------------------------------- tensor bundle
def _member(stem, rel):
    with zipfile.ZipFile(FIX / f"{stem}.zip") as zf:
        root = f"{CASES[stem]['model_num']}/"
        return zf.read(root + rel)


def test_bundle_reader_reads_tensorflows_files():
    stem = "beta_vae_dsprites"
    index = _member(stem, D.HUB + ".index")
    header, entries = T.read_index(index)
    assert header == {"num_shards": 1, "endianness": 0}
    assert sorted(entries) == sorted(v[:-2] for v in CASES[stem]["variables"])
    data = _member(stem, T.shard_name(D.HUB, 0, 1))
    t = T.read_bundle(index, lambda s, n: data)
    assert t["encoder/e1/kernel"].shape == (4, 4, 1, 32) and t["encoder/e1/kernel"].dtype == np.float32
    assert t["decoder/conv2d_transpose_3/kernel"].shape == (4, 4, 1, 32)
    assert sum(a.nbytes for a in t.values()) == len(data)  # every byte of the shard belongs to a tensor


def test_bundle_reader_refuses_corruption():
    stem = "beta_vae_dsprites"
    index = _member(stem, D.HUB + ".index")
    data = _member(stem, T.shard_name(D.HUB, 0, 1))
    bad = bytearray(data)
    bad[1000] ^= 1
    with pytest.raises(T.BundleError, match="CRC"):
        T.read_bundle(index, lambda s, n: bytes(bad))
    with pytest.raises(T.BundleError, match="truncated"):
        T.read_bundle(index, lambda s, n: data[:len(data) // 2])
    with pytest.raises(T.BundleError, match="bad magic"):
        T.read_bundle(index[:-1] + b"\0", lambda s, n: data)
    flipped = bytearray(index)
    flipped[10] ^= 0x20
    with pytest.raises(T.BundleError, match="checksum"):
        T.read_bundle(bytes(flipped), lambda s, n: data)


# ---------------------------------------------------------------- equivalence with TensorFlow
@pytest.mark.parametrize("stem", sorted(CASES))
def test_imported_model_reproduces_tensorflow(imported, stem):
    c = CASES[stem]
    model = load_model(_run(imported, stem))
    images, latents = MAKER.fixed_inputs(c["case"], model.image_shape[2])
    assert MAKER.inputs_sha256(images, latents) == c["inputs_sha256"]  # the inputs TF saw
    out = np.load(FIX / "dlib_outputs.npz")
    with torch.no_grad():
        mean, logvar = model.encode(torch.from_numpy(images).permute(0, 3, 1, 2))
        logits = model.decode(torch.from_numpy(latents)).permute(0, 2, 3, 1)
    np.testing.assert_allclose(mean.numpy(), out[f"{stem}_mean"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(logvar.numpy(), out[f"{stem}_logvar"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(logits.numpy(), out[f"{stem}_logits"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("stem,method,hparams,dataset", [
    ("beta_vae_dsprites", "beta_vae", {"beta": 4.0}, "dsprites"),
    ("beta_tcvae_dsprites", "beta_tcvae", {"beta": 6.0}, "dsprites"),
    ("beta_vae_color_dsprites", "beta_vae", {"beta": 4.0}, "color_dsprites"),
    ("beta_tcvae_color_dsprites", "beta_tcvae", {"beta": 6.0}, "color_dsprites"),
])
def test_config_follows_the_sweep(imported, stem, method, hparams, dataset):
    """Model numbers 100, 1350, 1900, 3150 of unsupervised_study_v1 (dlib's sweep.py: datasets
    outermost, then 6 methods x 6 values x 50 seeds)."""
    rd = _run(imported, stem)
    cfg = rd.read_config()
    assert (cfg["method"], cfg["hparams"], cfg["dataset"]) == (method, hparams, dataset)
    assert (cfg["latent_dim"], cfg["steps"], cfg["batch_size"], cfg["seed"], cfg["lr"]) == (10, 300000, 64, 0, 1e-4)
    assert cfg["image_shape"] == [64, 64, 1 if dataset == "dsprites" else 3]
    assert rd.read_status()["state"] == "imported" and rd.state == "trained"
    rec = json.loads((rd.path / D.IMPORT_FILE).read_text())
    assert rec["model_num"] == CASES[stem]["model_num"]


def test_reference_scores_are_dlibs(imported):
    import xarray as xr

    for stem, c in CASES.items():
        with xr.open_dataset(_run(imported, stem).path / D.REFERENCE_FILE, engine="h5netcdf") as ds:
            assert list(ds.representation.values) == ["mean"]
            for metric, scores in c["scores"].items():
                for key, v in scores.items():
                    assert float(ds[f"{metric}.{key}"].sel(representation="mean")) == v


def _codes(imported, stem):
    model = load_model(_run(imported, stem))
    factors, images = MAKER.render_points("dsprites" if CASES[stem]["dataset"] == "dsprites_full" else
                                          CASES[stem]["dataset"])
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(images).permute(0, 3, 1, 2))[0].numpy()
    return codes, factors, REC["points"]["n_train"], CASES[stem]["scores"]


@pytest.mark.parametrize("stem", ["beta_vae_dsprites", "beta_tcvae_color_dsprites"])
def test_metric_cross_check(imported, stem):
    """varstruct's MIG and SAP on the imported model's codes of the fixture's points equal
    disentanglement_lib's metric code run on TensorFlow's codes of the same points (recorded)."""
    from varstruct import metrics as M

    codes, factors, n, ref = _codes(imported, stem)
    assert M.mig(codes[:n], factors[:n]) == pytest.approx(ref["mig"]["discrete_mig"], abs=1e-9)
    assert M.sap(codes[:n], factors[:n], codes[n:], factors[n:]) == pytest.approx(ref["sap_score"]["SAP_score"],
                                                                                   abs=1e-9)


@pytest.mark.skipif(not os.environ.get("VARSTRUCT_SLOW_TESTS"), reason="~10-25 s of boosted trees; "
                    "set VARSTRUCT_SLOW_TESTS=1")
def test_metric_cross_check_dci(imported):
    """The same for DCI (dlib's ``_compute_dci`` after ``np.random.seed(0)``; ours random_state=0)."""
    from varstruct import metrics as M

    codes, factors, n, ref = _codes(imported, "beta_vae_dsprites")
    # DCI's boosted trees split between neighbouring code values, so codes that differ from TF's in
    # the last bits (1e-7) can move a split or break a near-tie otherwise: close, not identical
    # (observed: |ΔD|, |ΔC| <= 5e-4, accuracies within 2 of 300 test points).
    d = M.dci(codes[:n], factors[:n], codes[n:], factors[n:], random_state=0)
    for k in ("disentanglement", "completeness"):
        assert d[k] == pytest.approx(ref["dci"][k], abs=2e-3), k
    for k in ("informativeness_train", "informativeness_test"):
        assert d[k] == pytest.approx(ref["dci"][k], abs=0.01), k


# ---------------------------------------------------------------- CLI, batches, idempotence
def test_cli_imports_skips_and_evaluates(tmp_path, capsys):
    out = tmp_path / "m"
    zips = [str(FIX / "beta_vae_dsprites.zip"), str(FIX / "beta_tcvae_dsprites.zip")]
    assert main(["import", "dlib", *zips, "-o", str(out)]) == 0
    assert "imported 2, skipped 0" in capsys.readouterr().out
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main(["import", "dlib", *zips, "-o", str(out)]) == 0
    assert "imported 0, skipped 2" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    run = out / "dlib_00100"
    assert main(["evaluate", str(run), "-m", "mig,sap", "--train-points", "200", "--test-points", "100",
                 "--threads", "1"]) == 0
    assert RunDir(run).read_scores()["mig"].size == 1


def test_unpacked_folder_is_a_source(tmp_path):
    with zipfile.ZipFile(FIX / "beta_vae_dsprites.zip") as zf:
        zf.extractall(tmp_path / "unpacked")
    r = D.import_models([tmp_path / "unpacked"], tmp_path / "m")
    assert [x.state for x in r] == ["imported"]
    r = D.import_models([tmp_path / "unpacked" / "100"], tmp_path / "m")
    assert [x.state for x in r] == ["skipped"]


# ---------------------------------------------------------------- hostile and malformed sources
def _rewrite(tmp_path, name, edit=None, extra=None, drop=None, stem="beta_vae_dsprites"):
    """A copy of a fixture zip with members edited (name -> bytes -> bytes), added or dropped."""
    src = FIX / f"{stem}.zip"
    dst = tmp_path / name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            rel = info.filename.split("/", 1)[1]
            if drop and rel == drop:
                continue
            data = zin.read(info)
            if edit and rel in edit:
                data = edit[rel](data)
            zout.writestr(info.filename, data)
        for info, data in extra or []:
            zout.writestr(info, data)
    return dst


def _symlink_info(name):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


SHARD = T.shard_name(D.HUB, 0, 1)


def _flip(data):
    b = bytearray(data)
    b[5000] ^= 0x10
    return bytes(b)


HOSTILE = {
    "traversal": (dict(extra=[(zipfile.ZipInfo("100/../../evil.txt"), b"x")]), "'..'"),
    "absolute": (dict(extra=[(zipfile.ZipInfo("/tmp/evil.txt"), b"x")]), "absolute"),
    "symlink": (dict(extra=[(_symlink_info("100/model/link"), b"/etc/passwd")]), "symlink"),
    "truncated_shard": (dict(edit={SHARD: lambda d: d[:len(d) // 3]}), "truncated"),
    "wrong_crc": (dict(edit={SHARD: _flip}), "CRC"),
    "missing_gin": (dict(drop=D.TRAIN_GIN), "no model/results/gin/train.gin"),
    "missing_shard": (dict(drop=SHARD), "missing data shard"),
    "bad_gin": (dict(edit={D.TRAIN_GIN: lambda d: b"this is not gin\n"}), "not a binding"),
    "unknown_method": (dict(edit={D.TRAIN_GIN: lambda d: d + b"\nmodel.model = @group_vae_argmax()\n"}),
                       "no varstruct counterpart"),
    "scream": (dict(edit={D.TRAIN_GIN: lambda d: d + b"\ndataset.name = 'scream_dsprites'\n"}),
               "scream_dsprites has no varstruct counterpart"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_zip_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    kw, msg = HOSTILE[case]
    src = tmp_path / "src"
    src.mkdir()
    z = _rewrite(src, f"{case}.zip", **kw)
    out = tmp_path / "out"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["import", "dlib", str(z), "-o", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1 and msg in err[0], err
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == sorted(before + [Path("out")])  # only the (empty) output folder is new
    assert not (tmp_path.parent / "evil.txt").exists()


def test_not_a_zip_and_missing_source(tmp_path, capsys):
    bad = tmp_path / "7.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    assert main(["import", "dlib", str(bad), str(tmp_path / "nope.zip"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any("not a readable zip" in e for e in err) and any("no such file" in e for e in err)


def test_malformed_zip_does_not_stop_the_batch(tmp_path, capsys):
    src = tmp_path / "zoo"
    src.mkdir()
    shutil.copy(FIX / "beta_vae_dsprites.zip", src / "100.zip")
    _rewrite(src, "101.zip", edit={SHARD: _flip}, stem="beta_tcvae_dsprites")
    shutil.copy(FIX / "beta_vae_color_dsprites.zip", src / "1900.zip")
    assert main(["import", "dlib", str(src), "-o", str(tmp_path / "m")]) == 2
    cap = capsys.readouterr()
    assert "imported 2, skipped 0 (already imported), failed 1" in cap.out
    assert sum(ln.startswith("error") for ln in cap.err.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["dlib_00100", "dlib_01900"]


def test_existing_run_dir_of_another_model_is_not_replaced(tmp_path):
    out = tmp_path / "m"
    D.import_models([FIX / "beta_vae_dsprites.zip"], out)
    other = _rewrite(tmp_path, "x.zip", stem="beta_tcvae_dsprites",
                     edit={D.TRAIN_GIN: lambda d: d + b"\nmodel.model_num = 100\n"})
    (r,) = D.import_models([other], out)
    assert r.state == "failed" and "holds another model" in r.message
    assert RunDir(out / "dlib_00100").read_config()["method"] == "beta_vae"


def test_weight_mapping_flatten_order():
    """The e5 kernel's rows are TF's (h, w, c) flatten order; PyTorch's Flatten is (c, h, w): a
    one-hot input at (c, h, w) must pick the TF row h*256 + w*64 + c."""
    rng = np.random.default_rng(0)
    tf_vars = {}
    for layer, (key, kind) in D.LAYERS.items():
        shape = {"encoder/e1": (4, 4, 1, 32), "encoder/e2": (4, 4, 32, 32), "encoder/e3": (2, 2, 32, 64),
                 "encoder/e4": (2, 2, 64, 64), "encoder/e5": (1024, 256), "encoder/means": (256, 3),
                 "encoder/log_var": (256, 3), "decoder/dense": (3, 256), "decoder/dense_1": (256, 1024),
                 "decoder/conv2d_transpose": (4, 4, 64, 64), "decoder/conv2d_transpose_1": (4, 4, 32, 64),
                 "decoder/conv2d_transpose_2": (4, 4, 32, 32), "decoder/conv2d_transpose_3": (4, 4, 1, 32)}[layer]
        tf_vars[f"{layer}/kernel"] = rng.normal(size=shape).astype(np.float32)
        tf_vars[f"{layer}/bias"] = rng.normal(size=shape[-1]).astype(np.float32)
    sd = D.convert_weights(tf_vars, 1, 3, "t")
    c, h, w = 5, 2, 3
    np.testing.assert_array_equal(sd["encoder.convs.9.weight"][:, c * 16 + h * 4 + w],
                                  tf_vars["encoder/e5/kernel"][h * 256 + w * 64 + c])
    np.testing.assert_array_equal(sd["decoder.net.2.weight"][c * 16 + h * 4 + w],
                                  tf_vars["decoder/dense_1/kernel"][:, h * 256 + w * 64 + c])
    assert sd["decoder.net.2.bias"][c * 16 + h * 4 + w] == tf_vars["decoder/dense_1/bias"][h * 256 + w * 64 + c]
    np.testing.assert_array_equal(sd["encoder.convs.2.weight"][7, 4, 1, 2], tf_vars["encoder/e2/kernel"][1, 2, 4, 7])
    np.testing.assert_array_equal(sd["decoder.net.7.weight"][9, 4, 1, 2],
                                  tf_vars["decoder/conv2d_transpose_1/kernel"][1, 2, 4, 9])
    with pytest.raises(D.ImportError_, match="1 channel"):
        D.convert_weights(tf_vars, 3, 3, "t")
