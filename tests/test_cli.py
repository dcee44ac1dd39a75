"""The CLI under hostile input, exhausted resources and concurrent runs (issue 12's table, row by
row): one line on stderr, exit 2 (130 for an interrupted run), nothing written."""
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import varstruct
import varstruct.errors
import varstruct.io
from varstruct import resources
from varstruct.cli.app import main
from varstruct.runs.layout import RunDir

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TOY = {"dataset": "toy_linear", "method": "beta_vae", "hparams": {"beta": 1.0}, "arch": "mlp", "hidden": [16],
       "latent_dim": 3, "recon": "gaussian", "steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 2}
TRAIN = ["train", "toy_linear", "-m", "beta_vae", "--recon", "gaussian", "-l", "3", "-b", "8", "-n", "4",
         "--threads", "1"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return varstruct.train(TOY, out=tmp_path_factory.mktemp("cli") / "run", threads=1)


@pytest.fixture
def fake_memory(monkeypatch):
    """Pretend the machine has 1 GB available."""
    monkeypatch.setattr(resources, "available_memory", lambda: 10 ** 9)


def one_line_error(capsys, args, *, match=None, code=2):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]  # progress bars (if any) come first
    assert lines and lines[-1].startswith("error:") and sum(ln.startswith("error:") for ln in lines) == 1, err
    assert "Traceback" not in err and "\n" not in lines[-1]
    if match:
        assert match in err, err
    return err


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# ---- row 1: requests beyond the machine's memory --------------------------------------------
@pytest.mark.parametrize("args,option", [
    (["measure", "dataset", "toy_blobs", "--anchors", "10000000000000"], "--anchors"),
    (["measure", "dataset", "toy_blobs", "-a", "100000000"], "--anchors"),  # fits 23 GB, not 1 GB
    (TRAIN + ["--batch-size", "100000000"], "--batch-size"),
    (TRAIN + ["--latents", "100000000"], "--latents"),
    (TRAIN + ["-p", "side=1000"], "--latents"),  # 10^6-pixel images: an MLP of 0.5G weights
])
def test_requests_beyond_memory(tmp_path, capsys, monkeypatch, fake_memory, args, option):
    monkeypatch.chdir(tmp_path)
    if args[0] == "train":
        args = args + ["-o", "r"]
    one_line_error(capsys, args, match=f"{option}")
    assert files(tmp_path) == []


def test_model_dir_requests_beyond_memory(run, tmp_path, capsys, fake_memory):
    one_line_error(capsys, ["measure", "model", str(run), "-a", "100000000000"], match="--anchors: the request needs")
    one_line_error(capsys, ["evaluate", str(run), "--train-points", "100000000000"],
                   match="--train-points/--test-points")
    assert not RunDir(run).has_measures and not RunDir(run).has_scores


@pytest.mark.parametrize("change", [{"latent_dim": 10 ** 9}, {"hidden": [10 ** 7, 10 ** 7]}])
def test_config_with_huge_sizes(run, tmp_path, capsys, change):
    d = RunDir(tmp_path / "big")
    d.path.mkdir()
    d.write_config({**RunDir(run).read_config(), **change})
    d.weights_path.write_bytes(RunDir(run).weights_path.read_bytes())
    for cmd in (["evaluate", str(d.path), "-m", "mig"], ["measure", "model", str(d.path)]):
        one_line_error(capsys, cmd, match="config.json (latent_dim, hidden): the request needs about")
    assert not d.has_scores and not d.has_measures


def test_dataset_that_does_not_fit(tmp_path, capsys, monkeypatch):
    from varstruct import data

    def get(*a, **k):
        raise MemoryError()
    monkeypatch.setattr(data, "get", get)
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["measure", "dataset", "toy_linear", "-p", "side=100000"], match="does not fit in memory")
    assert files(tmp_path) == []


