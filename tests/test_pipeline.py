"""End to end on a real model dir: train -> evaluate -> measure model, through the CLI."""
import numpy as np
import pytest

import varstruct
from varstruct.cli.app import main
from varstruct.io import read_netcdf


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "bvae"
    cfg = dict(dataset="toy_linear", method="beta_vae", hparams={"beta": 1.0}, steps=40, seed=0, latent_dim=4,
               recon="gaussian")
    return varstruct.train(cfg, out=out, threads=1)


def test_evaluate_cli_writes_scores(run_dir, capsys):
    rc = main(["evaluate", str(run_dir), "--metrics", "mig,sap,dci", "--train-points", "600",
               "--test-points", "300", "--seed", "3"])
    assert rc == 0
    scores = read_netcdf(run_dir / "scores.nc")
    for name in ("mig", "sap", "dci_disentanglement"):
        assert name in scores, list(scores)
        assert 0.0 <= float(scores[name]) <= 1.0
    assert int(scores.attrs["seed"]) == 3
    out = capsys.readouterr().out
    assert "mig" in out
    # same seed, same numbers (the representation and the points are seeded)
    again = varstruct.evaluate(varstruct.load_model(run_dir), varstruct.datasets.get("toy_linear"),
                               metrics=["mig"], seed=3, n_train=600, n_test=300)
    np.testing.assert_allclose(float(again["mig"]), float(scores["mig"]))


def test_measure_model_cli_on_trained_dir(run_dir):
    assert main(["measure", "model", str(run_dir), "--anchors", "20"]) == 0
    m = read_netcdf(run_dir / "measures.nc")
    assert m["traversal_response"].shape == (20, 3, 4)
    assert 0 <= float(m["decoder_orthogonality"]) <= 1


def test_evaluate_cli_bad_input(run_dir, tmp_path, capsys):
    assert main(["evaluate", str(run_dir), "--metrics", "mig,nosuch"]) == 2
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
