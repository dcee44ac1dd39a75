"""Training until the convergence criterion holds (``until_converged``): where a run stops, that it
is the run of that many steps bit for bit, its verdict, its validation."""
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import varstruct
from varstruct.errors import ConfigError
from varstruct.training.config import TrainConfig
from varstruct.training.convergence import convergence, run_convergence

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY = {"dataset": "toy_linear", "method": "beta_vae", "hparams": {"beta": 1.0}, "arch": "mlp", "hidden": [32],
       "latent_dim": 4, "recon": "gaussian", "batch_size": 16, "lr": 1e-3, "log_every": 5, "checkpoint_every": 50}
UC = {"min_steps": 100, "check_every": 20}


def _log(run):
    return pd.read_csv(run / "train_log.csv")


def _same_weights(a, b):
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    out = tmp_path_factory.mktemp("uc") / "run"
    varstruct.train({**TOY, "steps": 2000, "until_converged": UC}, out=out)
    return out


def test_the_run_stops_at_the_first_check_step_where_the_criterion_holds(stopped):
    log = _log(stopped)
    T = int(log["step"].iloc[-1])
    assert T < 2000 and T >= UC["min_steps"] and T % UC["check_every"] == 0
    steps, recon = log["step"].to_numpy(), log["recon"].to_numpy()
    # the definition, judged independently at every check step up to T: false before T, true at T
    for t in range(UC["min_steps"], T + 1, UC["check_every"]):
        v = convergence(steps[steps <= t], recon[steps <= t], total_steps=t)
        assert v["converged"] is (t == T), t
    assert run_convergence(stopped)["converged"] is True and run_convergence(stopped)["steps"] == T
    cfg = varstruct.RunDir(stopped).read_config()
    assert cfg["steps"] == 2000 and cfg["until_converged"] == UC  # the budget and the rule are recorded


def test_a_stopped_run_is_the_run_of_that_many_steps(stopped, tmp_path):
    T = int(_log(stopped)["step"].iloc[-1])
    plain = varstruct.train({**TOY, "steps": T}, out=tmp_path / "plain")
    assert _same_weights(stopped, plain)
    a, b = _log(stopped), _log(plain)
    assert np.array_equal(a.drop(columns="seconds").to_numpy(), b.drop(columns="seconds").to_numpy())
    assert "until_converged" not in varstruct.RunDir(plain).read_config()  # plain configs stay as before


def test_an_interrupted_until_converged_run_resumes_to_the_same_stop(stopped, tmp_path):
    cfg = {**TOY, "steps": 2000, "until_converged": UC}
    varstruct.train(cfg, out=tmp_path / "r", stop_after=60)
    varstruct.train(cfg, out=tmp_path / "r", resume=True)
    assert _same_weights(stopped, tmp_path / "r")


def test_the_budget_ends_a_run_that_never_converges(tmp_path):
    # min_steps = steps: the only check would be at the end, which is the budget anyway
    out = varstruct.train({**TOY, "steps": 40, "until_converged": {"min_steps": 40, "check_every": 20}},
                          out=tmp_path / "b")
    assert int(_log(out)["step"].iloc[-1]) == 40