def test_memory_estimate_scales_with_the_request():
    small = resources.measure_dataset_bytes(1000, 5, 40, 4096, 200, 4)
    assert 1e6 < small < 1e9
    assert resources.measure_dataset_bytes(10 ** 6, 5, 40, 4096, 200, 4) > 100 * small
    cfg = {"image_shape": [64, 64, 1], "arch": "conv", "latent_dim": 10, "batch_size": 64}
    assert 300_000 < resources.model_params(cfg) < 2_000_000  # the Locatello et al. network: ~0.5M
    assert resources.train_bytes({**cfg, "batch_size": 128}) > resources.train_bytes(cfg)


def test_estimated_model_size_is_the_real_one():
    import torch  # noqa: F401

    from varstruct.models.nets import build_model

    for cfg in ({"image_shape": [64, 64, 1], "arch": "conv", "latent_dim": 10, "mask": None, "method": "beta_vae"},
                {"image_shape": [64, 64, 3], "arch": "conv", "latent_dim": 7, "mask": None, "method": "beta_vae"},
                {"image_shape": [16, 16, 1], "arch": "mlp", "hidden": [32, 16], "latent_dim": 4, "mask": None, "method": "beta_vae"}):
        n = sum(p.numel() for p in build_model(cfg).parameters())
        assert abs(resources.model_params(cfg) - n) <= 0.05 * n, (cfg, n)


# ---- row 2: seeds ----------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", ["measure", "train", "evaluate", "model"])
def test_seed_out_of_range(run, tmp_path, capsys, monkeypatch, cmd):
    monkeypatch.chdir(tmp_path)
    args = {"measure": ["measure", "dataset", "toy_blobs"], "train": TRAIN + ["-o", "r"],
            "evaluate": ["evaluate", str(run)], "model": ["measure", "model", str(run)]}[cmd]
    one_line_error(capsys, args + ["--seed", "99999999999999999999999"], match="--seed must be an integer in [0, ")
    one_line_error(capsys, args + ["-s", "-1"], match="--seed")
    assert files(tmp_path) == []


def test_largest_seed_is_accepted(tmp_path, capsys):
    out = tmp_path / "m.nc"
    assert main(["measure", "dataset", "toy_linear", "-a", "3", "-s", str(2 ** 63 - 1), "-o", str(out),
                 "--threads", "1"]) == 0
    assert int(varstruct.io.read_netcdf(out).attrs["seed"]) == 2 ** 63 - 1


# ---- row 3: non-finite parameters ------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1,inf"])
def test_non_finite_dataset_parameter(tmp_path, capsys, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-p", f"r={value}"], match="numbers must be finite")
    assert files(tmp_path) == []


def test_train_rejects_non_finite_numbers(tmp_path, capsys):
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "r"), "--beta", "inf"],
                   match="--beta must be a finite number >= 0")
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "r"), "--lr", "nan"], match="--lr")
    assert files(tmp_path) == []


# ---- row 4: unwritable, special and full targets ------------------------------------------------
def test_special_and_missing_targets(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-o", "/proc/version"], match="cannot write in /proc")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-o", "/dev/null", "--overwrite"],
                   match="not a regular file")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-o", "/proc/version", "--overwrite"],
                   match="cannot write in /proc")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-o", str(tmp_path / "afile" / "m.nc")],
                   match="afile is not a folder")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-o", str(tmp_path / "no" / "m.nc")],
                   match="does not exist")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-o", str(tmp_path)], match="is a folder")
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "afile")], match="not a folder")
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "afile" / "r")], match="is not a folder")
    assert files(tmp_path) == ["afile"]


def test_read_only_target(tmp_path, capsys, monkeypatch):
    """A read-only mount (root ignores permission bits, so the refusal is simulated at the probe)."""
    import tempfile

    def mkstemp(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-o", str(tmp_path / "m.nc")],
                   match="Read-only file system")
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "r")], match="Read-only file system")
    assert files(tmp_path) == []


