"""Fitted baselines (PCA, FastICA, the oracle readout) and the untrained network, as run dirs:
their maps against closed forms, and their use wherever a model is used."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import varstruct
from varstruct import data
from varstruct.errors import ConfigError
from varstruct.models.baselines import fit, fit_sample
from varstruct.models.nets import build_model
from varstruct.training.config import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LIN = {"amplitudes": [2.0, 1.5, 1.0], "sizes": [10, 10, 10], "side": 12}


def _baseline(kind, dataset="toy_linear", params=LIN, latent_dim=3, n_fit=3000, seed=0):
    return {"dataset": dataset, "dataset_params": params, "method": "ae", "steps": 0, "recon": "gaussian",
            "latent_dim": latent_dim, "seed": seed, "baseline": {"kind": kind, "n_fit": n_fit}}


def _codes(run, ds, idx):
    model = varstruct.load_model(run)
    x = torch.from_numpy(np.ascontiguousarray(ds.render(idx).transpose(0, 3, 1, 2)))
    with torch.no_grad():
        mean, logvar = model.encode(x)
    return mean.double().numpy(), logvar.numpy(), model


def test_oracle_reads_each_toy_linear_factor_back_exactly(tmp_path):
    """toy_linear: x = ½ + Σ a_j u_j(c_j) b_j with orthonormal b_j, so ⟨x − ½, b_j⟩ = a_j u_j(c_j):
    the oracle's code j is an affine function of c_j alone, u_j standardised on the fit sample."""
    ds = data.get("toy_linear", **LIN)
    run = varstruct.train(_baseline("oracle"), out=tmp_path / "o", threads=1)
    idx = np.stack(np.meshgrid(*[np.arange(10)] * 3, indexing="ij"), -1).reshape(-1, 3)
    z, logvar, _ = _codes(run, ds, idx)
    assert np.all(logvar == 0)
    coef = ds.coefficients(idx)  # a_j u_j(c_j)
    for j in range(3):
        slope, icpt = np.polyfit(coef[:, j], z[:, j], 1)
        assert np.allclose(z[:, j], slope * coef[:, j] + icpt, atol=1e-4), j
        assert slope > 0
    # standardised on the fit sample: the sample's codes have mean 0 and sd 1 (float32 weights)
    X = fit_sample(ds, 3000, 0)
    model = varstruct.load_model(run)
    with torch.no_grad():
        zs = model.encode(torch.from_numpy(X.reshape(-1, 1, 12, 12)).float())[0].double().numpy()
    assert np.allclose(zs.mean(0), 0, atol=1e-4) and np.allclose(zs.std(0), 1, atol=1e-4)


def test_pca_of_toy_linear_finds_the_factor_blocks_in_amplitude_order(tmp_path):
    """X − μ = C B with orthonormal rows B (the blocks b_j) and coefficients C = a_j u_j(c_j): the
    principal directions of the sample are V^T B with V the eigenvectors of the 3x3 sample
    covariance of C, its eigenvalues the variances (close to ±b_j in amplitude order 2 > 1.5 > 1)."""
    ds = data.get("toy_linear", **LIN)
    maps = fit("pca", ds, 3, 3000, 0, threads=1)
    X = fit_sample(ds, 3000, 0)
    lam, V = np.linalg.eigh(np.cov((X @ ds.basis.T).T))
    lam, V = lam[::-1], V[:, ::-1]
    expect = V.T @ ds.basis / np.sqrt(lam)[:, None]  # u_l / √λ_l, up to each row's sign
    sign = np.sign(np.sum(maps["enc_w"] * expect, axis=1))
    assert np.allclose(maps["enc_w"] * sign[:, None], expect, atol=1e-6)
    assert np.allclose(np.abs(V), np.eye(3), atol=0.05)  # nearly the blocks themselves, in order
    assert maps["recon"] < 1e-10
    Z = X @ maps["enc_w"].T + maps["enc_b"]
    assert np.allclose(np.cov(Z.T), np.eye(3), atol=1e-8)  # whitened


