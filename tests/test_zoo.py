"""The pretrained-zoo packing: half-precision weights load as float32, the manifest lists every run
with its sha256, and loading refuses weights whose sha256 differs from the recorded one."""
import csv
import shutil

import numpy as np
import pytest
import torch

import varstruct
from varstruct.errors import RunDirError
from varstruct.runs.weights import file_sha256, read_weights, write_sha256
from varstruct.runs.layout import RunDir
from varstruct.study.manifest import SCORES, main, pack_half, weights_dtype

TOY = {"dataset": "toy_linear", "method": "beta_vae", "hparams": {"beta": 1.0}, "arch": "mlp", "hidden": [16],
       "latent_dim": 3, "recon": "gaussian", "steps": 5, "batch_size": 8, "lr": 1e-3, "log_every": 5,
       "checkpoint_every": 5, "precision": "fp32"}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """root/g/run{0,1}: two trained runs, run0 evaluated."""
    root = tmp_path_factory.mktemp("zoo")
    (root / "g").mkdir()
    for s in (0, 1):
        varstruct.train({**TOY, "seed": s}, out=root / "g" / f"run{s}", threads=1)
    model = varstruct.load_model(root / "g" / "run0")
    ds = varstruct.datasets.get("toy_linear")
    RunDir(root / "g" / "run0").write_scores(varstruct.evaluate(model, ds, metrics=["mig", "sap"], n_train=200,
                                                                n_test=100, seed=0))
    return root


def _copy(zoo, tmp_path):
    dst = tmp_path / "zoo"
    shutil.copytree(zoo, dst)
    return dst


def test_half_weights_load_as_float32_with_half_rounding(zoo, tmp_path):
    root = _copy(zoo, tmp_path)
    w = root / "g" / "run0" / "model.safetensors"
    full = read_weights(w)
    x = torch.rand(4, 1, *RunDir(w.parent).read_config()["image_shape"][:2])
    before = varstruct.load_model(w.parent).encode(x)[0]
    assert pack_half(w, "float16") == "float16" and weights_dtype(w) == "float16"
    assert w.stat().st_size < 0.6 * (zoo / "g" / "run0" / "model.safetensors").stat().st_size
    model = varstruct.load_model(w.parent)
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32
        if k in full:  # float16 keeps 11 significant bits: relative rounding error <= 2^-11
            np.testing.assert_allclose(v.numpy(), full[k].numpy(), rtol=2 ** -11, atol=6e-8)
    torch.testing.assert_close(model.encode(x)[0], before, rtol=1e-2, atol=1e-3)
    assert pack_half(w, "float16") == "float16"  # idempotent
    b = root / "g" / "run1" / "model.safetensors"
    assert pack_half(b, "bfloat16") == "bfloat16" and varstruct.load_model(b.parent) is not None


def test_half_refuses_overflow(tmp_path):
    from varstruct.runs.weights import write_weights

    p = write_weights(tmp_path / "w.safetensors", {"a": torch.tensor([1.0, 1e6])})
    assert pack_half(p, "float16") == "float32" and weights_dtype(p) == "float32"