def _full_disk(monkeypatch, module, name):
    def write(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(module, name, write)


def test_full_disk_measure_dataset(tmp_path, capsys, monkeypatch):
    _full_disk(monkeypatch, varstruct.io, "_write_file")
    one_line_error(capsys, ["measure", "dataset", "toy_linear", "-a", "3", "-o", str(tmp_path / "m.nc"),
                            "--threads", "1"], match="No space left on device")
    assert files(tmp_path) == []


def test_full_disk_train_leaves_nothing_and_rerun_works(tmp_path, capsys, monkeypatch):
    with monkeypatch.context() as m:
        _full_disk(m, varstruct.io, "_write_file")
        one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "r")], match="No space left on device")
    assert files(tmp_path) == []  # no config-only dir left behind
    assert main(TRAIN + ["-o", str(tmp_path / "r")]) == 0
    assert RunDir(tmp_path / "r").is_trained


def test_full_disk_evaluate(run, tmp_path, capsys, monkeypatch):
    _full_disk(monkeypatch, varstruct.io, "_write_file")
    one_line_error(capsys, ["evaluate", str(run), "-m", "mig", "--train-points", "50", "-o", str(tmp_path / "s.nc")],
                   match="No space left on device")
    assert files(tmp_path) == []


def test_killed_before_first_checkpoint_reruns(tmp_path, capsys):
    """A run killed hard before its first checkpoint leaves config.json only: a plain rerun of
    the same command starts it again."""
    assert main(TRAIN + ["-o", str(tmp_path / "r")]) == 0
    rd = RunDir(tmp_path / "r")
    for name in (rd.WEIGHTS, rd.LOG):
        (rd.path / name).unlink()
    assert rd.state == "interrupted"
    assert main(TRAIN + ["-o", str(tmp_path / "r")]) == 0 and rd.is_trained
    capsys.readouterr()


# ---- rows 5-8: points, options that do not apply, repeated keys, clipping ----------------------
def test_evaluate_test_points_must_be_positive(run, capsys):
    one_line_error(capsys, ["evaluate", str(run), "-m", "mig", "--test-points", "-5"], match="--test-points")
    assert not RunDir(run).has_scores


@pytest.mark.parametrize("extra,match", [
    (["--mask-l1", "-1"], "--mask-l1 applies only with --mask"),
    (["--mask-l1", "0.1"], "--mask-l1 applies only with --mask"),
    (["--recon-var", "0.1", "--recon", "bernoulli"], "--recon-var applies only with --recon gaussian"),
    (["--gamma", "3"], "--gamma is not a hyper-parameter of beta_vae"),
    (["--resume", "--overwrite"], "choose one of --resume and --overwrite"),
    (["--hparam", "beta=2", "--beta", "3"], "beta given twice"),
])
def test_options_that_do_not_apply(tmp_path, capsys, extra, match):
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "r")] + extra, match=match)
    assert files(tmp_path) == []


def test_repeated_param_keys(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-p", "r=2", "-p", "r=3"], match="-p r given twice")
    one_line_error(capsys, TRAIN + ["-o", "r", "-p", "side=8", "-p", "side=16"], match="given twice")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "-p", "r"], match="give KEY=VALUE")
    assert files(tmp_path) == []


def test_pca_anchors_beyond_anchors_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "--anchors", "5", "--pca-anchors", "1000"],
                   match="--pca-anchors 1000 exceeds --anchors 5")
    assert files(tmp_path) == []


def test_default_pca_anchors_follow_small_anchor_counts(tmp_path):
    assert main(["measure", "dataset", "toy_linear", "-a", "4", "-o", str(tmp_path / "m.nc"), "--threads", "1"]) == 0
    assert varstruct.io.read_netcdf(tmp_path / "m.nc").sizes["pca_anchor"] == 4


def test_comma_list_parameters(tmp_path):
    assert main(["measure", "dataset", "toy_linear", "-a", "3", "-p", "amplitudes=1,2", "-p", "sizes=4,5",
                 "-o", str(tmp_path / "m.nc"), "--threads", "1"]) == 0
    assert json.loads(varstruct.io.read_netcdf(tmp_path / "m.nc").attrs["dataset_params"])["sizes"] == [4, 5]