def test_fastica_codes_are_unit_variance_and_invert_on_full_rank_data(tmp_path):
    ds = data.get("toy_linear", **LIN)
    maps = fit("fastica", ds, 3, 1000, 0, threads=1)
    X = fit_sample(ds, 1000, 0)
    Z = X @ maps["enc_w"].T + maps["enc_b"]
    assert np.allclose(Z.var(0), 1, atol=1e-6) and np.allclose(Z.mean(0), 0, atol=1e-8)
    assert maps["recon"] < 1e-10
    # independent uniform sources mixed orthogonally: each code is one factor (|corr| ~ 1)
    idx = np.random.default_rng(1).integers(0, 10, (2000, 3))
    Xt = np.asarray(ds.render(idx), dtype=np.float64).reshape(2000, -1)
    c = np.corrcoef(np.column_stack([Xt @ maps["enc_w"].T, idx]).T)[:3, 3:]
    assert np.allclose(np.sort(np.abs(c).max(axis=1)), 1, atol=1e-3)


def test_fitted_baselines_are_seeded(tmp_path):
    a = varstruct.train(_baseline("fastica", seed=3, n_fit=1000), out=tmp_path / "a", threads=1)
    b = varstruct.train(_baseline("fastica", seed=3, n_fit=1000), out=tmp_path / "b", threads=1)
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_steps_zero_keeps_the_seeded_initial_network(tmp_path):
    cfg = {"dataset": "toy_blobs", "method": "beta_vae", "steps": 0, "recon": "gaussian", "latent_dim": 5,
           "hidden": [32, 32], "seed": 7}
    run = varstruct.train(cfg, out=tmp_path / "u")
    torch.manual_seed(7)
    init = build_model(varstruct.RunDir(run).read_config()).state_dict()
    got = load_file(str(run / "model.safetensors"))
    assert got.keys() == init.keys() and all(torch.equal(got[k], init[k]) for k in got)
    # the same seed's trained run starts from these weights: its first step's loss is the init's
    assert (run / "train_log.csv").read_text().strip() == "step,loss,recon,kl,seconds"


def test_baselines_are_swept_evaluated_measured_and_collected(tmp_path, capsys):
    from varstruct.cli.app import main
    from varstruct.study.collect import collect
    from varstruct.study.spec import runs_from_dict
    from varstruct.study.sweep import sweep

    spec = {"steps": 0, "train": {"recon": "gaussian", "latent_dim": 2,
                                  "baseline": [{"kind": "oracle", "n_fit": 2000}, {"kind": "pca", "n_fit": 2000}]},
            "datasets": [{"name": "toy_blobs", "params": {"r": 2.0, "profile": "none"}}],
            "methods": [{"name": "ae"}], "evaluate": {"metrics": ["mig", "active_mig", "dci"], "n_train": 1000,
                                                       "n_test": 500}, "measure": {"n_anchors": 10}}
    models = tmp_path / "models"
    sweep(runs_from_dict(spec), models, workers=1)
    s = collect(models, n_anchors=30, n_pca_anchors=5)
    assert len(s["model"]) == 2 and np.isnan(s["converged"].values).all()  # no training to judge
    mig = {m: float(v) for m, v in zip(s["model"].values, s["mig"].values)}
    oracle = next(m for m in mig if "oracle" in m)
    assert mig[oracle] > 0.8  # toy_blobs none r = 2: each code reads one blob
    assert "encoding_purity_mean" in s  # the model measures were computed on it
    assert main(["evaluate", str(models / oracle), "--metrics", "mig", "--overwrite"]) == 0
    from varstruct.study.correlate import correlate

    with pytest.raises(ConfigError, match="2 baseline"):  # baselines are never points of a correlation
        correlate(s)


@pytest.mark.parametrize("change, param", [
    ({"method": "beta_vae"}, "method"), ({"steps": 10}, "steps"), ({"recon": "bernoulli"}, "recon"),
    ({"arch": "mlp"}, "arch"), ({"baseline": {"kind": "lda"}}, "baseline.kind"),
    ({"baseline": {"kind": "pca", "n_fit": 1}}, "baseline.n_fit"), ({"baseline": {}}, "baseline.kind"),
    ({"mask": {"mode": "continuous", "l1": 0.1}}, "baseline"),
])
def test_bad_baseline_configs_are_refused(change, param):
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({**_baseline("pca"), **change}).validate()
    assert e.value.param == param


def test_the_oracle_needs_readout_directions_and_one_latent_each(tmp_path):
    with pytest.raises(ConfigError, match="one code per readout direction"):
        varstruct.train(_baseline("oracle", latent_dim=4), out=tmp_path / "a")
    with pytest.raises(ConfigError, match="no oracle readout"):
        varstruct.train(_baseline("oracle", "toy_square", {}, latent_dim=2), out=tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