def test_manifest_lists_every_run_and_loading_checks_the_sha256(zoo, tmp_path, capsys):
    root = _copy(zoo, tmp_path)
    assert main([str(root), "--half", "float16"]) == 0
    with open(root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == ["g/run0", "g/run1"]
    r0 = rows[0]
    assert r0["dataset"] == "toy_linear" and r0["seed"] == "0" and r0["steps"] == "5" and r0["group"] == "g"
    assert r0["weights_dtype"] == "float16" and r0["weights_sha256"] == file_sha256(root / "g/run0/model.safetensors")
    assert set(SCORES) <= set(r0) and r0["mig"] != "" and r0["dci_disentanglement"] == ""  # not evaluated
    # the verdict of each run's own train_log.csv: a 5-step run logged once has none ("")
    from varstruct.training.convergence import run_convergence

    assert run_convergence(root / "g/run0")["converged"] is None
    assert r0["trained_steps"] == "5" and r0["converged"] == "" and r0["recon_improvement"] == ""
    # a log with a verdict: T = 5 (config), tail (3.75, 5] holds one row (step 4), so the ends are the
    # rows at steps 3 and 4: (4.0 − 3.9) / 4.0 = 2.5% >= 2%, not converged
    log = root / "g/run1/train_log.csv"
    log.write_text("step,loss,recon,kl,seconds\n1,10,10,0,0.1\n2,5,5,0,0.2\n3,4,4,0,0.3\n4,3.9,3.9,0,0.4\n")
    assert main([str(root)]) == 0
    with open(root / "manifest.csv", newline="") as f:
        r1 = list(csv.DictReader(f))[1]
    assert r1["converged"] == "False" and float(r1["recon_improvement"]) == pytest.approx(0.025)
    varstruct.load_model(root / "g" / "run0")  # hash matches
    # swap the weights of the two runs: same architecture, different bytes -> refused, one line
    w0, w1 = root / "g/run0/model.safetensors", root / "g/run1/model.safetensors"
    w0.write_bytes(w1.read_bytes())
    with pytest.raises(RunDirError, match="sha256 mismatch with .*manifest.csv") as e:
        varstruct.load_model(root / "g" / "run0")
    assert "\n" not in str(e.value)
    # a run dir copied out of the zoo loads without a check; a sidecar beside the weights is checked
    alone = tmp_path / "alone"
    shutil.copytree(root / "g" / "run1", alone)
    varstruct.load_model(alone)
    write_sha256(alone / "model.safetensors")
    varstruct.load_model(alone)
    (alone / "model.safetensors").write_bytes((root / "g/run0/model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(RunDirError, match="sha256 mismatch with .*model.safetensors.sha256"):
        varstruct.load_model(alone)


def test_manifest_cli_errors(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "no such models dir" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no run dirs" in capsys.readouterr().err


def test_a_run_released_without_weights_keeps_its_results_and_its_hash(zoo, tmp_path, capsys):
    """--without-weights: the scored run keeps config, log, scores and the weights' sha256; collect
    still reads it; loading refuses in one line; training its config again restores the same bytes."""
    from varstruct.runs.layout import RunState
    from varstruct.study.collect import collect

    root = _copy(zoo, tmp_path)
    before = collect(root, n_anchors=20, n_pca_anchors=4)
    digest = file_sha256(root / "g/run0/model.safetensors")
    assert main([str(root), "--without-weights", "g/run1"]) == 2  # run1 is not scored: refused
    assert "only a scored run" in capsys.readouterr().err
    assert main([str(root), "--without-weights", "g/run0"]) == 0
    run = root / "g/run0"
    assert not (run / "model.safetensors").exists() and RunDir(run).progress() is RunState.RELEASED
    with open(root / "manifest.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["path"] == "g/run0")
    assert row["weights_sha256"] == digest and row["weights_bytes"] == "" and row["state"] == "released"
    after = collect(root, n_anchors=20, n_pca_anchors=4)
    assert float(after["mig"].sel(model="g/run0")) == float(before["mig"].sel(model="g/run0"))
    with pytest.raises(RunDirError, match="results without weights") as e:
        varstruct.load_model(run)
    assert "\n" not in str(e.value)
    from varstruct.study.job import plan_dir

    cfg = RunDir(run).read_config()
    state, action, why = plan_dir(RunDir(run), {"train": {**TOY, "seed": 0}, "evaluate": {}, "measure": {}})
    assert state is RunState.RELEASED and action == "refuse" and "without weights" in why  # never retrained in place
    again = varstruct.train(cfg, out=tmp_path / "again", threads=1)
    assert file_sha256(again / "model.safetensors") == digest  # bit-identical: the recorded hash checks it


def test_runs_new_to_a_manifest_are_packed_and_released_in_one_call(zoo, tmp_path):
    """A group added under a root whose manifest.csv predates it: --half then --without-weights in
    one call releases its runs (the manifest is rewritten between the two, so the packed weights
    are verifiable when released)."""
    from varstruct.runs.layout import RunState

    root = _copy(zoo, tmp_path)
    assert main([str(root)]) == 0                      # a manifest.csv that lists g/ only
    shutil.copytree(root / "g", root / "h")            # a new group, unlisted
    assert main([str(root), "--half", "float16", "--without-weights", "h/run0"]) == 0
    assert RunDir(root / "h/run0").progress() is RunState.RELEASED
    assert RunDir(root / "h/run1").progress() is RunState.TRAINED and weights_dtype(root / "h/run1/model.safetensors") == "float16"
    shutil.copytree(root / "g", root / "k")            # the state column reads the files, not the old manifest's hashes
    assert main([str(root)]) == 0
    with open(root / "manifest.csv", newline="") as f:
        states = {r["path"]: r["state"] for r in csv.DictReader(f)}
    assert states["k/run0"] == states["g/run0"] == "scored" and states["k/run1"] == "trained"


def test_the_committed_zoo_fits_its_budget_and_its_manifest_lists_every_run():
    """pretrained/ stays within 80 MB (10^6 bytes; file sizes, as a checkout holds them) and its
    manifest.csv has one row per run dir, with each row's state what the run's files say."""
    from pathlib import Path

    from varstruct.study.collect import find_runs

    root = Path(__file__).resolve().parents[1] / "pretrained"
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total <= 80e6, f"pretrained/ holds {total / 1e6:.1f} MB"
    with open(root / "manifest.csv", newline="") as f:
        rows = {r["path"]: r["state"] for r in csv.DictReader(f)}
    runs = {p.relative_to(root).as_posix(): p for p in find_runs(root)}
    assert set(rows) == set(runs)
    assert all(rows[k] == RunDir(p).progress().value for k, p in runs.items())


def test_weights_files_are_byte_identical_across_processes(tmp_path):
    """safetensors writes header metadata in a hash map's order, which differs between processes;
    write_weights sorts it, so the same weights give the same bytes (and sha256) every time."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from safetensors import safe_open

    code = ("import sys, torch\nfrom varstruct.runs.weights import write_weights\n"
            "write_weights(sys.argv[1], {'w': torch.arange(6.0).reshape(2, 3), 'b': torch.ones(3, dtype=torch.float16)},"
            " metadata={'stored_dtype': 'float16', 'load_dtype': 'float32', 'format': 'pt', 'z': '1', 'a': '2'})\n")
    root = Path(__file__).resolve().parents[1]
    outs = []
    for i in range(4):
        out = tmp_path / f"w{i}.safetensors"
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, cwd=root,
                       env={**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": str(i)})
        outs.append(out.read_bytes())
    assert len(set(outs)) == 1
    header = outs[0][8:8 + int.from_bytes(outs[0][:8], "little")].decode()
    assert header.index('"a"') < header.index('"format"') < header.index('"load_dtype"') < header.index('"z"')
    with safe_open(str(out), "pt") as f:
        assert f.metadata() == {"a": "2", "format": "pt", "load_dtype": "float32", "stored_dtype": "float16", "z": "1"}
        assert torch.equal(f.get_tensor("w"), torch.arange(6.0).reshape(2, 3))