# ---- rows 9-10: one writer per run dir ---------------------------------------------------------
def _hold_lock(path: Path):
    script = textwrap.dedent(f"""
        import sys
        from varstruct.runs.layout import RunDir
        with RunDir({str(path)!r}).lock():
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         cwd=REPO, env=ENV)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_writer_is_refused_naming_the_holder(run, tmp_path, capsys):
    import shutil

    d = tmp_path / "busy"
    shutil.copytree(run, d)
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".lock"}
    holder = _hold_lock(d)
    try:
        for args in (TRAIN + ["-o", str(d), "--overwrite"], TRAIN + ["-o", str(d), "--resume"],
                     ["evaluate", str(d), "-m", "mig", "--train-points", "50"],
                     ["measure", "model", str(d), "-a", "3"]):
            one_line_error(capsys, args, match=f"{d} is in use by process {holder.pid}")
        # reading the dir and writing elsewhere needs no lock
        assert main(["evaluate", str(d), "-m", "mig", "--train-points", "50", "-o", str(tmp_path / "s.nc")]) == 0
    finally:
        holder.communicate("\n", timeout=60)
    after = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before  # nothing mixed in


# ---- rows 11-12: interruptions and --resume -------------------------------------------------------
def test_sigterm_in_training_checkpoints_and_resumes_bit_identically(tmp_path, monkeypatch):
    from varstruct.training import loop
    from varstruct.training.interrupt import TrainingInterrupted

    full = varstruct.train({**TOY, "steps": 8, "checkpoint_every": 100}, out=tmp_path / "full", threads=1)
    stream = loop.batch_stream

    def interrupted_stream(*a, **k):
        for i, item in enumerate(stream(*a, **k)):
            if i == 3:
                signal.raise_signal(signal.SIGTERM)  # arrives during step 4 (the handler only sets a flag)
            yield item
    monkeypatch.setattr(loop, "batch_stream", interrupted_stream)
    with pytest.raises(TrainingInterrupted) as e:
        varstruct.train({**TOY, "steps": 8, "checkpoint_every": 100}, out=tmp_path / "part", threads=1)
    assert e.value.step == 4
    assert str(e.value) == f"interrupted at step 4; `varstruct train --resume --out {tmp_path / 'part'}` finishes it"
    rd = RunDir(tmp_path / "part")
    assert rd.state == "interrupted" and rd.has_checkpoint
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    monkeypatch.setattr(loop, "batch_stream", stream)
    varstruct.train({**TOY, "steps": 8, "checkpoint_every": 100}, out=rd.path, resume=True, threads=1)
    assert rd.weights_path.read_bytes() == RunDir(full).weights_path.read_bytes()


def test_sigint_on_the_command_line(tmp_path):
    out = tmp_path / "r"
    p = subprocess.Popen([sys.executable, "-m", "varstruct", *TRAIN[:-4], "-n", "1000000", "--checkpoint-every",
                          "1000000", "-o", str(out), "--threads", "1"], cwd=REPO, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (out / "config.json").exists() and time.monotonic() - t0 < 120:
        time.sleep(0.1)
    time.sleep(1.0)  # a few steps
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted at step ") and \
        lines[0].endswith(f"; `varstruct train --resume --out {out}` finishes it"), err
    step = int(lines[0].split()[3].rstrip(";"))
    assert step >= 1 and RunDir(out).has_checkpoint and RunDir(out).state == "interrupted"
    from safetensors import safe_open

    with safe_open(str(RunDir(out).checkpoint_path), framework="pt") as f:
        assert int(f.get_tensor("meta.step")) == step


def test_resume_on_missing_or_empty_folder(tmp_path, capsys):
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "nope"), "--resume"], match="holds no run to resume")
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, TRAIN + ["-o", str(tmp_path / "empty"), "--resume"], match="no config.json")
    with pytest.raises(varstruct.errors.RunDirError, match="holds no run to resume"):
        varstruct.train(TOY, out=tmp_path / "nope", resume=True)
    assert files(tmp_path) == ["empty"]


# ---- row 13: one overwrite policy ----------------------------------------------------------------
def test_existing_outputs_need_overwrite(run, tmp_path, capsys):
    out = tmp_path / "m.nc"
    args = ["measure", "dataset", "toy_linear", "-a", "3", "-o", str(out), "--threads", "1"]
    assert main(args) == 0
    first = out.read_bytes()
    one_line_error(capsys, args, match="exists (use --overwrite to replace it)")
    assert out.read_bytes() == first
    assert main(args + ["-s", "1", "--overwrite"]) == 0 and out.read_bytes() != first
    ev = ["evaluate", str(run), "-m", "mig", "--train-points", "50", "-o", str(tmp_path / "s.nc")]
    assert main(ev) == 0
    one_line_error(capsys, ev, match="exists (use --overwrite")
    assert main(ev + ["--overwrite"]) == 0
    one_line_error(capsys, TRAIN + ["-o", str(run)], match="exists and is not empty (use --resume")


# ---- confusing messages of the issue ---------------------------------------------------------------
def test_messages_name_the_option(run, tmp_path, capsys):
    one_line_error(capsys, ["evaluate", str(run), "--seed", "-3"], match="--seed")
    one_line_error(capsys, ["measure", "model", str(run), "--seed", "-1"], match="--seed")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "--data-file", str(tmp_path)], match="is a folder")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "--data-file", str(tmp_path / "x.npz")],
                   match="no such file")
    one_line_error(capsys, ["measure", "dataset", "toy_blobs", "--threads", "0"], match="--threads")


def test_choices_are_listed_from_the_catalog():
    """The CLI's choices are the catalog's tables (not copies); the datasets the registry's."""
    from varstruct import catalog
    from varstruct.cli import common

    assert common.METRICS is catalog.METRICS and list(common.METHODS) == list(catalog.METHODS)
    for enum_, table in ((common.Arch, catalog.ARCHS), (common.Recon, catalog.RECONS),
                         (common.MaskMode, catalog.MASK_MODES), (common.Response, catalog.RESPONSES),
                         (common.Precision, catalog.PRECISIONS), (common.Method, catalog.METHODS)):
        assert [m.value for m in enum_] == list(table)
    assert [m.value for m in common.Dataset] == varstruct.data.names() + varstruct.data.file_only_names()


# ---- start-up: help and validation errors without torch -------------------------------------------
def test_help_and_validation_errors_do_not_import_torch():
    script = textwrap.dedent("""
        import sys, time
        t0 = time.perf_counter()
        from varstruct.cli.app import main
        assert main(["--help"]) == 0
        assert main(["train", "--help"]) == 0
        assert main(["measure", "dataset", "toy_blobs", "-p", "r=inf"]) == 2
        assert main(["train", "toy_linear", "-m", "ae", "-o", "x", "--beta", "1"]) == 2
        bad = [m for m in ("torch", "xarray", "pandas", "scipy", "sklearn") if m in sys.modules]
        assert not bad, bad
        print(f"{time.perf_counter() - t0:.3f}")
    """)
    p = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "[default: 0]" in p.stdout and "{ae|beta_vae" in p.stdout.replace("<", "{")  # defaults, choices


def test_help_lists_defaults_and_choices(capsys):
    assert main(["measure", "dataset", "--help"]) == 0
    out = capsys.readouterr().out
    assert "[default: DATASET_measures.nc in" in " ".join(out.split()) and "toy_blobs" in out
    assert main(["evaluate", "--help"]) == 0
    assert "[default: DIR/scores.nc]" in " ".join(capsys.readouterr().out.split())


def test_concurrent_trains_cannot_mix(tmp_path, capsys):
    """A second `train --overwrite` / `--resume` into the dir of a running `train` is refused;
    SIGTERM then stops the first with a checkpoint that `--resume` can finish."""
    out = tmp_path / "r"
    first = TRAIN[:-4] + ["-n", "1000000", "--checkpoint-every", "1000000", "-o", str(out), "--threads", "1"]
    p = subprocess.Popen([sys.executable, "-m", "varstruct", *first], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not (out / "config.json").exists() and time.monotonic() - t0 < 120:
            time.sleep(0.1)
        config = (out / "config.json").read_bytes()
        one_line_error(capsys, TRAIN + ["-s", "7", "-o", str(out), "--overwrite"], match=f"in use by process {p.pid}")
        one_line_error(capsys, first + ["--resume"], match=f"in use by process {p.pid}")
        assert (out / "config.json").read_bytes() == config
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "finishes it" in err, err
    assert RunDir(out).state == "interrupted" and RunDir(out).has_checkpoint


@pytest.mark.parametrize("exc,match", [
    (OSError(errno.ENOSPC, "No space left on device", "/some/file"), "error: /some/file: No space left on device"),
    (MemoryError(), "error: out of memory"),
    ("SIGINT", "error: interrupted"),
])
def test_safety_net_for_failures_in_the_work(tmp_path, capsys, monkeypatch, exc, match):
    from varstruct.cli import common

    def start(threads):
        if exc == "SIGINT":  # Ctrl-C outside training
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        raise exc
    monkeypatch.setattr(common, "start", start)
    code = 130 if exc == "SIGINT" else 2
    # Ctrl-C raises, as in a terminal, also where the runner was started with SIGINT ignored (a background job)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        one_line_error(capsys, ["measure", "dataset", "toy_linear", "-a", "3", "-o", str(tmp_path / "m.nc")],
                       match=match, code=code)
    finally:
        signal.signal(signal.SIGINT, old)
    assert files(tmp_path) == []


@pytest.fixture
def full_disk(tmp_path):
    """A real 256 kB tmpfs, filled up to its last 8 kB (where the machine lets us mount)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        with open(mnt / "filler", "wb") as f:
            f.write(b"\0" * (256 - 8) * 1024)
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_real_full_disk(full_disk, capsys):
    one_line_error(capsys, ["measure", "dataset", "toy_linear", "-a", "3", "-o", str(full_disk / "m.nc"),
                            "--threads", "1"], match="No space left on device")
    one_line_error(capsys, TRAIN + ["-o", str(full_disk / "r")], match="No space left on device")
    assert files(full_disk) == ["filler"]  # no temp file, no config-only dir


def test_more_threads_than_cores_is_warned(run, capsys, monkeypatch):
    """Campaign: `--threads 1000` on 2 cores ran 8x slower with no word; now one warning line."""
    from varstruct import resources as res

    monkeypatch.setattr(res, "cpu_count", lambda: 2)
    assert main(["evaluate", str(run), "--metrics", "mig", "--train-points", "50", "--test-points", "20",
                 "--threads", "3", "--out", str(run.parent / "s3.nc")]) == 0
    err = capsys.readouterr().err
    assert "warning: --threads 3 is more than the 2 CPU cores" in err
    assert main(["evaluate", str(run), "--metrics", "mig", "--train-points", "50", "--test-points", "20",
                 "--threads", "2", "--out", str(run.parent / "s2.nc")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_ctrl_c_while_the_cli_imports_is_one_line(monkeypatch, capsys):
    """Ctrl-C before the CLI's modules are loaded (seconds on a loaded machine): exit 130, one line."""
    import builtins
    import sys as _sys

    from varstruct.cli import entry

    real = builtins.__import__

    def interrupted(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "app" or name.endswith("cli.app"):
            raise KeyboardInterrupt
        return real(name, globals, locals, fromlist, level)

    monkeypatch.delitem(_sys.modules, "varstruct.cli.app", raising=False)
    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert entry.main(["--help"]) == 130
    err = capsys.readouterr().err
    assert err == "error: interrupted while starting\n"


def test_train_summary_says_where_an_unconverged_runs_trend_meets_the_criterion(tmp_path, capsys):
    """40 steps of a toy run still fall fast: the summary gives the verdict and the fitted trend's
    reach (varstruct.training.convergence.horizon on the log's last half)."""
    assert main(TRAIN + ["-n", "40", "--log-every", "2", "-o", str(tmp_path / "r")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "NOT converged" in out and "at its trend" in out and "recon ≈" in out, out
