"""--device cpu|cuda|auto (varstruct/devices.py): spelling, resolution, the CPU path unchanged, one
line where no GPU is; the GPU tests run only where torch sees a CUDA device."""
import json

import numpy as np
import pytest
import torch

import varstruct
from varstruct.cli.app import main
from varstruct.devices import check_device, resolve_device
from varstruct.errors import ConfigError
from varstruct.runs.weights import read_weights

TOY = {"dataset": "toy_linear", "method": "beta_vae", "seed": 3, "hidden": [16], "latent_dim": 3,
       "recon": "gaussian", "steps": 12, "batch_size": 8, "log_every": 2, "checkpoint_every": 4,
       "precision": "fp32"}
TRAIN = ["train", "toy_linear", "-m", "beta_vae", "--recon", "gaussian", "-l", "3", "-b", "8", "-n", "4",
         "--threads", "1"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("text,norm", [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"),
                                       (" CUDA:0 ", "cuda:0"), (None, "auto")])
def test_device_spellings(text, norm):
    assert check_device(text) == norm


@pytest.mark.parametrize("text", ["tpu", "cpu:1", "cuda:x", "", "cuda:", "mps", "auto:0"])
def test_bad_device_is_refused(text):
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda or cuda:N"):
        check_device(text)


@pytest.fixture
def gpus(monkeypatch):
    """Pretend torch sees ``n`` GPUs (current device 1) without touching any."""
    def set_(n):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    return set_


def test_resolution_without_a_gpu(gpus):
    gpus(0)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for text in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError, match=rf"^device {text}: no CUDA device here \(.*\); use device cpu or auto$"):
            resolve_device(text)


def test_resolution_with_gpus(gpus):
    import os

    gpus(2)
    assert resolve_device("auto") == torch.device("cuda", 1)  # the current device
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cpu") == torch.device("cpu")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # deterministic cuBLAS
    with pytest.raises(ConfigError, match=r"cuda:2: this machine has 2 CUDA devices \(cuda:0\.\.cuda:1\)"):
        resolve_device("cuda:2")


def test_cpu_device_trains_the_same_run_as_the_default(tmp_path):
    a = varstruct.train(TOY, out=tmp_path / "a", threads=1, device="cpu")
    b = varstruct.train(TOY, out=tmp_path / "b", threads=1)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert json.loads((a / "config.json").read_text()) == json.loads((b / "config.json").read_text())
    assert "device" not in json.loads((a / "config.json").read_text())  # not part of the run's identity


def test_load_model_device(tmp_path):
    run = varstruct.train(TOY, out=tmp_path / "r", threads=1)
    assert next(varstruct.load_model(run, device="cpu").parameters()).device.type == "cpu"
    with pytest.raises(ConfigError, match="device must be one of"):
        varstruct.load_model(run, device="gpu")


def _one_line(capsys, args, match):
    rc = main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len([ln for ln in lines if ln.startswith("error:")]) == 1 and "Traceback" not in err, err
    assert match in lines[-1], err


def _command(tmp_path, cmd):
    """(args of ``cmd`` writing under tmp_path, the trained run dir it reads)."""
    run = varstruct.train(TOY, out=tmp_path / "r", threads=1)
    spec = tmp_path / "s.toml"
    spec.write_text('seeds = 1\nsteps = 4\n[train]\nlatent_dim = 3\nbatch_size = 8\nhidden = [[16]]\n'
                    '[[datasets]]\nname = "toy_linear"\n[[methods]]\nname = "beta_vae"\n')
    args = {"train": TRAIN + ["--out", str(tmp_path / "o")], "evaluate": ["evaluate", str(run)],
            "measure": ["measure", "model", str(run)], "sweep": ["sweep", str(spec), "--out", str(tmp_path / "z")]}[cmd]
    return args, run


