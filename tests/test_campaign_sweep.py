"""The sweep rows of the hostile-input campaign (issue 19): each ends as one line with exit 2, or
as correct behaviour. Named by row."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from varstruct.errors import ConfigError
from varstruct.study.spec import MAX_RUNS, read_spec, runs_from_dict

ROOT = Path(__file__).resolve().parents[1]

TINY = """
seeds = [0, 1]
steps = {steps}
[train]
batch_size = 16
latent_dim = 2
hidden = [[16]]
log_every = 5
checkpoint_every = 5
[[datasets]]
name = "toy_blobs"
[[methods]]
name = "beta_vae"
hparams = {{ beta = 4 }}
[evaluate]
metrics = ["mig"]
n_train = 100
n_test = 50
[measure]
n_anchors = 4
n_variance = 100
n_decoder = 20
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "80"
    return env


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "varstruct", *map(str, args)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _one_line_error(r, *words):
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for w in words:
        assert w in r.stderr, r.stderr


def _spec(tmp_path, text=None, name="s.toml", **fmt) -> Path:
    p = tmp_path / name
    p.write_text(text if text is not None else TINY.format(steps=fmt.get("steps", 10)))
    return p


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny study (2 runs), swept in process."""
    from varstruct.study.sweep import sweep

    tmp = tmp_path_factory.mktemp("finished")
    spec = _spec(tmp)
    out = tmp / "models"
    res = sweep(read_spec(spec), out, workers=1)
    assert res.ok and len(res.done) == 2, res
    return spec, out


# -- row 2 ------------------------------------------------------------------------------------------

def test_row2_changed_steps_never_downgrades_a_finished_study(finished, tmp_path):
    import shutil

    from varstruct.runs.layout import RunDir, RunState

    spec, src = finished
    out = tmp_path / "models"
    shutil.copytree(src, out)
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = _cli("sweep", _spec(tmp_path, name="steps20.toml", steps=20), "--out", out, "--workers", "1")
    _one_line_error(r, "different run", "steps")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files  # nothing touched
    # even a stale "failed" record (what the old sweep wrote) does not downgrade a finished run
    rd = RunDir(next(out.rglob("config.json")).parent)
    rd.write_status("failed", "an older attempt")
    assert rd.progress() is RunState.MEASURED
    r = _cli("sweep", spec, "--out", out, "--workers", "1")
    assert r.returncode == 0 and "2 skipped" in r.stdout, r.stdout + r.stderr
    r = _cli("sweep", _spec(tmp_path, name="steps20.toml", steps=20), "--out", out, "--dry-run")
    _one_line_error(r, "different run")


# -- row 5 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, why", [("tcp://127.0.0.1", "no port"), ("tcp://", "no host"),
                                          ("tcp://[::1", "not a valid address"), ("tcp://h:70000", "valid"),
                                          ("http://h:1", "local, dask or tcp")])
def test_row5_bad_scheduler_address_creates_nothing(tmp_path, address, why):
    out = tmp_path / "out"
    r = _cli("sweep", _spec(tmp_path), "--out", out, "--scheduler", address)
    _one_line_error(r, "--scheduler", why)
    assert not out.exists()


# -- row 6 and the Ctrl-C summary -----------------------------------------------------------------

def test_row6_ctrl_c_while_workers_start(tmp_path):
    out = tmp_path / "out"
    for delay in (1.0, 2.5):
        proc = subprocess.Popen([sys.executable, "-m", "varstruct", "sweep", str(_spec(tmp_path)), "--out", str(out),
                                 "--workers", "2"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        if proc.returncode == 0:  # finished before the signal: nothing to check on this machine
            continue
        assert proc.returncode == 130, stdout + stderr
        assert "Traceback" not in stderr + stdout and "interrupted" in stderr + stdout, stderr


def test_ctrl_c_with_one_run_started_counts_runs(tmp_path):
    spec = _spec(tmp_path, TINY.format(steps=4000).replace("seeds = [0, 1]", "seeds = 4"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "varstruct", "sweep", str(spec), "--out", str(out),
                             "--workers", "1"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.rglob("checkpoint.safetensors")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "0 done" in stdout and "1 interrupted, 3 not started" in stdout, stdout
    assert "Traceback" not in stderr


def test_interrupt_between_jobs_counts_not_started(finished, tmp_path):
    from varstruct.study.sweep import execute, prepare

    spec, _ = finished
    p = prepare(read_spec(spec), tmp_path / "m", workers=1)

    def stop(n=1, text=None):
        raise KeyboardInterrupt

    res = execute(p, progress=stop)
    assert len(res.done) == 1 and res.not_started and not res.interrupted and not res.ok


# -- row 7 ------------------------------------------------------------------------------------------

BAD = [
    ('[[datasets]]\nname = "toy_blobs"', '[[datasets]]\nname = "nope"', "nope"),
    ('name = "beta_vae"', 'name = "vae_of_doom"', "vae_of_doom"),
    ('[[datasets]]\nname = "toy_blobs"', '[[datasets]]\nname = "toy_blobs"\nparams = { zzz = 1 }', "zzz"),
    ("hparams = { beta = 4 }", "hparams = { gamma = 4 }", "gamma"),
    ('[[datasets]]\nname = "toy_blobs"', '[[datasets]]\nname = "toy_blobs"\nparams = { r = -1 }', "r"),
    ("log_every = 5", "log_every = 5\nlr = nan", "lr"),
    ("hparams = { beta = 4 }", "hparams = { beta = inf }", "beta"),
    ("batch_size = 16", 'batch_size = "32"', "batch_size"),
    ("latent_dim = 2", "latent_dim = 0", "latent_dim"),
    ("n_anchors = 4", 'n_anchors = 4\nresponse = "bogus"', "bogus"),
    ("n_anchors = 4", "n_anchors = 0", "n_anchors"),
    ('metrics = ["mig"]', 'metrics = ["nope"]', "nope"),
    ("n_train = 100", "n_train = -3", "n_train"),
]


@pytest.mark.parametrize("old, new, word", BAD, ids=[b[2] + str(i) for i, b in enumerate(BAD)])
def test_row7_every_run_checked_before_any_work(tmp_path, old, new, word):
    """The library path both a sweep and --dry-run take (prepare), in process (fast)."""
    from varstruct.errors import VarstructError
    from varstruct.study.sweep import prepare

    assert old in TINY.format(steps=10)
    spec = _spec(tmp_path, TINY.format(steps=10).replace(old, new))
    out = tmp_path / "out"
    with pytest.raises(VarstructError) as e:
        prepare(read_spec(spec), out, workers=1)
    assert word in str(e.value) and "\n" not in str(e.value)
    assert not out.exists()


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("i", [3, 9])  # gamma for beta_vae, [measure] response = "bogus"
def test_row7_cli_refuses_before_any_work(tmp_path, dry, i):
    old, new, word = BAD[i]
    spec = _spec(tmp_path, TINY.format(steps=10).replace(old, new))
    out = tmp_path / "out"
    r = _cli("sweep", spec, "--out", out, "--workers", "1", *(["--dry-run"] if dry else []))
    _one_line_error(r, word)
    assert not out.exists()


def test_row7_out_a_device_or_file(tmp_path):
    r = _cli("sweep", _spec(tmp_path), "--out", "/dev/null", "--dry-run")
    _one_line_error(r, "--out", "not a folder")
    f = tmp_path / "file"
    f.write_text("x")
    _one_line_error(_cli("sweep", _spec(tmp_path), "--out", f), "not a folder")
    _one_line_error(_cli("sweep", _spec(tmp_path), "--out", tmp_path / "no" / "such"), "does not exist")


# -- row 8 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    {"seeds": 10 ** 6}, {"seeds": 10 ** 15},
    {"datasets": [{"name": "toy_blobs", "params": {"r": list(range(1, 1001)), "spread": list(range(1, 1001))}}]},
])
def test_row8_huge_grids_refused_at_once(spec):
    import resource

    full = {"steps": 5, "datasets": [{"name": "toy_blobs"}], "methods": [{"name": "ae"}], **spec}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="limit") as e:
        runs_from_dict(full)
    assert time.perf_counter() - t0 < 1.0 and f"{MAX_RUNS:,}" in str(e.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50_000  # kB


def test_row8_cli_refuses_a_huge_grid_fast(tmp_path):
    spec = _spec(tmp_path, TINY.format(steps=10).replace("seeds = [0, 1]", "seeds = 1000000000000000"))
    t0 = time.perf_counter()
    r = _cli("sweep", spec, "--out", tmp_path / "o", "--dry-run")
    _one_line_error(r, "limit")
    assert time.perf_counter() - t0 < 20  # a process start; the count itself is instant (above)


# -- row 9 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, word", [([4, "4"], "mixes"), ([4, 4.0], "twice"), ([True, 1], "mixes")])
def test_row9_one_value_twice_is_refused(values, word):
    with pytest.raises(ConfigError, match=word):
        runs_from_dict({"steps": 5, "datasets": [{"name": "toy_blobs"}],
                        "methods": [{"name": "beta_vae", "hparams": {"beta": values}}]})


def test_row9_identical_configs_are_refused(tmp_path):
    from varstruct.study.sweep import prepare

    runs = runs_from_dict({"steps": 5, "train": {"hidden": [[8]], "latent_dim": 2}, "datasets": [{"name": "toy_blobs"}],
                           "methods": [{"name": "beta_vae"}, {"name": "beta_vae", "hparams": {"beta": 4}}]})  # 4: the default
    with pytest.raises(ConfigError, match="identical config"):
        prepare(runs, tmp_path / "o", workers=1)
    assert not (tmp_path / "o").exists()


# -- row 10 -----------------------------------------------------------------------------------------

def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in found:
                found.add(c)
                todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kill_and_wait(proc, kids: set[int], seconds: float) -> list[int]:
    """``kill -9`` the sweep; the processes of ``kids`` still alive ``seconds`` later (killed
    then, so that a failing test leaves none behind)."""
    proc.kill()
    proc.wait()
    deadline = time.time() + seconds
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.05)
    left = [k for k in kids if _alive(k)]
    for k in left:
        os.kill(k, signal.SIGKILL)
    return left


def _sweep(tmp_path, scheduler: str):
    spec = _spec(tmp_path, TINY.format(steps=100000).replace("seeds = [0, 1]", "seeds = 4"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "varstruct", "sweep", str(spec), "--out", str(out),
                             "--workers", "2", "--scheduler", scheduler], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
@pytest.mark.parametrize("scheduler", ["local", "dask"])
def test_row10_workers_die_with_a_killed_sweep(tmp_path, scheduler):
    """Once two jobs train: fork server, workers and resource tracker all end within seconds of
    a ``kill -9`` of the sweep (dask: the LocalCluster's worker processes; its nannies live in
    the sweep process)."""
    if scheduler == "dask":
        pytest.importorskip("distributed")
    proc, out = _sweep(tmp_path, scheduler)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(out.rglob("config.json"))) < 2:
            time.sleep(0.05)
        kids = _children(proc.pid)
        assert len(kids) >= 3, kids  # fork server + 2 workers (+ the resource tracker)
        assert any("multiprocessing.forkserver import main" in _cmdline(k) for k in kids)
    finally:
        left = _kill_and_wait(proc, _children(proc.pid) if proc.poll() is None else set(), 10)
    assert not left, [_cmdline(k) for k in left]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_row10_a_fork_server_still_importing_dies_with_the_sweep(tmp_path):
    """Killed while its fork server imports torch and the trainer (seconds), the sweep takes the
    server with it at once (PR_SET_PDEATHSIG), not once the imports are done."""
    proc, out = _sweep(tmp_path, "local")
    server = None
    try:
        deadline = time.time() + 120
        while time.time() < deadline and server is None and proc.poll() is None:
            server = next((k for k in _children(proc.pid) if "multiprocessing.forkserver import main" in _cmdline(k)),
                          None)
            time.sleep(0.01)
        assert server is not None
    finally:
        left = _kill_and_wait(proc, {server} if server else set(), 2)
    assert not left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver, PR_SET_PDEATHSIG")
def test_row10_a_fork_server_started_from_a_thread_outlives_the_thread():
    """PR_SET_PDEATHSIG fires when the forking *thread* ends: a server started from another thread
    than the main one must not get it (it would die with that thread, and its workers with it)."""
    code = """
