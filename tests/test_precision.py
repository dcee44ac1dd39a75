"""Training precision (fp32 | bf16 autocast | auto), optimisers owned by the trainer, and
the process state training leaves behind."""
import json

import numpy as np

import pytest
import torch
from safetensors.torch import load_file

import varstruct
from varstruct.cli.app import main
from varstruct.models import ConfigError, make_objective
from varstruct.models.nets import VAE
from varstruct.training import config as tconfig
from varstruct.training import precision as P
from varstruct.training.optim import Optimisers

TOY = {"dataset": "toy_linear", "method": "beta_vae", "hparams": {"beta": 1.0}, "arch": "mlp", "hidden": [32],
       "latent_dim": 4, "recon": "gaussian", "steps": 12, "batch_size": 16, "lr": 1e-3, "log_every": 4,
       "checkpoint_every": 5}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_resolve_precision(monkeypatch):
    assert P.resolve_precision("fp32") == "fp32" and P.resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: True)
    assert P.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: False)
    assert P.resolve_precision("auto") == "fp32"
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp64, auto"):
        P.resolve_precision("fp16")


def test_bf16_runs_the_networks_in_bf16_and_every_loss_in_fp32():
    torch.manual_seed(0)
    model = VAE((64, 64, 1), 3, "conv")
    seen = []
    model.decoder.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    net = P.wrap(model, "bf16")
    obj = make_objective("factor_vae", {"gamma": 2.0}, 3)
    obj.amp = P.autocast("bf16")
    losses = obj.compute(net, torch.rand(4, 1, 64, 64), 0)
    assert seen == [torch.bfloat16]  # the decoder ran in bf16 ...
    assert all(v.dtype == torch.float32 for v in losses.terms.values())  # ... the losses are fp32
    assert losses.aux["disc"].dtype == torch.float32
    opts = Optimisers(model, obj, 1e-3)
    opts.step(losses)
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    assert all(v.dtype == torch.float32 for st in opts.main.state.values() for k, v in st.items() if k != "step")
    assert P.wrap(model, "fp32") is model


def test_fused_adam_matches_the_reference_adam_on_channels_last_weights():
    x = torch.rand(4, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    out = {}
    for impl in ("fused", "single"):
        torch.manual_seed(0)
        model = VAE((64, 64, 1), 3, "conv").to(memory_format=torch.channels_last)
        obj = make_objective("beta_vae", {}, 3)
        opts = Optimisers(model, obj, 1e-3, impl=impl)
        for t in range(3):
            torch.manual_seed(t)
            opts.step(obj.compute(model, x, t))
        out[impl] = [p.detach().clone() for p in model.parameters()]
    # (rounding differs in the last bits; a layout mix-up gives errors ~lr·steps)
    assert all(torch.allclose(a, b, rtol=0, atol=2e-5) for a, b in zip(out["fused"], out["single"]))


def _weights(run):
    return load_file(str(run / "model.safetensors"))


def test_bf16_training_is_deterministic_resumable_and_saved_in_fp32(tmp_path):
    cfg = {**TOY, "precision": "bf16"}
    a = varstruct.train(cfg, out=tmp_path / "a")
    b = varstruct.train(cfg, out=tmp_path / "b")
    f = varstruct.train({**TOY, "precision": "fp32"}, out=tmp_path / "f")
    assert json.loads((a / "config.json").read_text())["precision"] == "bf16"
    assert json.loads((f / "config.json").read_text())["precision"] == "fp32"
    wa, wb, wf = _weights(a), _weights(b), _weights(f)
    assert all(v.dtype == torch.float32 for v in wa.values())
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # same seed, same precision: bit-identical
    assert not all(torch.equal(wa[k], wf[k]) for k in wa)  # bf16 is not fp32
    assert max(float((wa[k] - wf[k]).abs().max()) for k in wa) < 0.05  # ... but close to it
    part = varstruct.train(cfg, out=tmp_path / "part", stop_after=7)
    with pytest.raises(ConfigError, match="differs in precision"):
        varstruct.train({**TOY, "precision": "fp32"}, out=part, resume=True)
    varstruct.train(cfg, out=part, resume=True)
    wp = _weights(part)
    assert all(torch.equal(wa[k], wp[k]) for k in wa)


def test_auto_records_what_it_resolved_to(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: False)
    run = varstruct.train({**TOY, "steps": 2, "precision": "auto"}, out=tmp_path / "r")
    assert json.loads((run / "config.json").read_text())["precision"] == "fp32"
    with pytest.raises(ConfigError, match="precision"):
        varstruct.train({**TOY, "precision": "half"}, out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_a_config_from_before_the_precision_field_resumes_as_fp32():
    old = {"seed": 0, "lr": 1e-3}
    assert tconfig.differences(old, {**old, "precision": "fp32"}) == []
    assert tconfig.differences(old, {**old, "precision": "bf16"}) == ["precision"]


def test_training_restores_threads_determinism_and_rng_even_on_error(tmp_path):
    n = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=False)
    try:
        torch.manual_seed(5)
        rng = torch.get_rng_state()
        varstruct.train({**TOY, "steps": 2}, out=tmp_path / "r", threads=n + 1)
        assert torch.get_num_threads() == n and torch.equal(torch.get_rng_state(), rng)
        assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    from varstruct.training import loop

    def boom(*a, **k):
        assert torch.are_deterministic_algorithms_enabled()  # inside training only
        raise KeyboardInterrupt

    orig = loop.make_batch
    loop.make_batch = boom
    try:
        with pytest.raises(KeyboardInterrupt):
            varstruct.train({**TOY, "steps": 2}, out=tmp_path / "s", threads=n + 1, prefetch=False)
    finally:
        loop.make_batch = orig
    assert torch.get_num_threads() == n and not torch.are_deterministic_algorithms_enabled()


def test_cli_precision_option(tmp_path, capsys):
    argv = ["train", "toy_linear", "--method", "beta_vae", "--recon", "gaussian", "--steps", "2",
            "--threads", "1"]
    assert main(argv + ["--precision", "bf16", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["precision"] == "bf16"
    capsys.readouterr()
    assert main(argv + ["--precision", "fp8", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "precision" in err and err.count("\n") == 1 and not (tmp_path / "s").exists()


def test_bf16_conv_network_is_deterministic(tmp_path):
    cfg = {**TOY, "dataset": "dsprites", "arch": "conv", "recon": "bernoulli", "batch_size": 8, "steps": 3,
           "precision": "bf16"}
    a, b = varstruct.train(cfg, out=tmp_path / "a"), varstruct.train(cfg, out=tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_resuming_with_auto_takes_the_runs_precision(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: True)  # auto would pick bf16 here ...
    full = varstruct.train({**TOY, "precision": "fp32"}, out=tmp_path / "full")
    part = varstruct.train({**TOY, "precision": "fp32"}, out=tmp_path / "part", stop_after=7)
    varstruct.train({**TOY, "precision": "auto"}, out=part, resume=True)  # ... but the run is fp32
    assert json.loads((part / "config.json").read_text())["precision"] == "fp32"
    assert all(torch.equal(a, b) for a, b in zip(_weights(full).values(), _weights(part).values()))
    with pytest.raises(ConfigError, match="differs in precision"):
        varstruct.train({**TOY, "precision": "bf16"}, out=part, resume=True)


def test_fp64_trains_resumes_loads_and_scores_in_float64(tmp_path):
    cfg = {**TOY, "precision": "fp64", "steps": 6, "checkpoint_every": 3}
    a = varstruct.train(cfg, out=tmp_path / "a")
    b = varstruct.train(cfg, out=tmp_path / "b", stop_after=3)
    varstruct.train(cfg, out=tmp_path / "b", resume=True)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert json.loads((a / "config.json").read_text())["precision"] == "fp64"
    model = varstruct.load_model(a)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    # the same initial weights, in float64: the first step's loss agrees to float32 rounding (an
    # autoencoder: a VAE's ε would differ, since torch draws float64 normals from its own stream)
    one = {**TOY, "method": "ae", "hparams": {}, "steps": 1, "log_every": 1}
    rows = [np.loadtxt(varstruct.train({**one, "precision": p}, out=tmp_path / p) / "train_log.csv", delimiter=",",
                       skiprows=1)[1:-1] for p in ("fp32", "fp64")]
    np.testing.assert_allclose(rows[0], rows[1], rtol=1e-5, atol=1e-6)
    ds = varstruct.datasets.get(TOY["dataset"], **TOY.get("dataset_params", {}))
    scores = varstruct.evaluate(model, ds, metrics=["mig", "active_mig"], n_train=200, n_test=50)
    assert np.isfinite(float(scores["mig"]))
    measures = varstruct.measure_model(model, ds, n_anchors=5)
    assert np.isfinite(measures["jacobian_response"].values).all()
    with pytest.raises(ValueError, match="precision"):
        varstruct.train({**cfg, "precision": "fp32", "steps": 9}, out=tmp_path / "a", resume=True)