@pytest.mark.parametrize("cmd", ["train", "evaluate", "measure", "sweep"])
def test_bad_device_option_is_one_line(tmp_path, capsys, cmd):
    args, _ = _command(tmp_path, cmd)
    _one_line(capsys, args + ["--device", "tpu"], "--device must be one of auto, cpu, cuda or cuda:N, not 'tpu'")
    assert not (tmp_path / "o").exists() and not (tmp_path / "z").exists()


@no_cuda
@pytest.mark.parametrize("cmd", ["train", "evaluate", "measure", "sweep"])
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys, cmd):
    args, run = _command(tmp_path, cmd)
    _one_line(capsys, args + ["--device", "cuda"], "--device cuda: no CUDA device here" if cmd != "sweep"
              else "device cuda: no CUDA device here")
    assert not (tmp_path / "o").exists() and not (tmp_path / "z").exists()
    assert not (run / "scores.nc").exists()


# ---- on a GPU ---------------------------------------------------------------------------------
@cuda
@pytest.mark.parametrize("method", ["beta_vae", "factor_vae", "ada_gvae"])
def test_gpu_run_has_the_cpu_run_layout(tmp_path, method):
    cfg = {**TOY, "method": method}
    g = varstruct.train(cfg, out=tmp_path / "g", threads=1, device="cuda")
    c = varstruct.train(cfg, out=tmp_path / "c", threads=1, device="cpu")
    assert json.loads((g / "config.json").read_text()) == json.loads((c / "config.json").read_text())
    assert sorted(p.name for p in g.iterdir()) == sorted(p.name for p in c.iterdir())
    wg, wc = read_weights(g / "model.safetensors"), read_weights(c / "model.safetensors")
    assert wg.keys() == wc.keys()
    for k in wg:
        assert wg[k].dtype == torch.float32 and wg[k].device.type == "cpu" and wg[k].shape == wc[k].shape
        np.testing.assert_allclose(wg[k].numpy(), wc[k].numpy(), atol=5e-2)  # the same run, other arithmetic


@cuda
def test_gpu_runs_are_reproducible_and_resume_exactly(tmp_path):
    a = varstruct.train(TOY, out=tmp_path / "a", threads=1, device="cuda")
    b = varstruct.train(TOY, out=tmp_path / "b", threads=1, device="cuda")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    varstruct.train(TOY, out=tmp_path / "p", threads=1, device="cuda", stop_after=5)
    p = varstruct.train(TOY, out=tmp_path / "p", threads=1, device="cuda", resume=True)
    assert (p / "model.safetensors").read_bytes() == (a / "model.safetensors").read_bytes()
    # a CPU checkpoint finishes on the GPU (the device is not part of the run)
    varstruct.train(TOY, out=tmp_path / "x", threads=1, device="cpu", stop_after=5)
    x = varstruct.train(TOY, out=tmp_path / "x", threads=1, device="cuda", resume=True)
    assert varstruct.RunDir(x).state == "trained"


@cuda
def test_gpu_evaluate_and_measure_match_the_cpu(tmp_path):
    run = varstruct.train(TOY, out=tmp_path / "r", threads=1, device="cpu")
    ds = varstruct.datasets.get("toy_linear")
    g, c = varstruct.load_model(run, device="cuda"), varstruct.load_model(run, device="cpu")
    assert next(g.parameters()).is_cuda
    kw = dict(metrics=["mig", "dci"], n_train=500, n_test=200, seed=0)
    sg, sc = varstruct.evaluate(g, ds, **kw), varstruct.evaluate(c, ds, **kw)
    assert abs(float(sg["mig"]) - float(sc["mig"])) < 1e-3
    mg = varstruct.measure_model(g, ds, n_anchors=10, seed=0)
    mc = varstruct.measure_model(c, ds, n_anchors=10, seed=0)
    for v in ("latent_variance", "traversal_response", "jacobian_response"):  # the continuous measures
        np.testing.assert_allclose(mg[v].values, mc[v].values, rtol=1e-3, atol=1e-5, err_msg=v)