import os, threading, time
from multiprocessing import forkserver
from varstruct.study.executors import DIE_WITH_ENV, _start_forkserver, _worker_context
_worker_context()
t = threading.Thread(target=lambda: (_start_forkserver(), time.sleep(3)))  # ends after the server's start-up
t.start(); t.join()
pid = forkserver._forkserver._forkserver_pid
time.sleep(1)
print(os.waitpid(pid, os.WNOHANG)[0] == 0, DIE_WITH_ENV in os.environ)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False"], r.stdout + r.stderr


# -- row 11 and --threads ---------------------------------------------------------------------------

def test_row11_workers_capped_to_the_cores(tmp_path):
    from varstruct.resources import cpu_count

    r = _cli("sweep", _spec(tmp_path), "--out", tmp_path / "o", "--workers", "1000")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"warning: 1000 workers requested but this machine has {cpu_count()} cores" in r.stdout
    assert f"{min(cpu_count(), 2)} workers x 1 threads" in r.stdout and "1000 workers x" not in r.stdout


def test_threads_far_above_the_cores_warn(tmp_path):
    r = _cli("sweep", _spec(tmp_path), "--out", tmp_path / "o", "--threads", "1000", "--dry-run")
    assert r.returncode == 0 and "warning: 1000 threads per job" in r.stdout, r.stdout + r.stderr


