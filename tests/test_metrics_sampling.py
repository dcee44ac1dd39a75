"""Sampling-based scores and evaluate() with analytic encoders on toy_linear."""
import numpy as np
import pytest
import torch

import varstruct
from varstruct import metrics as M


@pytest.fixture(scope="module")
def ds():
    return varstruct.datasets.get("toy_linear", sizes=[6, 5, 4], side=12)


def readout(ds, mix=None, extra_constant=False):
    """encode(images) -> the factor coefficients ⟨x - ½, b_j⟩ (optionally mixed, plus a constant code)."""
    basis = ds.basis

    def encode(images):
        coef = (images.reshape(len(images), -1).astype(np.float64) - 0.5) @ basis.T
        z = coef if mix is None else coef @ mix
        if extra_constant:
            z = np.concatenate([z, np.ones((len(z), 1))], axis=1)
        return z
    return encode


class CoefficientEncoder(torch.nn.Module):
    """A model whose encoder mean reads toy_linear's coefficients back (logvar = 0)."""

    def __init__(self, ds):
        super().__init__()
        self.register_buffer("basis", torch.tensor(ds.basis, dtype=torch.float32))

    def encode(self, x):
        mean = (x.flatten(1) - 0.5) @ self.basis.T
        return mean, torch.zeros_like(mean)


def test_beta_vae_score_perfect_and_mixed(ds):
    r = M.beta_vae_score(ds, readout(ds), seed=0, batch_size=16, n_train=120, n_eval=60)
    assert r == {"train_accuracy": 1.0, "eval_accuracy": 1.0}
    assert M.beta_vae_score(ds, readout(ds), seed=0, batch_size=16, n_train=120, n_eval=60) == r
    # every code mixes all factors equally: the fixed factor is no longer visible per code
    mixed = M.beta_vae_score(ds, readout(ds, mix=np.ones((3, 3))), seed=0, batch_size=16,
                             n_train=120, n_eval=60)
    assert mixed["eval_accuracy"] < 0.7


def test_factor_vae_score_perfect_pruned_and_collapsed(ds):
    r = M.factor_vae_score(ds, readout(ds, extra_constant=True), seed=0, batch_size=16,
                           n_train=60, n_eval=30, n_variance=200)
    assert r == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3}
    dead = M.factor_vae_score(ds, lambda x: np.zeros((len(x), 2)), seed=0, batch_size=8,
                              n_train=10, n_eval=10, n_variance=20)
    assert dead == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    # codes 0 and 1 both carry factor 0 (two votes compete) -> below 1
    mix = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    low = M.factor_vae_score(ds, readout(ds, mix=mix), seed=0, batch_size=16, n_train=60, n_eval=30,
                             n_variance=200)
    assert low["eval_accuracy"] < 0.9


def test_sampling_scores_bad_input(ds):
    with pytest.raises(ValueError, match="NaN"):
        M.beta_vae_score(ds, lambda x: np.full((len(x), 2), np.nan), n_train=5, n_eval=5, batch_size=4)
    with pytest.raises(ValueError, match="shape"):
        M.factor_vae_score(ds, lambda x: np.zeros(len(x)), n_train=5, n_eval=5, n_variance=10, batch_size=4)
    with pytest.raises(ValueError, match="n_train"):
        M.beta_vae_score(ds, readout(ds), n_train=0)
    with pytest.raises(ValueError, match="2 factors"):
        M.beta_vae_score(varstruct.datasets.get("toy_linear", sizes=[5], amplitudes=[1.0]), readout(ds))


