"""Studies end to end: spec -> sweep (in process, dask) -> collect -> correlate, restartability."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from varstruct.errors import ConfigError
from varstruct.study.spec import read_spec, runs_from_dict, slug

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
seeds = [0, 1]
steps = 60
[train]
batch_size = 32
latent_dim = 3
hidden = [[64]]
log_every = 10
checkpoint_every = 5
[[datasets]]
name = "toy_blobs"
params = { r = [1.25, 2.0], profile = "none" }
[[methods]]
name = "beta_vae"
hparams = { beta = 4 }
[evaluate]
metrics = ["mig", "sap"]
n_train = 300
n_test = 100
[measure]
n_anchors = 12
n_variance = 300
n_decoder = 50
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "varstruct", *map(str, args)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _weights(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("model.safetensors"))}


def _same_numbers(a: xr.Dataset, b: xr.Dataset):
    assert list(a["model"].values) == list(b["model"].values)
    assert set(a.data_vars) == set(b.data_vars)
    for k in a.data_vars:
        np.testing.assert_array_equal(a[k].values, b[k].values, err_msg=k)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("spec") / "tiny.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def swept(spec_file, tmp_path_factory):
    """The tiny study swept in this process (one worker)."""
    from varstruct.study.sweep import sweep

    out = tmp_path_factory.mktemp("models") / "models"
    res = sweep(read_spec(spec_file), out, workers=1)
    assert res.ok and len(res.done) == 4, res
    return out


# -- spec --------------------------------------------------------------------------------------------

def test_spec_grid_and_dirs(spec_file):
    runs = read_spec(spec_file)
    assert [r.rel for r in runs] == ["toy_blobs-none-r1.25/beta_vae-beta4/seed0", "toy_blobs-none-r1.25/beta_vae-beta4/seed1",
                                     "toy_blobs-none-r2/beta_vae-beta4/seed0", "toy_blobs-none-r2/beta_vae-beta4/seed1"]
    t = runs[2].train
    assert t["dataset_params"] == {"r": 2.0, "profile": "none"} and t["hparams"] == {"beta": 4}
    assert t["seed"] == 0 and t["steps"] == 60 and t["hidden"] == [64] and t["latent_dim"] == 3
    assert runs[0].evaluate["metrics"] == ["mig", "sap"] and runs[0].measure["n_anchors"] == 12
    assert [r.rel for r in read_spec(spec_file)] == [r.rel for r in runs]  # deterministic


def test_spec_sweeps_train_options_and_counts_seeds():
    runs = runs_from_dict({"seeds": 3, "steps": [10, 20], "train": {"lr": [1e-3, 1e-4]},
                           "datasets": [{"name": "toy_blobs"}, {"name": "toy_linear", "params": {"sizes": [[4, 4]]}}],
                           "methods": [{"name": "ae"}, {"name": "beta_vae", "hparams": {"beta": [1, 2]}}]})
    assert len(runs) == 2 * (1 + 2) * 2 * 2 * 3
    rels = {r.rel for r in runs}
    assert "toy_blobs/beta_vae-beta2-lr0.0001-steps20/seed2" in rels
    assert "toy_linear-sizes4_4/ae-lr0.001-steps10/seed0" in rels
    assert slug("m", {"b": "x y", "a": 0.5}) == "m-a0.5-x_y"


@pytest.mark.parametrize("spec, msg", [
    ({"steps": 5, "datasets": [{"name": "toy_blobs"}], "methods": [{"name": "ae"}], "bogus": 1}, "unknown key"),
    ({"datasets": [{"name": "toy_blobs"}], "methods": [{"name": "ae"}]}, "steps"),
    ({"steps": 5, "methods": [{"name": "ae"}]}, "[[datasets]]"),
    ({"steps": 5, "datasets": [{"name": "toy_blobs", "params": {"r": []}}], "methods": [{"name": "ae"}]}, "empty list"),
    ({"steps": 5, "seeds": [1, 1], "datasets": [{"name": "toy_blobs"}], "methods": [{"name": "ae"}]}, "distinct"),
    ({"steps": 5, "datasets": [{"name": "toy_blobs"}], "methods": [{"name": "ae"}],
      "evaluate": {"metrics": ["nope"]}}, "nope"),
    ({"steps": 5, "datasets": [{"name": "toy_blobs", "params": {"profile": ["a b", "a_b"]}}],
      "methods": [{"name": "ae"}]}, "same dir"),
])
def test_spec_errors_are_one_line(spec, msg):
    with pytest.raises(ConfigError) as e:
        runs_from_dict(spec)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_spec(bad)
    with pytest.raises(ConfigError, match="no such file"):
        read_spec(tmp_path / "missing.toml")


# -- sweep -------------------------------------------------------------------------------------------

def test_sweep_writes_the_run_dir_contract(swept):
    from varstruct.runs.layout import RunDir

    runs = sorted(p.parent for p in swept.rglob("config.json"))
    assert len(runs) == 4
    for p in runs:
        rd = RunDir(p)
        assert rd.state == "trained" and rd.has_scores and rd.has_measures and rd.log_path.is_file()
        assert rd.read_status()["state"] == "done" and not rd.has_checkpoint
        assert set(rd.read_scores().data_vars) >= {"mig", "sap", "mig_per_factor"}
        m = rd.read_measures()
        assert 0 <= float(m["dead_unit_share"]) <= 1 and np.isnan(float(m["mask_sparsity"]))  # no masks


def test_second_sweep_trains_nothing(swept, spec_file):
    from varstruct.study.sweep import sweep

    before = {p: p.stat().st_mtime_ns for p in swept.rglob("*") if p.is_file()}
    res = sweep(read_spec(spec_file), swept, workers=1)
    assert res.ok and not res.done and len(res.skipped) == 4
    assert {p: p.stat().st_mtime_ns for p in swept.rglob("*") if p.is_file()} == before


def test_dask_cluster_gives_identical_results(swept, spec_file, tmp_path):
    pytest.importorskip("dask.distributed")
    from varstruct.study.collect import collect
    from varstruct.study.sweep import sweep

    out = tmp_path / "dask"
    res = sweep(read_spec(spec_file), out, scheduler="dask", workers=2)
    assert res.ok and len(res.done) == 4, res
    assert res.dashboard and res.dashboard.startswith("http")
    assert _weights(out) == _weights(swept)
    _same_numbers(collect(out, n_anchors=30, n_pca_anchors=5), collect(swept, n_anchors=30, n_pca_anchors=5))


def test_killed_sweep_resumes_to_identical_results(swept, spec_file, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "varstruct", "sweep", str(spec_file), "--out", str(out),
                             "--workers", "1"], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            done = list(out.rglob("model.safetensors")) if out.exists() else []
            mid = [p for p in out.rglob("checkpoint.safetensors")] if done else []
            if any(not (p.parent / "model.safetensors").exists() for p in mid):  # one run done, one mid-training
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    from varstruct.runs.layout import RunDir

    states = [RunDir(p.parent).state for p in out.rglob("config.json")]
    assert "interrupted" in states, states
    r = _cli("sweep", spec_file, "--out", out, "--workers", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _weights(out) == _weights(swept)
    from varstruct.study.collect import collect
    _same_numbers(collect(out, n_anchors=30, n_pca_anchors=5), collect(swept, n_anchors=30, n_pca_anchors=5))


BAD_SPEC = """
seeds = [0]
steps = 10
[train]
batch_size = 16
latent_dim = 2
hidden = [[32]]
[[datasets]]
name = "toy_blobs"
params = { profile = ["none", "sideways"] }
[[methods]]
name = "ae"
[evaluate]
metrics = ["mig"]
n_train = 100
n_test = 50
[measure]
n_anchors = 5
n_variance = 100
n_decoder = 20
"""


def test_bad_config_is_refused_before_any_work(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(BAD_SPEC)
    out = tmp_path / "m"
    for extra in ([], ["--dry-run"]):
        r = _cli("sweep", spec, "--out", out, "--workers", "1", *extra)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.count("\n") == 1 and "toy_blobs-sideways/ae/seed0" in r.stderr and "profile" in r.stderr
        assert "Traceback" not in r.stderr and not out.exists()


def test_a_broken_run_dir_fails_alone(tmp_path):
    spec = tmp_path / "ok.toml"
    spec.write_text(BAD_SPEC.replace('["none", "sideways"]', '["none", "noflip"]'))
    out = tmp_path / "m"
    broken = out / "toy_blobs-noflip/ae/seed0"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{")
    r = _cli("sweep", spec, "--out", out, "--workers", "1")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 done" in r.stdout and "1 failed" in r.stdout and "toy_blobs-noflip/ae/seed0" in r.stdout
    assert (broken / "config.json").read_text() == "{" and not (broken / "status.json").exists()
    assert (out / "toy_blobs-none/ae/seed0/model.safetensors").is_file()
    dry = _cli("sweep", spec, "--out", out, "--dry-run")
    assert dry.returncode == 0 and "broken" in dry.stdout and "done" in dry.stdout


# -- collect -----------------------------------------------------------------------------------------

def test_collect_joins_configs_scores_and_measures(swept, tmp_path, caplog):
    import shutil

    from varstruct.study.collect import CACHE_DIR, collect

    models = tmp_path / "models"
    shutil.copytree(swept, models, ignore=shutil.ignore_patterns(CACHE_DIR))
    (models / "broken/x").mkdir(parents=True)
    (models / "broken/x/config.json").write_text("{")
    unfinished = models / "toy_blobs-none-r2/beta_vae-beta4/seed1"
    (unfinished / "scores.nc").unlink()
    before = {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()}
    with caplog.at_level("WARNING", logger="varstruct.collect"):
        c = collect(models, n_anchors=30, n_pca_anchors=5)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("\n" not in w for w in warnings)
    assert any("broken/x" in w for w in warnings) and any("seed1" in w and "scores" in w for w in warnings)
    assert c.sizes["model"] == 3
    assert list(c["data_r"].values) == [1.25, 1.25, 2.0] and list(c["seed"].values) == [0, 1, 0]
    assert set(c["method"].values) == {"beta_vae"} and list(c["hp_beta"].values) == [4.0] * 3
    assert c["mig"].attrs["source"] == "score" and c["mig_per_factor"].dims == ("model", "factor")
    assert c["encoding_inconsistency"].attrs["source"] == "model_measure"
    assert c["variance_share"].attrs["source"] == "dataset_measure"
    # dataset measures: computed once per dataset configuration, cached, identical across its models
    cache = sorted((models / CACHE_DIR).iterdir())
    assert len(cache) == 2
    np.testing.assert_array_equal(c["variance_share"].values[0], c["variance_share"].values[1])
    # profile none: B's variance is r² times A's (closed form of the toy), so share_B = r² / (1 + r²)
    share_b = c["variance_share"].sel(factor="B").values
    np.testing.assert_allclose(share_b, [1.25 ** 2 / (1 + 1.25 ** 2)] * 2 + [4 / 5], rtol=1e-6)
    after = {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file() and CACHE_DIR not in p.parts}
    assert after == before  # nothing but the cache is written
    mtimes = [p.stat().st_mtime_ns for p in cache]
    collect(models, n_anchors=30, n_pca_anchors=5)
    assert [p.stat().st_mtime_ns for p in cache] == mtimes  # reused, not recomputed


def test_cli_collect_and_correlate(swept, tmp_path):
    nc, rep = tmp_path / "study.nc", tmp_path / "report"
    r = _cli("collect", swept, "--out", nc, "--anchors", "30", "--pca-anchors", "5")
    assert r.returncode == 0, r.stderr
    args = ("correlate", nc, "--out", rep, "--y", "mig,sap", "--x", "near_degeneracy,data_r,hp_beta,seed",
            "--permutations", "99", "--resamples", "99", "--level", "model")
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert "spearman" in r.stdout and "data_r" in r.stdout
    names = {p.name for p in rep.iterdir()}
    assert {"correlations.nc", "correlations.csv", "report.md", "heatmap.png"} <= names
    assert any(n.startswith("scatter-") for n in names)  # seed: one value per model, 4 units
    md = (rep / "report.md").read_text()
    assert md.splitlines()[2].startswith("How to read this report.")
    assert "constant x" in md and "| x | y | r |" in md  # hp_beta is constant: NaN with its reason
    # two dataset configurations: a dataset measure has 2 units, too few to test, whatever the 4 models
    assert "| near_degeneracy | mig |" in md and "2 units < 4" in md
    (rep / "scatter-old-vs-gone.png").write_bytes(b"old")  # an old report's file
    (rep / "notes.txt").write_text("mine")
    r = _cli(*args)
    assert r.returncode == 2 and "not empty" in r.stderr and "--overwrite" in r.stderr
    r = _cli(*args, "--overwrite")
    assert r.returncode == 0, r.stderr
    names2 = {p.name for p in rep.iterdir()}
    assert "scatter-old-vs-gone.png" not in names2 and "notes.txt" in names2 and names <= names2
    for bad in (("--top", "-1"), ("--scatters", "-2")):
        r = _cli(*args[:4], *bad)
        assert r.returncode == 2 and bad[0] in r.stderr and "Traceback" not in r.stderr
    r = _cli("correlate", nc, "--out", tmp_path / "r2", "--x", "nope")
    assert r.returncode == 2 and "nope" in r.stderr and "Traceback" not in r.stderr


# -- correlate ---------------------------------------------------------------------------------------

def _synthetic(n=40, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    z = rng.uniform(0, 1, n)
    ds = xr.Dataset({"gap": ("model", x), "other": ("model", z),
                     "mig": ("model", 2 * x + noise * rng.normal(size=n)),
                     "dci": ("model", -x ** 3 + noise * 0.1 * rng.normal(size=n)),
                     "flat": ("model", np.ones(n))},
                    coords={"model": [f"m{i}" for i in range(n)], "dataset": ("model", ["toy"] * n),
                            "dataset_config": ("model", [f"c{i}" for i in range(n)]),
                            "method": ("model", ["a", "b"] * (n // 2))})
    for k in ("gap", "other"):
        ds[k].attrs["source"] = "dataset_measure"
    for k in ("mig", "dci", "flat"):
        ds[k].attrs["source"] = "score"
    return ds


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall"])
def test_correlate_recovers_planted_relations(method):
    from scipy import stats

    from varstruct.study.correlate import correlate

    ds = _synthetic()
    c = correlate(ds, method=method, n_permutations=499, n_resamples=499, seed=1)
    assert c.attrs["level"] == "model" and c.attrs["method"] == method
    assert float(c["r"].sel(x="gap", y="mig")) > 0.6 and float(c["p"].sel(x="gap", y="mig")) < 0.01
    assert float(c["r"].sel(x="gap", y="dci")) < -0.6 and float(c["p"].sel(x="gap", y="dci")) < 0.01
    ci = c.sel(x="gap", y="mig")
    assert float(ci["ci_low"]) < float(ci["r"]) < float(ci["ci_high"])
    ref = {"spearman": stats.spearmanr, "pearson": stats.pearsonr, "kendall": stats.kendalltau}[method]
    np.testing.assert_allclose(float(c["r"].sel(x="other", y="mig")), ref(ds["other"], ds["mig"])[0], rtol=1e-12)
    assert str(c["reason"].sel(x="gap", y="flat").values) == "constant y"
    assert np.isnan(float(c["r"].sel(x="gap", y="flat"))) and int(c["n_units"].sel(x="gap", y="mig")) == 40
    # q-values: scipy's Benjamini-Hochberg over every tested pair
    p = c["p"].values
    ok = np.isfinite(p)
    np.testing.assert_allclose(c["q"].values[ok], stats.false_discovery_control(p[ok], method="bh"))
    assert c.attrs["n_tests"] == ok.sum() == 4
    # seeded: same numbers again
    c2 = correlate(ds, method=method, n_permutations=499, n_resamples=499, seed=1)
    xr.testing.assert_equal(c, c2)


def test_correlate_p_values_uniform_under_independence():
    from scipy import stats

    from varstruct.study.correlate import pair_statistics

    ps = []
    for s in range(300):  # data and permutations from independent streams
        rng = np.random.default_rng([s, 1])
        x, y = rng.normal(size=15), rng.normal(size=15)
        ps.append(pair_statistics(x, y, "spearman", n_permutations=499, n_resamples=2, rng=[s, 2])["p"])
    ps = np.array(ps)
    assert stats.kstest(ps, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(ps < 0.05) < 0.09 and 0.06 < np.mean(ps < 0.1) < 0.15


def test_correlate_small_n_by_groups_and_factor_level():
    from varstruct.study.correlate import correlate, points

    ds = _synthetic(n=10)
    c = correlate(ds, x="gap", y="mig", by="method", n_permutations=99, n_resamples=99)
    assert c["r"].dims == ("group", "x", "y") and list(c["group"].values) == ["a", "b"]
    assert (c["n_units"].values == 5).all()
    c = correlate(ds.isel(model=slice(0, 3)), x="gap", y="mig", n_permutations=99, n_resamples=99)
    assert np.isnan(float(c["r"].squeeze())) and "3 units < 4" in str(c["reason"].squeeze().values)
    # factor level: each (dataset configuration, factor) a point, averaged over that configuration's models
    n, K = 12, 3
    rng = np.random.default_rng(0)
    share = rng.uniform(size=(4, K))  # 4 dataset configurations
    cfg = np.repeat(np.arange(4), 3)  # 3 models each
    f = xr.Dataset({"variance_share": (("model", "factor"), share[cfg]),
                    "mig_per_factor": (("model", "factor"), share[cfg] + 0.01 * rng.normal(size=(n, K)))},
                   coords={"model": [f"m{i}" for i in range(n)], "factor": ["a", "b", "c"],
                           "dataset": ("model", ["toy"] * n), "dataset_config": ("model", [f"c{k}" for k in cfg])})
    f["variance_share"].attrs["source"] = "dataset_measure"
    f["mig_per_factor"].attrs["source"] = "score"
    pts = points(f, "variance_share", "mig_per_factor", "factor")
    assert len(pts) == 4 * K
    np.testing.assert_allclose(pts["x"].values, share.ravel())
    c = correlate(f, level="factor", n_permutations=99, n_resamples=99)
    assert int(c["n_units"].squeeze()) == 12 and float(c["r"].squeeze()) > 0.9
    with pytest.raises(ConfigError, match="by nope"):
        correlate(ds, by="nope")
    with pytest.raises(ConfigError, match="level"):
        correlate(ds, level="anchor")


# -- plots -------------------------------------------------------------------------------------------

def test_plots_draw_on_axes_without_global_state(swept):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import varstruct
    from varstruct import plots
    from varstruct.runs.layout import RunDir
    from varstruct.study.correlate import correlate

    ds = _synthetic(n=12)
    corr = correlate(ds, n_permutations=49, n_resamples=49)
    n_figs = len(plt.get_fignums())
    ax = plots.plot_correlation_heatmap(corr)
    assert ax.images and ax.get_title()
    ax = plots.plot_scatter(ds, "gap", "mig", corr=corr)
    assert ax.collections and ax.lines and "r=" in ax.get_title()
    from varstruct.models.load import load_dataset, load_model

    rd = RunDir(next(swept.rglob("config.json")).parent)
    dm = varstruct.measure_dataset(load_dataset(rd), n_anchors=20, n_pca_anchors=2)
    ax = plots.plot_variance_structure(dm)
    assert ax.get_xticklabels()[0].get_text() == "A"
    t = plots.latent_traversals(load_model(rd), load_dataset(rd), n_values=5)
    assert t.dims == ("latent", "value", "y", "x", "channel") and t.shape[:2] == (3, 5)
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    fig, given = plt.subplots()
    assert plots.plot_traversals(t, ax=given) is given
    plt.close(fig)
    assert len(plt.get_fignums()) == n_figs


def test_unknown_train_option_fails_before_any_work(tmp_path):
    from varstruct.study.sweep import sweep

    with pytest.raises(ConfigError, match="bogus"):  # found when the spec is read
        runs_from_dict({"steps": 5, "train": {"bogus": 1}, "datasets": [{"name": "toy_blobs"}],
                        "methods": [{"name": "ae"}]})
    runs = runs_from_dict({"steps": 5, "train": {"lr": -1.0}, "datasets": [{"name": "toy_blobs"}],
                           "methods": [{"name": "ae"}]})
    with pytest.raises(ConfigError, match="lr"):  # found by the trainer's validation, before any work
        sweep(runs, tmp_path / "m", workers=1)
    assert not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="top-level"):
        runs_from_dict({"steps": 5, "train": {"seed": 1}, "datasets": [{"name": "toy_blobs"}],
                        "methods": [{"name": "ae"}]})


def test_example_specs_parse():
    for path in sorted((ROOT / "studies").glob("*.toml")):
        assert read_spec(path), path


def test_spec_sweeps_a_list_of_tables():
    masks = [{"mode": "continuous", "l1": 0.0}, {"mode": "continuous", "l1": 1e-3}]
    runs = runs_from_dict({"steps": 5, "train": {"mask": masks}, "datasets": [{"name": "toy_blobs"}],
                           "methods": [{"name": "beta_vae"}]})
    assert [r.train["mask"] for r in runs] == masks
    assert [r.rel for r in runs] == ["toy_blobs/beta_vae-maskl10_modecontinuous/seed0",
                                     "toy_blobs/beta_vae-maskl10.001_modecontinuous/seed0"]


def test_collect_carries_each_run_s_convergence_verdict(swept):
    from varstruct.study.collect import collect
    from varstruct.training.convergence import run_convergence

    s = collect(swept, n_anchors=30, n_pca_anchors=5)
    for m, conv, imp in zip(s["model"].values, s["converged"].values, s["recon_improvement"].values):
        v = run_convergence(swept / m)
        assert conv == float(v["converged"]) and imp == pytest.approx(v["improvement"])
    assert "criterion" in s["converged"].attrs


def test_collect_config_coords_carry_the_channel_mask():
    from varstruct.study.collect import _config_coords

    base = {"dataset": "toy_blobs", "dataset_params": {"r": 2.0}, "method": "beta_vae", "hparams": {"beta": 2},
            "seed": 0, "steps": 10}
    masked = {**base, "mask": {"mode": "hard_concrete", "l1": 1e-4}}
    c = _config_coords([base, masked])
    assert c["mask_mode"][1].tolist() == ["", "hard_concrete"]
    np.testing.assert_array_equal(c["mask_l1"][1], [np.nan, 1e-4])
    assert "mask_mode" not in _config_coords([base, base])  # no masked run: no mask coordinates


def test_a_run_another_process_holds_is_left_to_it_and_picked_up_later(tmp_path):
    """Two sweeps over one dir share the work: a run dir whose writer lock another process holds
    is reported busy (naming the holder), not failed, and a later sweep trains it."""
    from varstruct.study.sweep import sweep

    runs = runs_from_dict(tomllib.loads(SPEC.replace("seeds = [0, 1]", "seeds = [0]")))
    out = tmp_path / "models"
    held = runs[0].rel
    (out / held).parent.mkdir(parents=True)
    script = ("import sys\nfrom varstruct.runs.layout import RunDir\n"
              f"with RunDir({str(out / held)!r}).lock():\n    print('locked', flush=True)\n    sys.stdin.readline()\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        spec = tmp_path / "one.toml"
        spec.write_text(SPEC.replace("seeds = [0, 1]", "seeds = [0]"))
        listing = subprocess.run([sys.executable, "-m", "varstruct", "sweep", str(spec), "--out", str(out), "--dry-run"],
                                 cwd=ROOT, env={**_env(), "COLUMNS": "300"}, capture_output=True, text=True, timeout=120)
        assert listing.returncode == 0 and f"busy: in use by process {holder.pid}" in listing.stdout, listing.stdout
        res = sweep(runs, out, workers=1)
        assert list(res.busy) == [held] and f"in use by process {holder.pid}" in res.busy[held]
        assert res.ok and not res.failed and res.done == [runs[1].rel]
        assert not (out / held / "model.safetensors").exists() and not (out / held / "status.json").exists()
        again = subprocess.run([sys.executable, "-m", "varstruct", "sweep", str(spec), "--out", str(out)],
                               cwd=ROOT, env={**_env(), "COLUMNS": "300"}, capture_output=True, text=True, timeout=120)
        assert again.returncode == 75 and "1 busy" in again.stdout, again.stdout + again.stderr  # try again later
    finally:
        holder.communicate("\n", timeout=30)
    res = sweep(runs, out, workers=1)
    assert res.done == [held] and res.skipped == [runs[1].rel] and not res.busy