@pytest.mark.parametrize("uc, param, match", [
    ({"min_steps": 100}, "until_converged.check_every", "needs check_every"),
    ({"min_steps": 100, "check_every": 20, "every": 3}, "until_converged.every", "unknown entry"),
    ({"min_steps": 5000, "check_every": 20}, "until_converged.min_steps", "more than steps"),
    ({"min_steps": 100, "check_every": 7}, "until_converged.check_every", "multiple of log_every"),
    ({"min_steps": 0, "check_every": 20}, "until_converged.min_steps", None),
    ("yes", "until_converged", None),
])
def test_bad_until_converged_tables_are_refused_before_any_work(uc, param, match, tmp_path):
    with pytest.raises(ConfigError, match=match) as e:
        TrainConfig.from_dict({**TOY, "steps": 2000, "until_converged": uc}).validate()
    assert e.value.param == param
    with pytest.raises(ConfigError):
        varstruct.train({**TOY, "steps": 2000, "until_converged": uc}, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_sweep_spec_passes_the_table_through(tmp_path):
    from varstruct.study.spec import runs_from_dict

    runs = runs_from_dict({"steps": 2000, "train": {"until_converged": UC}, "datasets": [{"name": "toy_blobs"}],
                           "methods": [{"name": "beta_vae"}]})
    assert runs[0].train["until_converged"] == UC and runs[0].rel == "toy_blobs/beta_vae/seed0"


def test_keep_converged_copies_only_runs_that_meet_the_criterion(stopped, tmp_path, capsys):
    import shutil

    from varstruct.study.keep_converged import main

    src = tmp_path / "src"
    shutil.copytree(stopped, src / "g" / "conv")
    varstruct.train({**TOY, "steps": 100}, out=src / "g" / "short")  # at 100 steps still falling (first test)
    for run in ("conv", "short"):
        (src / "g" / run / "scores.nc").write_bytes(b"")  # finished (scored) in the gate's sense
    assert run_convergence(src / "g" / "short")["converged"] is False
    assert main([str(src), str(tmp_path / "dst")]) == 0
    out = capsys.readouterr().out
    assert "copied       g/conv" in out and "unconverged  g/short" in out
    assert (tmp_path / "dst" / "g" / "conv" / "model.safetensors").is_file()
    assert not (tmp_path / "dst" / "g" / "short").exists()
    assert main([str(src), str(tmp_path / "dst")]) == 0 and "present      g/conv" in capsys.readouterr().out
    assert main([str(tmp_path / "nope"), str(tmp_path / "dst")]) == 2


def test_a_run_ended_by_its_budget_is_kept_only_if_that_step_was_a_check(stopped, tmp_path):
    """The trainer judges the criterion at multiples of check_every from min_steps on: a run that
    ended at its budget T with a converged log stops there under a larger budget only if T is such
    a check; otherwise it would have gone on, so it trains again."""
    import shutil

    from varstruct.study.job import budget_change

    T = int(_log(stopped)["step"].iloc[-1])
    for every, want in ((20, "rebudget"), (next(c for c in range(15, 200, 5) if T % c), "retrain")):
        rd = varstruct.RunDir(shutil.copytree(stopped, tmp_path / f"every{every}"))
        record = {**rd.read_config(), "steps": T, "until_converged": {"min_steps": 100, "check_every": every}}
        rd.write_config(record)
        action, why = budget_change(rd, rd.progress(), record, {"train": {**record, "steps": T + 1000}})
        assert action == want, why


def _budget_runs(steps: int):
    from varstruct.study.spec import runs_from_dict

    train = {k: v for k, v in TOY.items() if k not in ("dataset", "method", "hparams")}
    train["hidden"] = [train["hidden"]]  # a list in a spec's [train] is a grid of values
    return runs_from_dict({"steps": steps, "train": {**train, "until_converged": UC},
                           "datasets": [{"name": "toy_linear"}], "methods": [{"name": "beta_vae", "hparams": {"beta": 1.0}}],
                           "evaluate": {"metrics": ["mig"], "n_train": 100, "n_test": 50},
                           "measure": {"n_anchors": 4, "n_variance": 50, "n_decoder": 20}})


def test_raising_the_budget_keeps_converged_runs_and_trains_the_others_longer(stopped, tmp_path):
    """A sweep whose spec raises the until_converged budget: a run that converged within it is
    kept (only config.json's budget changes); one that stopped unconverged at the old budget
    trains again and ends as the run trained with the new budget from the start, bit for bit."""
    from varstruct.study.sweep import prepare, sweep

    T = int(_log(stopped)["step"].iloc[-1])
    assert 100 < T < 2000
    conv, short = tmp_path / "conv", tmp_path / "short"
    assert sweep(_budget_runs(2000), conv, workers=1).done  # converges at T
    assert sweep(_budget_runs(100), short, workers=1).done  # the only check, at the budget: unconverged
    (rel,) = [r.rel for r in _budget_runs(100)]
    assert run_convergence(short / rel)["converged"] is False
    files = {p.name: p.read_bytes() for p in (conv / rel).iterdir() if p.is_file() and p.name != "config.json"}

    p = prepare(_budget_runs(3000), conv, workers=1)
    assert p.budget[rel][0] == "rebudget" and f"converged at {T} steps" in p.budget[rel][1]
    res = sweep(_budget_runs(3000), conv, workers=1)
    assert res.skipped == [rel] and varstruct.RunDir(conv / rel).read_config()["steps"] == 3000
    assert {p.name: p.read_bytes() for p in (conv / rel).iterdir() if p.is_file() and p.name != "config.json"} == files
    assert sweep(_budget_runs(3000), conv, workers=1).skipped == [rel]  # now simply the spec's run

    from varstruct.runs.weights import file_sha256

    digest = file_sha256(short / rel / "model.safetensors")  # a packed zoo that lists it: nothing trains in it
    (short / "manifest.csv").write_text(f"path,weights_sha256\n{rel},{digest}\n")
    assert "is in a packed zoo" in prepare(_budget_runs(2000), short, workers=1).failed[rel]
    (short / "manifest.csv").unlink()
    digest = file_sha256(conv / rel / "model.safetensors")  # nor does it change a config there
    (conv / "manifest.csv").write_text(f"path,weights_sha256\n{rel},{digest}\n")
    assert "is in a packed zoo" in prepare(_budget_runs(4000), conv, workers=1).failed[rel]
    (conv / "manifest.csv").unlink()
    assert prepare(_budget_runs(2000), short, workers=1).budget[rel][0] == "retrain"
    assert sweep(_budget_runs(2000), short, workers=1).done == [rel]
    assert int(_log(short / rel)["step"].iloc[-1]) == T and _same_weights(short / rel, conv / rel)
    assert _same_weights(short / rel, stopped)

    with pytest.raises(ConfigError, match="holds a different run"):  # a budget below where it stopped
        prepare(_budget_runs(T - 20), conv, workers=1)
