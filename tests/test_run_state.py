"""RunDir.progress(): one RunState judged from the files; a failed attempt never downgrades a run."""
import shutil

import pytest

import varstruct
from varstruct.runs.layout import RunDir, RunState, log_diverged

TOY = {"dataset": "toy_linear", "method": "beta_vae", "hparams": {"beta": 1.0}, "arch": "mlp", "hidden": [16],
       "latent_dim": 3, "recon": "gaussian", "steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return RunDir(varstruct.train(TOY, out=tmp_path_factory.mktemp("rs") / "run", threads=1))


def _copy(trained, dst) -> RunDir:
    shutil.copytree(trained.path, dst)
    return RunDir(dst)


def test_log_diverged(tmp_path):
    p = tmp_path / "train_log.csv"
    assert not log_diverged(p)  # missing
    p.write_text("step,loss,recon,kl,seconds\n")
    assert not log_diverged(p)  # no rows
    p.write_text("step,loss,recon,kl,seconds\n10,1.5,1.0,0.5,0.1\n20,2.5,2.0,0.5,0.2\n")
    assert not log_diverged(p)
    p.write_text("step,loss,recon,kl,seconds\n10,nan,1.0,0.5,0.1\n20,2.5,2.0,0.5,0.2\n")
    assert not log_diverged(p)  # only the last row counts
    for bad in ("nan", "inf", "-inf", "NaN"):
        p.write_text(f"step,loss,recon,kl,seconds\n10,1.5,1.0,0.5,0.1\n20,2.5,{bad},0.5,0.2\n")
        assert log_diverged(p), bad
    p.write_text("step,loss,recon,kl,seconds\n10,1.5,1.0,0.5,nan\n")
    assert not log_diverged(p)  # seconds is not a loss term


def test_progress_states(tmp_path, trained):
    assert RunDir(tmp_path / "nope").progress() is RunState.MISSING
    (tmp_path / "e").mkdir()
    assert RunDir(tmp_path / "e").progress() is RunState.EMPTY
    (tmp_path / "f").write_text("x")
    assert RunDir(tmp_path / "f").progress() is RunState.BROKEN
    assert trained.progress() is RunState.TRAINED and trained.progress().is_trained

    d = _copy(trained, tmp_path / "d")
    d.scores_path.write_bytes(b"x")
    assert d.progress() is RunState.SCORED  # presence only: the netCDF is not read
    d.measures_path.write_bytes(b"x")
    assert d.progress() is RunState.MEASURED
    d.scores_path.unlink()
    assert d.progress() is RunState.TRAINED  # measured needs scores too

    i = _copy(trained, tmp_path / "i")
    i.weights_path.unlink()
    assert i.progress() is RunState.INTERRUPTED
    log = i.log_path.read_text().splitlines()
    cols = log[0].split(",")
    row = ["nan" if c == "loss" else v for c, v in zip(cols, log[-1].split(","))]
    i.log_path.write_text("\n".join(log + [",".join(row)]) + "\n")
    assert i.progress() is RunState.DIVERGED
    assert str(RunState.DIVERGED) == "diverged" and RunState("diverged") is RunState.DIVERGED

    b = _copy(trained, tmp_path / "b")
    b.config_path.write_text("{")
    assert b.progress() is RunState.BROKEN
    b = _copy(trained, tmp_path / "w")
    b.weights_path.write_bytes(trained.weights_path.read_bytes()[:100])
    assert b.progress() is RunState.BROKEN
    b.config_path.unlink()
    assert b.progress() is RunState.BROKEN  # weights without a config


def test_hash_mismatch_is_broken(tmp_path, trained):
    from varstruct.runs.weights import write_sha256

    d = _copy(trained, tmp_path / "h")
    write_sha256(d.weights_path)
    assert d.progress() is RunState.TRAINED
    data = bytearray(d.weights_path.read_bytes())
    data[-1] ^= 1  # one weights byte flipped: the header still parses
    d.weights_path.write_bytes(bytes(data))
    assert d.state == "trained" and d.progress() is RunState.BROKEN
    # a manifest row above the dir records the hash as well
    m = _copy(trained, tmp_path / "zoo" / "run")
    (tmp_path / "zoo" / "manifest.csv").write_text(f"path,weights_sha256\nrun,{'0' * 64}\n")
    assert m.progress() is RunState.BROKEN


def test_failed_attempt_never_downgrades(tmp_path, trained):
    d = _copy(trained, tmp_path / "d")
    d.write_status("failed", "some later attempt failed")
    assert d.progress() is RunState.TRAINED  # status.json cannot undo the weights
    d.weights_path.unlink()
    assert d.progress() is RunState.FAILED and d.failure() == "some later attempt failed"
    e = RunDir(tmp_path / "e")
    e.path.mkdir()
    e.write_status("failed", "bad input")
    assert e.progress() is RunState.FAILED
    e.write_status("done")
    assert e.progress() is RunState.EMPTY


def test_job_never_marks_a_trained_run_failed(tmp_path, trained):
    from varstruct.study.job import _record_failure

    d = _copy(trained, tmp_path / "d")
    _record_failure(d, "boom")
    assert not d.status_path.exists() and d.progress() is RunState.TRAINED
    e = RunDir(tmp_path / "e")
    _record_failure(e, "boom")
    assert e.progress() is RunState.FAILED


def test_progress_imports_no_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from varstruct.runs.layout import RunDir; "
            f"RunDir({str(tmp_path)!r}).progress(); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr
