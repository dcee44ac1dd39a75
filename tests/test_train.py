"""The training loop, model dirs, the `train` CLI: learning, determinism, resume, bad input, safety."""
import json
import pathlib
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import varstruct
from varstruct.cli.app import main
from varstruct.models import ConfigError, ModelDirError, load_dataset, load_model
from varstruct.errors import OutputError, VarstructError
from varstruct.runs.layout import RunDir
from varstruct.tensors import to_numpy, to_torch
from varstruct.training import loop

TOY = {"dataset": "toy_linear", "method": "beta_vae", "hparams": {"beta": 1.0}, "arch": "mlp", "hidden": [32],
       "latent_dim": 4, "recon": "gaussian", "steps": 30, "batch_size": 16, "lr": 1e-3, "log_every": 5,
       "checkpoint_every": 10}
CONTRACT = ("dataset", "dataset_params", "data_file", "method", "hparams", "seed", "steps", "batch_size", "arch",
            "latent_dim", "image_shape", "version")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _weights(run):
    return load_file(str(pathlib.Path(run) / "model.safetensors"))


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _log(run):
    lines = (pathlib.Path(run) / "train_log.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    return header, rows


def test_short_run_on_toy_linear_lowers_the_loss_and_reconstructs(tmp_path):
    cfg = {**TOY, "steps": 300, "batch_size": 64, "lr": 2e-3, "hidden": [64], "log_every": 20}
    run = varstruct.train(cfg, out=tmp_path / "run")
    header, rows = _log(run)
    assert header == ["step", "loss", "recon", "kl", "seconds"]
    assert rows[:, 0].tolist() == list(range(20, 301, 20))
    loss = rows[:, 1]
    assert loss[-1] < 0.6 * loss[0]
    model = load_model(run)
    assert not model.training and model.config["method"] == "beta_vae"
    ds = load_dataset(run)
    _, x = ds.sample(400, 7)
    with torch.no_grad():
        rec = to_numpy(torch.sigmoid(model(to_torch(x))))
    mse = float(((rec - x) ** 2).mean())
    assert mse < 0.5 * float(x.var(0).mean())  # explains most of the data's variance


def test_model_dir_follows_the_contract(tmp_path):
    run = varstruct.train({**TOY, "method": "ae", "hparams": {}, "steps": 5}, out=tmp_path / "ae")
    cfg = json.loads((run / "config.json").read_text())
    assert all(k in cfg for k in CONTRACT)
    assert cfg["image_shape"] == [16, 16, 1] and cfg["arch"] == "mlp" and cfg["version"] == varstruct.__version__
    assert sorted(p.name for p in run.iterdir() if p.name != RunDir.LOCK) == ["config.json", "model.safetensors", "train_log.csv"]
    m = load_model(run)
    assert m.deterministic and m.config == cfg
    mean, logvar = m.encode(torch.rand(3, 1, 16, 16))
    assert mean.shape == (3, 4) and torch.equal(logvar, torch.zeros(3, 4))
    assert m.decode(mean).shape == (3, 1, 16, 16)
    # a config.json is itself a valid config: retraining from it reproduces the weights
    again = varstruct.train(cfg, out=tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()


def test_same_config_and_seed_give_bit_identical_weights(tmp_path):
    a = varstruct.train(TOY, out=tmp_path / "a")
    b = varstruct.train(TOY, out=tmp_path / "b")
    c = varstruct.train({**TOY, "seed": 1}, out=tmp_path / "c")
    d = varstruct.train(TOY, out=tmp_path / "d", prefetch=False)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() == (d / "model.safetensors").read_bytes()
    assert not _same_weights(a, c)
    assert np.array_equal(_log(a)[1][:, :-1], _log(b)[1][:, :-1])


def test_training_leaves_torch_global_state_alone(tmp_path):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    varstruct.train({**TOY, "steps": 3}, out=tmp_path / "r", threads=1)
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.are_deterministic_algorithms_enabled()


RESUME_CASES = {
    "beta_vae": {},
    "factor_vae+hard_concrete": {"method": "factor_vae", "hparams": {"gamma": 10.0},  # (a 5M-parameter
                                 "mask": {"mode": "hard_concrete", "l1": 1e-3},    # discriminator: few steps)
                                 "steps": 6, "checkpoint_every": 4},
    "ordered_ae": {"method": "ordered_ae", "hparams": {"p": 0.3}},
    "conv_dsprites": {"dataset": "dsprites", "arch": "conv", "recon": "bernoulli", "batch_size": 8, "steps": 6,
                      "checkpoint_every": 4},  # the standard network (channels_last on CPU)
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_gives_the_uninterrupted_weights(tmp_path, case):
    cfg = {**TOY, "steps": 24, "checkpoint_every": 10, **RESUME_CASES[case]}
    full = varstruct.train(cfg, out=tmp_path / "full")
    part = varstruct.train(cfg, out=tmp_path / "part", stop_after=cfg["steps"] // 2 + 1)
    assert (part / "checkpoint.safetensors").is_file() and not (part / "model.safetensors").exists()
    with pytest.raises(ModelDirError, match="unfinished"):
        load_model(part)
    varstruct.train(cfg, out=part, resume=True)
    assert not (part / "checkpoint.safetensors").exists()
    assert _same_weights(full, part)
    model = load_model(part)
    assert model.masked == ("mask" in RESUME_CASES[case]) and (0.0 <= model.sparsity() <= 1.0 or not model.masked)
    (hf, rf), (hp, rp) = _log(full), _log(part)
    assert hf == hp and np.array_equal(rf[:, :-1], rp[:, :-1])


def test_resume_after_a_crash_replays_from_the_last_periodic_checkpoint(tmp_path, monkeypatch):
    cfg = {**TOY, "steps": 25, "checkpoint_every": 10}
    full = varstruct.train(cfg, out=tmp_path / "full")
    real, calls = loop.make_batch, {"n": 0}

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 16:  # dies during step 16: the checkpoint holds step 10
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(loop, "make_batch", crashing)
    with pytest.raises(KeyboardInterrupt):
        varstruct.train(cfg, out=tmp_path / "crash")
    monkeypatch.setattr(loop, "make_batch", real)
    varstruct.train(cfg, out=tmp_path / "crash", resume=True)
    assert _same_weights(full, tmp_path / "crash")
    # resuming a finished run changes nothing
    before = (full / "model.safetensors").read_bytes()
    assert varstruct.train(cfg, out=full, resume=True) == full
    assert (full / "model.safetensors").read_bytes() == before


def test_ada_gvae_trains_on_pairs(tmp_path):
    run = varstruct.train({**TOY, "method": "ada_gvae", "hparams": {"beta": 1.0, "k": 1}, "steps": 10},
                          out=tmp_path / "ada")
    header, rows = _log(run)
    assert header == ["step", "loss", "recon", "kl", "shared", "seconds"]
    assert np.all((rows[:, 4] >= 0) & (rows[:, 4] <= 4))


def test_output_dir_rules(tmp_path):
    run = varstruct.train({**TOY, "steps": 3}, out=tmp_path / "r")
    with pytest.raises(ConfigError, match="not empty"):
        varstruct.train({**TOY, "steps": 3}, out=run)
    with pytest.raises(ConfigError, match="differs in seed"):
        varstruct.train({**TOY, "steps": 3, "seed": 5}, out=run, resume=True)
    (run / "scores.nc").write_text("stale")
    varstruct.train({**TOY, "steps": 3, "seed": 5}, out=run, overwrite=True)
    assert json.loads((run / "config.json").read_text())["seed"] == 5 and not (run / "scores.nc").exists()
    with pytest.raises(OutputError, match="does not exist"):
        varstruct.train(TOY, out=tmp_path / "no" / "such")
    (tmp_path / "empty").mkdir()
    varstruct.train({**TOY, "steps": 2}, out=tmp_path / "empty")  # an empty dir is fine


@pytest.mark.parametrize("bad,match", [
    ({"latent_dim": 0}, "latent_dim"), ({"steps": -1}, "steps"), ({"batch_size": 1}, "batch_size"),
    ({"lr": -1.0}, "lr"), ({"arch": "conv"}, "64x64"), ({"recon": "laplace"}, "recon"),
    ({"mask": {"mode": "magic"}}, "mask"), ({"dataset_params": {"nope": 1}}, "unknown parameter"),
    ({"bogus": 1}, "unknown config field"),
])
def test_bad_configs_raise_value_errors_before_writing(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        varstruct.train({**TOY, **bad}, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


# ---- loading model dirs: errors and safety -------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return varstruct.train({**TOY, "steps": 2}, out=tmp_path_factory.mktemp("runs") / "r")


def _copy(run, dst):
    dst.mkdir()
    for p in run.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_broken_model_dirs_raise_one_line_model_dir_errors(trained, tmp_path):
    cases = {}
    cases["missing dir"] = tmp_path / "nothing"
    d = cases["no weights"] = _copy(trained, tmp_path / "a")
    (d / "model.safetensors").unlink()
    d = cases["truncated"] = _copy(trained, tmp_path / "b")
    (d / "model.safetensors").write_bytes((trained / "model.safetensors").read_bytes()[:200])
    d = cases["garbage"] = _copy(trained, tmp_path / "c")
    (d / "model.safetensors").write_bytes(b"\x00" * 64)
    d = cases["bad json"] = _copy(trained, tmp_path / "d")
    (d / "config.json").write_text("{not json")
    d = cases["wrong shapes"] = _copy(trained, tmp_path / "e")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "latent_dim": 7}))
    d = cases["missing field"] = _copy(trained, tmp_path / "f")
    (d / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "arch"}))
    for name, d in cases.items():
        with pytest.raises(ModelDirError) as e:
            load_model(d)
        assert "\n" not in str(e.value), name


class _Payload:
    """Unpickling this writes a marker file: proof that a pickle was executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "executed"))


def test_a_planted_pickle_is_never_executed(trained, tmp_path):
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(probe)))
    assert probe.exists()  # the payload is live
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Payload(marker))
    run = _copy(trained, tmp_path / "run")
    for name in ("model.pkl", "model.pt", "model.pth", "checkpoint.pt", "weights.bin"):
        (run / name).write_bytes(payload)
    load_model(run)  # loads the safetensors weights, ignores the rest
    assert not marker.exists()
    (run / "model.safetensors").write_bytes(payload)  # a pickle in place of the weights
    with pytest.raises(ModelDirError, match="corrupt"):
        load_model(run)
    part = varstruct.train({**TOY, "steps": 10}, out=tmp_path / "part", stop_after=3)
    (part / "checkpoint.safetensors").write_bytes(payload)  # and in place of a checkpoint
    with pytest.raises(ModelDirError):
        varstruct.train({**TOY, "steps": 10}, out=part, resume=True)
    assert not marker.exists()


# ---- the CLI ------------------------------------------------------------------------------
def _cli(args, capsys):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_trains_and_prints_a_summary(tmp_path, capsys):
    rc, out, err = _cli(["train", "toy_blobs", "--method", "beta_tcvae", "--beta", "2", "--latents", "3",
                         "--recon", "gaussian", "--steps", "6", "--batch-size", "8", "--seed", "3", "--threads", "1",
                         "--out", str(tmp_path / "r")], capsys)
    assert rc == 0, err
    assert "final tc" in out and "images/s" in out
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["hparams"] == {"beta": 2.0} and cfg["latent_dim"] == 3 and cfg["seed"] == 3


@pytest.mark.parametrize("args,match", [
    (["--method", "nope"], "'nope' is not one of 'ae', 'beta_vae'"),
    (["DATASET", "nope"], "'nope' is not one of 'dsprites'"),
    (["--beta", "-1"], "--beta must be a finite number >= 0"),
    (["--latents", "0"], "--latents"),
    (["--gamma", "3"], "--gamma is not a hyper-parameter of beta_vae"),
    (["-p", "nope=1"], "unknown parameter"),
    (["--arch", "conv"], "64x64"),
    (["--data-file", "/no/such/file.npz"], "no such file"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, match):
    base = {"DATASET": "toy_linear", "--method": "beta_vae"}
    for i in range(0, len(args) - 1, 2):
        base[args[i]] = args[i + 1]
    dataset = base.pop("DATASET")
    argv = ["train", dataset, *[x for kv in base.items() for x in kv], "--steps", "2", "--out", str(tmp_path / "r")]
    rc, out, err = _cli(argv, capsys)
    assert rc == 2
    assert err.startswith("error:") and err.count("\n") == 1 and match in err
    assert not (tmp_path / "r").exists()


def test_cli_existing_dir_resume_and_corrupt_checkpoint(tmp_path, capsys):
    argv = ["train", "toy_linear", "--method", "beta_vae", "--recon", "gaussian", "--steps", "4",
            "--threads", "1", "--out", str(tmp_path / "r")]
    assert _cli(argv, capsys)[0] == 0
    rc, _, err = _cli(argv, capsys)
    assert rc == 2 and "--resume" in err and err.count("\n") == 1
    assert _cli(argv + ["--overwrite"], capsys)[0] == 0
    assert _cli(argv + ["--resume"], capsys)[0] == 0  # already finished: nothing to do
    rc, _, err = _cli(argv[:-1] + [str(tmp_path / "r"), "--seed", "9", "--resume"], capsys)
    assert rc == 2 and "differs in seed" in err
    # a CLI run interrupted after 2 steps, whose checkpoint is then corrupted
    part = varstruct.train({"dataset": "toy_linear", "method": "beta_vae", "recon": "gaussian", "steps": 4},
                           out=tmp_path / "p", stop_after=2)
    (part / "checkpoint.safetensors").write_bytes(b"garbage")
    rc, _, err = _cli(argv[:-1] + [str(part), "--resume"], capsys)
    assert rc == 2 and "corrupt" in err and err.startswith("error:") and err.count("\n") == 1


def test_ada_gvae_longitudinal_pairs_change_only_the_changeable_factors(tmp_path):
    from varstruct.models.objectives import make_objective
    from varstruct.training.loop import make_batch

    class Recorder:  # a dataset stub: records what make_batch asks of the pair sampler
        def sample_pairs(self, n, rng, k=1, changeable=None):
            self.asked = (n, k, changeable)
            return np.zeros((n, 2), np.int64), np.ones((n, 2), np.int64)

        def render(self, idx, rng=None):
            return np.zeros((len(idx), 4, 4, 1), np.float32)

    ds = Recorder()
    x1, x2 = make_batch(ds, make_objective("ada_gvae", {"k": 1, "changeable": ["b"]}), 3, np.random.default_rng(0))
    assert ds.asked == (3, 1, ["b"]) and x1.shape == x2.shape == (3, 1, 4, 4)
    make_batch(ds, make_objective("ada_gvae", {"k": 1}), 3, np.random.default_rng(0))
    assert ds.asked == (3, 1, None)
    # end to end: the hyper-parameter is recorded; without it nothing new enters config.json
    cfg = {**TOY, "method": "ada_gvae", "steps": 2}
    run = varstruct.train({**cfg, "hparams": {"k": 1, "changeable": ["f0", "f2"]}}, out=tmp_path / "long")
    assert json.loads((run / "config.json").read_text())["hparams"]["changeable"] == ["f0", "f2"]
    run = varstruct.train({**cfg, "hparams": {"k": 1}}, out=tmp_path / "plain")
    assert "changeable" not in json.loads((run / "config.json").read_text())["hparams"]


@pytest.mark.parametrize("changeable, msg", [("f0", "non-empty list"), ([], "non-empty list"),
                                             (["f0", "f0"], "distinct"), (["nope"], "nope")])
def test_ada_gvae_changeable_errors_are_one_line(tmp_path, changeable, msg):
    with pytest.raises(VarstructError) as e:
        varstruct.train({**TOY, "method": "ada_gvae", "steps": 2, "hparams": {"k": 1, "changeable": changeable}},
                        out=tmp_path / "bad")
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_prefetch_thread_renders_with_one_torch_thread_and_leaves_the_step_its_threads():
    """The loader thread's torch ops take no OpenMP team of their own (it would spin on the
    step's cores); the training thread keeps its thread count."""
    from varstruct import data

    seen = []

    class Recording:
        def __init__(self, ds):
            self.ds = ds

        def __getattr__(self, name):
            return getattr(self.ds, name)

        def render(self, idx, rng=None):
            seen.append(torch.get_num_threads())
            return self.ds.render(idx, rng=rng)

    ds = Recording(data.get("toy_linear"))
    with varstruct.tensors.torch_threads(2):
        stream = loop.batch_stream(ds, varstruct.models.objectives.make_objective("beta_vae"), 0, 4, 0, 3)
        batches = [next(stream) for _ in range(3)]
        assert torch.get_num_threads() == 2
        stream.close()
    assert seen == [1, 1, 1] and len(batches) == 3
