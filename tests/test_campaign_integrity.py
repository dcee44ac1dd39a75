"""Issue 19's hostile-input campaign, the rows about output checks and the integrity of collected
and evaluated results (rows 1, 3, 4, 13, 14, 15, 16, 17 and the small points on busy and
symlinked run dirs): each ends as one line with exit 2 (1 for a diverged training), or as a
run skipped with one warning line naming the file and the problem."""
from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import varstruct
from varstruct.cli.app import main
from varstruct.errors import DivergedError, ResultFileError, RunDirError
from varstruct.models.load import load_dataset, load_model
from varstruct.runs.layout import RunDir, log_diverged

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
# toy_blobs, profile none: factor B's variance is r² times A's, so variance_share_B = r² / (1 + r²)
RUN = {"dataset": "toy_blobs", "method": "beta_vae", "hparams": {"beta": 4.0}, "arch": "mlp", "hidden": [16],
       "latent_dim": 3, "recon": "gaussian", "steps": 6, "batch_size": 8, "log_every": 3, "checkpoint_every": 3,
       "precision": "fp32"}
R = {"r15": 1.5, "r2": 2.0}
COLLECT = dict(n_anchors=20, n_pca_anchors=4)
COLLECT_CLI = ["--anchors", "20", "--pca-anchors", "4"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def share_b(r):
    return r ** 2 / (1 + r ** 2)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """models/{r15,r2}: two trained, evaluated and measured runs on toy_blobs (r = 1.5, 2)."""
    root = tmp_path_factory.mktemp("study") / "models"
    root.mkdir()
    for name, r in R.items():
        out = varstruct.train({**RUN, "dataset_params": {"r": r, "profile": "none"}}, out=root / name, threads=1)
        rd = RunDir(out)
        model, ds = load_model(rd), load_dataset(rd)
        rd.write_scores(varstruct.evaluate(model, ds, metrics=["mig"], n_train=100, n_test=50, seed=0))
        rd.write_measures(varstruct.measure_model(model, ds, n_anchors=4, n_variance=50, n_decoder=20, seed=0))
    return root


@pytest.fixture
def models(study, tmp_path):
    """A private copy of the study (without its dataset-measure cache)."""
    from varstruct.study.collect import CACHE_DIR

    dst = tmp_path / "models"
    shutil.copytree(study, dst, ignore=shutil.ignore_patterns(CACHE_DIR))
    return dst


def one_line_error(capsys, args, *, match=None, code=2):
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert rc == code, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert lines and lines[-1].startswith("error:") and sum(ln.startswith("error:") for ln in lines) == 1, err
    assert "Traceback" not in err
    if match:
        assert match in lines[-1], err
    return err


def collect_warnings(models, caplog):
    from varstruct.study.collect import collect

    caplog.clear()
    with caplog.at_level("WARNING", logger="varstruct.collect"):
        c = collect(models, **COLLECT)
    msgs = [r.getMessage() for r in caplog.records]
    assert all("\n" not in m for m in msgs)
    return c, msgs


# ---- row 1: collect -o a device, a folder, a link ----------------------------------------------
def _devices(tmp_path) -> list[Path]:
    """Non-regular targets made in tmp_path (never /dev itself: the unfixed code, run as root,
    replaced the device node by a netCDF file): a FIFO, and a character device like /dev/full
    (major 1, minor 7) where this process may create one."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    found = [fifo]
    try:
        os.mknod(tmp_path / "full", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        found.append(tmp_path / "full")
    except OSError:
        pass
    return found


def test_row01_collect_refuses_non_regular_targets(models, tmp_path, capsys):
    target = tmp_path / "target.nc"
    target.write_bytes(b"keep")
    (tmp_path / "link.nc").symlink_to(target)
    devices = _devices(tmp_path)
    for out, what in [*[(d, "not a regular file") for d in devices], (tmp_path, "is a folder"),
                      (tmp_path / "link.nc", "not a regular file")]:
        for extra in ([], ["--overwrite"]):
            one_line_error(capsys, ["collect", models, "-o", out, *COLLECT_CLI, *extra], match=what)
    assert target.read_bytes() == b"keep"
    assert stat.S_ISFIFO(os.lstat(devices[0]).st_mode)
    assert all(stat.S_ISCHR(os.lstat(d).st_mode) for d in devices[1:])


# ---- row 3: collect -o EXISTING.nc needs --overwrite --------------------------------------------
def test_row03_collect_existing_output_needs_overwrite(models, tmp_path, capsys):
    out = tmp_path / "study.nc"
    out.write_bytes(b"old study")
    one_line_error(capsys, ["collect", models, "-o", out, *COLLECT_CLI], match="exists (use --overwrite")
    assert out.read_bytes() == b"old study"
    assert main(["collect", str(models), "-o", str(out), *COLLECT_CLI, "--overwrite"]) == 0
    assert varstruct.io.read_netcdf(out).sizes["model"] == 2


# ---- row 4: a dataset-measure cache file for other parameters is not used ------------------------
def test_row04_cache_file_for_other_parameters_is_recomputed(models, caplog):
    from varstruct.study.collect import CACHE_DIR

    c, msgs = collect_warnings(models, caplog)
    np.testing.assert_allclose(c["variance_share"].sel(factor="B").values, [share_b(1.5), share_b(2.0)], rtol=1e-6)
    cache = {json.loads(varstruct.io.read_netcdf(p).attrs["cache_key"])["params"]["r"]: p
             for p in (models / CACHE_DIR).iterdir()}
    assert set(cache) == {1.5, 2.0} and not msgs
    # the r = 1.5 entry placed under the r = 2 name: detected, recomputed, replaced
    shutil.copyfile(cache[1.5], cache[2.0])
    c, msgs = collect_warnings(models, caplog)
    np.testing.assert_allclose(c["variance_share"].sel(factor="B").values, [share_b(1.5), share_b(2.0)], rtol=1e-6)
    assert len(msgs) == 1 and "recomputing" in msgs[0] and '"r": 1.5' in msgs[0], msgs
    assert json.loads(varstruct.io.read_netcdf(cache[2.0]).attrs["cache_key"])["params"]["r"] == 2.0
    # the right key but other measure settings (another seed) or a foreign file: recomputed too
    m = varstruct.io.read_netcdf(cache[2.0])
    m.attrs["seed"] = 7
    varstruct.io.write_netcdf(m, cache[2.0])
    c, msgs = collect_warnings(models, caplog)
    assert len(msgs) == 1 and "seed = 7" in msgs[0], msgs
    np.testing.assert_allclose(c["variance_share"].sel(factor="B").values[1], share_b(2.0), rtol=1e-6)
    _foreign().pipe(varstruct.io.write_netcdf, cache[2.0])
    c, msgs = collect_warnings(models, caplog)
    assert len(msgs) == 1 and "not a varstruct result" in msgs[0], msgs
    np.testing.assert_allclose(c["variance_share"].sel(factor="B").values[1], share_b(2.0), rtol=1e-6)


def test_row04_cache_problem_names_the_difference():
    from varstruct.study.collect import cache_problem, dataset_key

    cfg = {"dataset": "toy_blobs", "dataset_params": {"r": 2.0}}
    ds = varstruct.datasets.get("toy_blobs", r=2.0)
    m = varstruct.measure_dataset(ds, n_anchors=5, seed=0, n_pca_anchors=3)
    m.attrs["cache_key"] = dataset_key(cfg)
    assert cache_problem(m, cfg, 5, 0, 3) is None
    assert cache_problem(m, cfg, 5, 0, 4) == "computed with n_pca_anchors = 3, not 4"
    assert cache_problem(m, cfg, 6, 0, 3) == "computed with n_anchors = 5, not 6"
    assert cache_problem(m, cfg, 5, 1, 3) == "computed with seed = 0, not 1"
    assert cache_problem(m, {**cfg, "dataset_params": {"r": 1.5}}, 5, 0, 3).startswith("computed for")
    capped = varstruct.measure_dataset(ds, n_anchors=5, seed=0, n_pca_anchors=200)  # P is capped at A
    capped.attrs["cache_key"] = dataset_key(cfg)
    assert cache_problem(capped, cfg, 5, 0, 200) is None


# ---- row 13: bad config.json values; foreign netCDF as scores.nc / measures.nc ----------------------
def _foreign():
    import xarray as xr

    return xr.Dataset({"temperature": ("time", np.arange(5.0))}, attrs={"title": "weather"})


@pytest.mark.parametrize("field,value,match", [("latent_dim", "three", "latent_dim must be an integer >= 1"),
                                               ("steps", -5, "steps must be an integer >= 0"),
                                               ("lr", "nan", "lr must be a finite number > 0"),
                                               ("hparams", [1], "hparams must be a table (dict)")])
def test_row13_bad_config_values_are_refused(models, caplog, capsys, field, value, match):
    p = models / "r2" / "config.json"
    cfg = json.loads(p.read_text())
    cfg[field] = value
    p.write_text(json.dumps(cfg))
    c, msgs = collect_warnings(models, caplog)
    assert list(c["model"].values) == ["r15"]
    assert len(msgs) == 1 and "skipping r2" in msgs[0] and str(p) in msgs[0] and match in msgs[0], msgs
    one_line_error(capsys, ["evaluate", models / "r2", "-o", models / "s.nc", "--train-points", "50",
                            "--test-points", "20", "-m", "mig"], match=f"{p}: {match}")
    assert not (models / "s.nc").exists()


@pytest.mark.parametrize("name", ["scores.nc", "measures.nc"])
def test_row13_foreign_netcdf_result_is_refused(models, caplog, name):
    varstruct.io.write_netcdf(_foreign(), models / "r2" / name)
    c, msgs = collect_warnings(models, caplog)
    assert list(c["model"].values) == ["r15"] and "temperature" not in c
    assert len(msgs) == 1 and f"r2/{name}: not a varstruct result file" in msgs[0], msgs


def test_row13_result_of_another_dataset_is_refused(models, caplog):
    m = varstruct.io.read_netcdf(models / "r2" / "scores.nc")
    m.attrs["dataset"] = "toy_linear"
    varstruct.io.write_netcdf(m, models / "r2" / "scores.nc")
    c, msgs = collect_warnings(models, caplog)
    assert list(c["model"].values) == ["r15"] and "made on dataset 'toy_linear', not 'toy_blobs'" in msgs[0], msgs


def test_row13_check_result():
    from varstruct.schema import check_result

    with pytest.raises(ResultFileError, match="f.nc: not a varstruct result file"):
        check_result(_foreign(), "f.nc", "scores")
    ds = varstruct.measure_dataset(varstruct.datasets.get("toy_linear"), n_anchors=3, n_pca_anchors=2)
    assert check_result(ds, "d.nc", "dataset_measures", dataset="toy_linear") is ds
    with pytest.raises(ResultFileError, match="'varstruct disentanglement scores' expected"):
        check_result(ds, "d.nc", "scores")
    ds["extra"] = ("factor", np.zeros(ds.sizes["factor"]))  # a variable the schema does not describe
    with pytest.raises(ResultFileError, match="extra lack long_name"):
        check_result(ds, "d.nc", "dataset_measures")


# ---- row 14: a read-only models dir --------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_row14_collect_on_a_read_only_models_dir(models, tmp_path, caplog, capsys):
    folders = [models, *[p for p in models.rglob("*") if p.is_dir()]]
    for p in folders:
        p.chmod(0o555)
    try:
        c, msgs = collect_warnings(models, caplog)
        assert c.sizes["model"] == 2
        np.testing.assert_allclose(c["variance_share"].sel(factor="B").values, [share_b(1.5), share_b(2.0)],
                                   rtol=1e-6)
        assert len(msgs) == 1 and "computed in memory, not cached" in msgs[0], msgs
        out = tmp_path / "study.nc"
        assert main(["collect", str(models), "-o", str(out), *COLLECT_CLI]) == 0
        assert varstruct.io.read_netcdf(out).sizes["model"] == 2
        assert capsys.readouterr().err.count("warning:") == 1
    finally:
        for p in folders:
            p.chmod(0o755)


def test_row14_collect_with_a_read_only_cache_folder(models, monkeypatch, caplog):
    """The same through a patched probe (the check runs as root too)."""
    from varstruct.study import collect as mod

    def refuse(folder, label, path):
        raise varstruct.errors.OutputError(f"{label} {path}: cannot write in {folder} (Read-only file system)")

    monkeypatch.setattr(varstruct.io, "probe_folder", refuse)
    c, msgs = collect_warnings(models, caplog)
    assert c.sizes["model"] == 2 and len(msgs) == 1 and "Read-only file system" in msgs[0]
    assert not (models / mod.CACHE_DIR).exists()


# ---- row 15: weights hash in collect; manifests that cannot be trusted ---------------------------
def _manifest(models):
    from varstruct.study.manifest import write_manifest

    write_manifest(models)
    return models / "manifest.csv"


def test_row15_collect_checks_the_weights_hash(models, caplog):
    _manifest(models)
    c, msgs = collect_warnings(models, caplog)
    assert c.sizes["model"] == 2 and not msgs
    w = models / "r2" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    w.write_bytes(bytes(data))
    c, msgs = collect_warnings(models, caplog)
    assert list(c["model"].values) == ["r15"]
    assert len(msgs) == 1 and "skipping r2" in msgs[0] and "sha256 mismatch" in msgs[0], msgs


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(manifest, rows):
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize("damage,match", [
    ("row removed", "does not list r2"),
    ("row garbage", "does not list r2"),
    ("digest garbage", "malformed sha256"),
    ("digest empty", "without a weights_sha256"),
    ("row twice", "lists r2 2 times"),
    ("symlink", "is a symbolic link"),
    ("folder", "is not a regular file"),
    ("foreign csv", "not a varstruct manifest"),
    ("unreadable bytes", "unreadable manifest"),
])
def test_row15_untrustworthy_manifest_is_an_error(models, tmp_path, capsys, damage, match):
    manifest = _manifest(models)
    rows = _rows(manifest)
    r2 = next(r for r in rows if r["path"] == "r2")
    if damage == "row removed":
        _write_rows(manifest, [r for r in rows if r is not r2])
    elif damage == "row garbage":
        text = manifest.read_text().splitlines()
        manifest.write_text("\n".join(ln if not ln.startswith("r2,") else "x,@@,garbage" for ln in text) + "\n")
    elif damage == "digest garbage":
        r2["weights_sha256"] = "not-a-digest"
        _write_rows(manifest, rows)
    elif damage == "digest empty":
        r2["weights_sha256"] = ""
        _write_rows(manifest, rows)
    elif damage == "row twice":
        _write_rows(manifest, rows + [r2])
    elif damage == "symlink":
        manifest.unlink()
        manifest.symlink_to("/etc/passwd")
    elif damage == "folder":
        manifest.unlink()
        manifest.mkdir()
    elif damage == "foreign csv":
        manifest.write_text("a,b\n1,2\n")
    elif damage == "unreadable bytes":
        manifest.write_bytes(b"path,weights_sha256\n\xff\xfe\x00r2\n")
    with pytest.raises(RunDirError, match=match) as e:
        load_model(RunDir(models / "r2"))
    assert "\n" not in str(e.value)
    one_line_error(capsys, ["evaluate", models / "r2", "-o", tmp_path / "s.nc", "-m", "mig",
                            "--train-points", "50", "--test-points", "20"], match=match)
    assert not (tmp_path / "s.nc").exists()


def test_row15_sidecar_that_is_a_link_or_garbage_is_an_error(models):
    side = models / "r2" / "model.safetensors.sha256"
    side.symlink_to("/etc/hostname")
    with pytest.raises(RunDirError, match="sha256 file is a symbolic link"):
        load_model(RunDir(models / "r2"))
    side.unlink()
    side.write_text("zz  model.safetensors\n")
    with pytest.raises(RunDirError, match="malformed sha256"):
        load_model(RunDir(models / "r2"))


# ---- row 16: a diverging training ------------------------------------------------------------------
def test_row16_diverged_training_stops_without_weights(tmp_path, capsys):
    out = tmp_path / "div"
    cfg = {**RUN, "steps": 20, "log_every": 5, "lr": 1e30}
    with pytest.raises(DivergedError, match=r"^diverged at step \d+") as e:
        varstruct.train(cfg, out=out, threads=1)
    step = e.value.step
    assert 1 <= step < 20 and e.value.run_dir == out
    rd = RunDir(out)
    assert not rd.weights_path.exists() and not rd.has_checkpoint and rd.config_path.is_file()
    rows = rd.read_log()
    assert int(rows["step"].iloc[-1]) == step and not np.isfinite(rows["loss"].iloc[-1])
    assert np.isfinite(rows.drop(columns=["step", "seconds"]).iloc[:-1].to_numpy()).all()
    assert log_diverged(rd.log_path)
    # the CLI: exit 1 and one line; measure model / evaluate / --resume then refuse it with one line
    one_line_error(capsys, ["train", "toy_blobs", "-m", "beta_vae", "--recon", "gaussian", "-l", "3", "-b", "8",
                            "-n", "20", "--lr", "1e30", "--threads", "1", "-o", tmp_path / "div2"],
                   match="error: diverged at step", code=1)
    assert not (tmp_path / "div2" / "model.safetensors").exists()
    one_line_error(capsys, ["measure", "model", out, "-a", "3"], match=f"diverged at step {step}")
    one_line_error(capsys, ["evaluate", out, "-m", "mig"], match=f"diverged at step {step}")
    with pytest.raises(RunDirError, match="diverged"):
        varstruct.train(cfg, out=out, threads=1, resume=True)


def test_row16_old_run_with_nan_weights_is_refused(study, tmp_path, capsys, caplog):
    """A run trained before the fix: weights saved, log ending in NaN."""
    models = tmp_path / "models"
    shutil.copytree(study / "r2", models / "r2")
    log = models / "r2" / "train_log.csv"
    lines = log.read_text().splitlines()
    assert lines[0] == "step,loss,recon,kl,seconds"
    log.write_text("\n".join(lines + ["99,nan,nan,nan,1.0"]) + "\n")
    one_line_error(capsys, ["measure", "model", models / "r2", "-a", "3", "-o", tmp_path / "m.nc"],
                   match="diverged at step 99")
    from varstruct.study.collect import collect

    with caplog.at_level("WARNING", logger="varstruct.collect"), pytest.raises(varstruct.errors.ConfigError,
                                                                              match="no finished run"):
        collect(models, **COLLECT)
    assert any("skipping r2: diverged" in r.getMessage() for r in caplog.records)


# ---- row 17: missing parent folders: refused, the same for every command ---------------------------
def test_row17_missing_parents_are_refused_everywhere(study, tmp_path, capsys):
    base = tmp_path / "a"
    run = study / "r2"
    for args in (["train", "toy_linear", "-m", "beta_vae", "-n", "2", "--threads", "1", "-o", base / "b" / "c"],
                 ["evaluate", run, "-o", base / "b" / "s.nc"],
                 ["measure", "model", run, "-o", base / "b" / "m.nc"],
                 ["measure", "dataset", "toy_linear", "-o", base / "b" / "d.nc"],
                 ["collect", study, "-o", base / "b" / "study.nc"]):
        one_line_error(capsys, args, match=f"folder {base / 'b'} does not exist")
    assert not base.exists()


# ---- small points: a run still training; symlinked run dirs ----------------------------------------
def test_evaluate_on_a_run_still_training_says_in_use(tmp_path, capsys):
    out = tmp_path / "busy"
    varstruct.train(RUN, out=out, threads=1, stop_after=3)  # an interrupted run, as a trainer leaves it
    code = ("import sys, time; from varstruct.runs.layout import RunDir\n"
            "with RunDir(sys.argv[1]).lock():\n    print('locked', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(out)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        err = one_line_error(capsys, ["evaluate", out], match="in use by a running trainer")
        assert f"process {p.pid}" in err and "--resume" not in err
        one_line_error(capsys, ["measure", "model", out], match="in use by a running trainer")
    finally:
        p.kill()
        p.wait()
    # once the trainer is gone, the same dir is an interrupted run: --resume is the advice
    one_line_error(capsys, ["evaluate", out], match="--resume")


def test_symlinked_run_dirs_are_reported(models, tmp_path, caplog, capsys):
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(models / "r15"), elsewhere)
    (models / "r15").symlink_to(elsewhere)
    (models / "group").mkdir()
    (models / "group" / "loop").symlink_to(models)  # a cycle is not followed either
    c, msgs = collect_warnings(models, caplog)
    assert list(c["model"].values) == ["r2"]
    assert sorted(m.split(":")[0] for m in msgs) == ["skipping group/loop", "skipping r15"], msgs
    assert all("symbolic link (not followed" in m for m in msgs)
    assert main(["collect", str(models), "-o", str(tmp_path / "s.nc"), *COLLECT_CLI]) == 0
    assert capsys.readouterr().err.count("symbolic link") == 2


# ---- item 7: one attr cleaner --------------------------------------------------------------------
def test_one_attr_cleaner(tmp_path):
    import xarray as xr

    import varstruct.io
    import varstruct.schema

    assert not hasattr(varstruct.io, "netcdf_safe_attrs")
    attrs = {"flag": True, "none": None, "one": [3], "two": [1, 2], "d": {"b": 1, "a": [1, 2]}, "s": "x",
             "f": np.float32(0.5)}
    ds = xr.Dataset({"v": ("x", np.arange(3.0), attrs)}, attrs=attrs)
    varstruct.io.write_netcdf(ds, tmp_path / "a.nc")
    back = varstruct.io.read_netcdf(tmp_path / "a.nc")
    want = varstruct.schema.canonical_attrs(attrs)
    for got in (back.attrs, back["v"].attrs):
        assert varstruct.schema.attrs_equal(dict(got), want)
    assert "none" not in back.attrs and back.attrs["flag"] == 1 and back.attrs["one"] == "[3]"
    assert back.attrs["d"] == '{"a": [1, 2], "b": 1}'


# ---- collect's and correlate's anchors and seed: checked as in `measure dataset`, short forms too --
@pytest.mark.parametrize("extra,what", [
    (["-a", "0"], "--anchors must be an integer >= 1"),
    (["-a", "20", "--pca-anchors", "21"], "--pca-anchors 21 exceeds --anchors 20"),
    (["-a", "20", "-s", "-1"], "--seed must be an integer in [0,"),
])
def test_collect_refuses_bad_anchors_and_seeds_before_any_work(models, tmp_path, capsys, extra, what):
    out = tmp_path / "s.nc"
    one_line_error(capsys, ["collect", models, "-o", out, *extra], match=what)
    assert not out.exists()


def test_correlate_takes_the_shared_seed_option(models, tmp_path, capsys):
    one_line_error(capsys, ["correlate", models, "-o", tmp_path / "r", "-s", "-1"], match="--seed must be")
    assert not (tmp_path / "r").exists()