def test_evaluate_analytic_encoder(ds):
    model = CoefficientEncoder(ds)
    res = varstruct.evaluate(model, ds, metrics=["mig", "dci", "sap", "modularity_explicitness", "irs",
                                                 "unsupervised", "factor_vae"],
                             seed=1, n_train=400, n_test=200)
    assert res.attrs["metrics"].split(",")[0] == "mig" and res.attrs["seed"] == 1
    assert res.attrs["points_train"] == 400 and res.attrs["points_test"] == 200
    assert res["mig_per_factor"].dims == ("factor",)
    assert list(res["factor"].values) == ds.factor_names
    assert res["dci_importance"].dims == ("latent", "factor") and res["dci_importance"].shape == (3, 3)
    assert float(res["mig"]) > 0.9                     # each code reads one factor exactly
    assert float(res["dci_disentanglement"]) > 0.99 and float(res["dci_completeness"]) > 0.99
    assert float(res["dci_informativeness_test"]) == 1.0
    assert float(res["irs"]) == pytest.approx(1.0)
    assert float(res["factor_vae_eval_accuracy"]) == 1.0
    again = varstruct.evaluate(model, ds, metrics="mig,irs", seed=1, n_train=400, n_test=200)
    assert float(again["mig"]) == float(res["mig"])     # same seed, same points
    other = varstruct.evaluate(model, ds, metrics="mig", seed=2, n_train=400, n_test=200)
    assert float(other["mig"]) != float(res["mig"])


def test_evaluate_writes_netcdf(ds, tmp_path):
    from varstruct.io import read_netcdf, write_netcdf
    res = varstruct.evaluate(readout(ds), ds, metrics=["mig", "unsupervised"], n_train=300)
    write_netcdf(res, tmp_path / "scores.nc")
    back = read_netcdf(tmp_path / "scores.nc")
    assert float(back["mig"]) == pytest.approx(float(res["mig"]))
    assert back.attrs["metrics"] == "mig,unsupervised"


def test_evaluate_bad_metric(ds):
    with pytest.raises(ValueError, match="unknown metric"):
        varstruct.evaluate(readout(ds), ds, metrics=["mig", "nope"])


# ---- CLI (error paths; the full run needs varstruct.models.load_model from the trainer) ------------
def test_cli_evaluate_errors(tmp_path, capsys):
    from varstruct.cli.app import main
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "no such model dir" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a model dir" in err and err.count("\n") == 1
    assert main(["evaluate", str(tmp_path), "--metrics", "mig,bogus"]) == 2
    assert "--metrics: unknown bogus" in capsys.readouterr().err
    assert not (tmp_path / "scores.nc").exists()


def test_cli_evaluate_with_known_encoder(tmp_path, capsys, monkeypatch, ds):
    """The command's flow (load, dataset from config, evaluate, scores.nc, table) on a model dir
    whose model is a known encoder (``varstruct.models.load.load_model`` patched); real models: test_pipeline."""
    import torch

    from varstruct.cli.app import main
    from varstruct.io import read_netcdf
    from varstruct.models import load as load_mod
    from varstruct.runs.layout import REQUIRED_KEYS, RunDir

    def load_model(run_dir, device="cpu"):
        model = CoefficientEncoder(ds)
        model.config = RunDir(run_dir).read_config()
        return model
    monkeypatch.setattr(load_mod, "load_model", load_model)
    rd = RunDir(tmp_path)
    rd.write_config({**{k: None for k in REQUIRED_KEYS}, "dataset": "toy_linear", "dataset_params": ds.params,
                     "method": "beta_vae", "hparams": {}, "seed": 0, "steps": 1, "batch_size": 2, "latent_dim": 3,
                     "arch": "mlp", "hidden": [16], "image_shape": [12, 12, 1], "version": "0"})  # a valid config.json
    rd.write_weights({"w": torch.zeros(1)})
    rc = main(["evaluate", str(tmp_path), "--metrics", "mig,irs", "--seed", "3", "--train-points", "300"])
    assert rc == 0
    assert "mig" in capsys.readouterr().out
    scores = read_netcdf(tmp_path / "scores.nc")
    assert scores.attrs["seed"] == 3 and scores.attrs["metrics"] == "mig,irs"
    assert float(scores["irs"]) == pytest.approx(1.0)