# -- row 12 -----------------------------------------------------------------------------------------

def test_row12_a_non_dask_listener_answers_in_bounded_time(tmp_path):
    pytest.importorskip("distributed")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    held = []

    def accept():
        while True:
            try:
                held.append(srv.accept()[0])  # accept and never answer
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    out = tmp_path / "o"
    t0 = time.perf_counter()
    try:
        r = _cli("sweep", _spec(tmp_path), "--out", out, "--scheduler", f"tcp://127.0.0.1:{port}", timeout=120)
    finally:
        srv.close()
    _one_line_error(r, "dask scheduler")
    assert time.perf_counter() - t0 < 60
    assert not any(out.rglob("config.json")) if out.exists() else True


# -- smaller points ---------------------------------------------------------------------------------

def test_bad_train_key_answers_without_torch(tmp_path):
    spec = _spec(tmp_path, TINY.format(steps=10).replace("log_every = 5", "log_evry = 5"))
    code = ("import sys, time; t = time.perf_counter()\n"
            "from varstruct.study.spec import read_spec\n"
            f"try:\n    read_spec({str(spec)!r})\nexcept Exception as e:\n    print(e)\n"
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_env())
    msg, last = r.stdout.strip().splitlines()
    seconds, torch = last.split()
    assert "log_evry" in msg and torch == "False" and float(seconds) < 2.0, r.stdout + r.stderr  # ~0.3 s idle; 1.0 failed once on a loaded machine
    _one_line_error(_cli("sweep", spec, "--out", tmp_path / "o", "--dry-run"), "log_evry")


def test_data_file_is_taken_from_the_spec_folder(tmp_path):
    (tmp_path / "specs").mkdir()
    spec = _spec(tmp_path / "specs", TINY.format(steps=10).replace(
        'name = "toy_blobs"', 'name = "toy_blobs"\ndata_file = "data/x.npz"'))
    runs = read_spec(spec)
    assert runs[0].train["data_file"] == str((tmp_path / "specs" / "data" / "x.npz").resolve())
    spec.write_text(spec.read_text().replace("data/x.npz", "/abs/x.npz"))
    assert read_spec(spec)[0].train["data_file"] == "/abs/x.npz"


def test_dry_run_table_shows_whole_run_dirs(tmp_path):
    text = TINY.format(steps=10).replace('name = "toy_blobs"', 'name = "toy_blobs"\n'
                                         'params = { amplitude = 0.0123456, r = [1.2345678, 2.5] }')
    out = tmp_path / "a_rather_long_models_folder_name"
    r = _cli("sweep", _spec(tmp_path, text), "--out", out, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    for rel in (x.rel for x in read_spec(tmp_path / "s.toml")):
        assert rel in r.stdout, (rel, r.stdout)
    assert "missing" in r.stdout and not out.exists()
