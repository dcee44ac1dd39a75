"""RunDir: file names, states, atomic reads/writes, the dataset and model of a run, the writer lock."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import varstruct
from varstruct.errors import OutputError, RunDirError, RunDirLocked
from varstruct.models.load import load_dataset, load_model
from varstruct.runs.layout import RunDir

REPO = Path(__file__).resolve().parents[1]
TOY = {"dataset": "toy_linear", "method": "beta_vae", "hparams": {"beta": 1.0}, "arch": "mlp", "hidden": [16],
       "latent_dim": 3, "recon": "gaussian", "steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return RunDir(varstruct.train(TOY, out=tmp_path_factory.mktemp("rd") / "run", threads=1))


def test_names_and_paths():
    rd = RunDir("some/where")
    assert (RunDir.CONFIG, RunDir.WEIGHTS, RunDir.LOG, RunDir.CHECKPOINT) == (
        "config.json", "model.safetensors", "train_log.csv", "checkpoint.safetensors")
    assert (RunDir.SCORES, RunDir.MEASURES, RunDir.STATUS, RunDir.LOCK) == (
        "scores.nc", "measures.nc", "status.json", ".lock")
    assert rd.path == Path("some/where") and rd.config_path == Path("some/where/config.json")
    assert rd.weights_path.name == "model.safetensors" and rd.log_path.name == "train_log.csv"
    assert rd.checkpoint_path.name == "checkpoint.safetensors" and rd.scores_path.name == "scores.nc"
    assert rd.measures_path.name == "measures.nc" and rd.status_path.name == "status.json"
    assert varstruct.RunDir is RunDir and not Path("some").exists()  # nothing touched


def test_states(tmp_path, trained):
    assert RunDir(tmp_path / "nope").state == "missing"
    (tmp_path / "e").mkdir()
    assert RunDir(tmp_path / "e").state == "empty"
    assert trained.state == "trained" and trained.is_trained
    assert not trained.has_scores and not trained.has_measures
    d = RunDir(tmp_path / "d")
    d.path.mkdir()
    d.write_config(trained.read_config())
    assert d.state == "interrupted" and not d.is_trained
    d.weights_path.write_bytes(trained.weights_path.read_bytes()[:300])  # truncated weights
    assert d.state == "broken"
    with pytest.raises(RunDirError, match="corrupt"):
        d.require("trained")
    d.weights_path.write_bytes(trained.weights_path.read_bytes())
    assert d.state == "trained"
    d.config_path.write_text("{not json")
    assert d.state == "broken"
    with pytest.raises(RunDirError, match="not a valid JSON config"):
        d.read_config()
    (tmp_path / "f").write_text("x")
    assert RunDir(tmp_path / "f").state == "broken"


def test_read_write_roundtrip(tmp_path, trained):
    import xarray as xr

    cfg = trained.read_config()
    assert cfg["dataset"] == "toy_linear" and cfg["latent_dim"] == 3
    log = trained.read_log()
    assert list(log["step"]) == [2, 4] and "loss" in log
    ds = load_dataset(trained)
    assert ds.name == "toy_linear"
    model = load_model(trained)
    assert not model.training and model.config == cfg
    d = RunDir(tmp_path / "x")
    d.path.mkdir()
    d.write_scores(xr.Dataset({"mig": 0.5}, attrs={"seed": 1}))
    d.write_measures(xr.Dataset({"a": ("f", [1.0, 2.0])}))
    assert d.has_scores and d.has_measures
    assert float(d.read_scores()["mig"]) == 0.5 and d.read_measures()["a"].values.tolist() == [1.0, 2.0]
    assert d.read_status() is None
    d.write_status("failed", "boom")
    st = d.read_status()
    assert st["state"] == "failed" and st["error"] == "boom" and st["time"].endswith("Z")
    d.write_weights({"w": __import__("torch").zeros(2)})
    assert d.read_weights()["w"].tolist() == [0.0, 0.0]
    assert sorted(p.name for p in d.path.iterdir()) == ["measures.nc", "model.safetensors", "scores.nc",
                                                        "status.json"]  # no temp files left
    d.clear()
    assert [p.name for p in d.path.iterdir()] == ["status.json"]  # the sweep's, kept by --overwrite


def test_read_errors_are_one_line(tmp_path):
    d = RunDir(tmp_path)
    for f in (d.read_config, d.read_log, d.read_scores, d.read_measures, lambda: load_model(d),
              lambda: load_dataset(d)):
        with pytest.raises(RunDirError) as e:
            f()
        assert "\n" not in str(e.value)
    d.scores_path.write_bytes(b"garbage")
    with pytest.raises(RunDirError, match="not a readable netCDF"):
        d.read_scores()
    with pytest.raises(RunDirError, match="no such model dir"):
        load_model(RunDir(tmp_path / "missing"))


def test_swapped_weights_name_the_mismatch(tmp_path, trained):
    other = varstruct.train({**TOY, "latent_dim": 2}, out=tmp_path / "o", threads=1)
    d = RunDir(tmp_path / "swap")
    d.path.mkdir()
    d.write_config(trained.read_config())
    d.weights_path.write_bytes(RunDir(other).weights_path.read_bytes())
    with pytest.raises(RunDirError, match="do not match the config") as e:
        load_model(d)
    assert "size mismatch" in str(e.value) and "\n" not in str(e.value)


def test_lock_is_exclusive_and_cleans_up(tmp_path):
    rd = RunDir(tmp_path / "new")
    with rd.lock():
        assert rd.path.is_dir()
        assert (rd.path / ".lock.pid").read_text().strip() == str(os.getpid())
        with RunDir(rd.path).lock():  # re-entrant within the process (a sweep calling train)
            pass
        assert (rd.path / ".lock.pid").is_file()
    assert not rd.path.exists()  # created by the lock and left empty: removed again
    with pytest.raises(OutputError, match="does not exist"):
        with RunDir(tmp_path / "no" / "such").lock():
            pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        with RunDir(tmp_path / "file").lock():
            pass


def test_lock_between_two_processes(tmp_path):
    rd = RunDir(tmp_path / "run")
    script = textwrap.dedent(f"""
        import sys, time
        from varstruct.runs.layout import RunDir
        with RunDir({str(rd.path)!r}).lock():
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         cwd=REPO, env=env)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirLocked, match=f"in use by process {p.pid}"):
            with rd.lock():
                pass
    finally:
        p.communicate("\n", timeout=30)
    assert p.returncode == 0
    with rd.lock():  # released by the other process
        pass


def test_lock_released_when_holder_is_killed(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    script = f"from varstruct.runs.layout import RunDir\nwith RunDir({str(rd.path)!r}).lock():\n" \
             f"    print('locked', flush=True)\n    import time; time.sleep(60)\n"
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.stdout.readline().strip() == "locked"
    p.kill()
    p.wait(30)
    t0 = time.monotonic()
    with rd.lock():  # the kernel dropped the dead holder's lock
        pass
    assert time.monotonic() - t0 < 5


def test_sweep_pattern_status_then_train_under_one_lock(tmp_path):
    """A sweep locks a fresh dir, records its status, trains (re-entering the lock), records
    the outcome; --overwrite keeps the sweep's status.json."""
    rd = RunDir(tmp_path / "run")
    with rd.lock():
        rd.write_status("running")
        varstruct.train(TOY, out=rd.path, threads=1)
        rd.write_status("done")
    assert rd.is_trained and rd.read_status()["state"] == "done"
    assert rd.contents() == {"config.json", "model.safetensors", "train_log.csv"}
    varstruct.train({**TOY, "seed": 1}, out=rd.path, overwrite=True, threads=1)
    assert rd.read_status()["state"] == "done" and rd.read_config()["seed"] == 1
