"""Dead units and live-connection mask sparsity (varstruct/models/units.py) on networks whose
weights are set by hand, so every count is known."""
import numpy as np
import pytest
import torch

from varstruct.models.nets import VAE
from varstruct.models.units import unit_activity

IMAGES = np.array([np.full((2, 2, 1), 0.2), np.r_[0.9, 0.1, 0.1, 0.1].reshape(2, 2, 1)], dtype=np.float32)


def hand_set(masked: bool):
    m = VAE((2, 2, 1), 2, "mlp", hidden=(3,), mask={"mode": "continuous", "l1": 0.0} if masked else None)
    with torch.no_grad():
        body = m.encoder.body[1]
        body.weight.copy_(torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]]))
        body.bias.copy_(torch.tensor([0.0, -1.0, -0.5]))  # unit 1 dead; unit 2 live on image 2 only
        m.encoder.mean.bias.fill_(0.3)
        dec = m.decoder.net[0]
        dec.weight.zero_()
        dec.bias.copy_(torch.tensor([-1.0, 1.0, 1.0]))  # decoder unit 0 dead
        if masked:
            body.mask_param[1].zero_()       # a dead unit's whole row: fully masked, costs nothing
            body.mask_param[0, 0] = 0.0      # one live connection pruned (pixel 0 -> live unit 0)
            m.encoder.mean.mask_param[:, 1] = 0.0   # connections from the dead unit 1
            m.encoder.mean.mask_param[0, 0] = 0.0   # one live connection pruned
    return m


def test_counts_by_hand():
    m = hand_set(masked=True)
    r = unit_activity(m, IMAGES)
    assert list(r["layer"].values) == ["encoder.body.1", "encoder.mean", "encoder.logvar", "decoder.net.0",
                                       "decoder.net.2"]
    np.testing.assert_array_equal(r["units"], [3, 2, 2, 3, 4])
    np.testing.assert_array_equal(r["relu"], [True, False, False, True, False])
    np.testing.assert_array_equal(r["dead_units"], [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(r["mask_entries"], [12, 6, 6, 6, 12])
    np.testing.assert_array_equal(r["pruned_entries"], [5, 3, 0, 0, 0])
    # live outputs x live inputs: 2x4 pixels; 2x2 (the dead unit feeds 0); 2x2; 2 live x 2 latents; 4x2
    np.testing.assert_array_equal(r["live_connections"], [8, 4, 4, 4, 8])
    np.testing.assert_array_equal(r["pruned_live_connections"], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(r["fully_masked_units"], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(r["fully_masked_dead_units"], [1, 0, 0, 0, 0])
    assert float(r["dead_share"]) == pytest.approx(2 / 6)
    assert float(r["live_sparsity"]) == pytest.approx(2 / 28)
    assert float(r["sparsity"]) == pytest.approx(8 / 42) == pytest.approx(m.sparsity())
    assert r.attrs["n_images"] == 2


def test_unit_live_on_one_image_only_is_live_and_batches_agree():
    m = hand_set(masked=False)
    only_first = unit_activity(m, IMAGES[:1])  # unit 2 (x0 - 0.5) never fires on image 1 alone
    np.testing.assert_array_equal(only_first["dead_units"], [2, 0, 0, 1, 0])
    both = unit_activity(m, IMAGES, batch_size=1)  # accumulated over batches
    np.testing.assert_array_equal(both["dead_units"], [1, 0, 0, 1, 0])
    assert np.isnan(float(both["live_sparsity"])) and np.isnan(float(both["sparsity"]))
    assert int(both["mask_entries"].sum()) == 0


def test_conv_dead_channel_and_mode_restored():
    torch.manual_seed(0)
    m = VAE((64, 64, 1), 4, "conv")
    with torch.no_grad():
        first = m.encoder.convs[0]
        first.weight[5].zero_()
        first.bias[5] = -1.0
    m.train()
    images = np.random.default_rng(0).uniform(size=(6, 64, 64, 1)).astype(np.float32)
    r = unit_activity(m, images)
    assert m.training
    assert int(r["dead_units"].sel(layer="encoder.convs.0")) == 1
    assert int(r["units"].sel(layer="encoder.convs.0")) == 32
    with pytest.raises(ValueError, match="at least one image"):
        unit_activity(m, images[:0])


def test_add_unit_activity_describes_the_scalars(tmp_path):
    import varstruct
    from varstruct.measures.model import measure_model
    from varstruct.models.units import add_unit_activity
    from varstruct.schema import check_result

    cfg = {"dataset": "toy_linear", "method": "beta_vae", "seed": 0, "hidden": [16], "latent_dim": 3,
           "recon": "gaussian", "steps": 20, "batch_size": 8, "precision": "fp32",
           "mask": {"mode": "hard_concrete", "l1": 0.01}}
    model = varstruct.load_model(varstruct.train(cfg, out=tmp_path / "r", threads=1))
    ds = varstruct.datasets.get("toy_linear")
    m = add_unit_activity(measure_model(model, ds, n_anchors=5, n_variance=200, n_decoder=10), model, ds,
                          seed=4, n_images=300)
    check_result(m, "x.nc", "model_measures", "toy_linear")
    rng = np.random.default_rng([4, 3])
    r = unit_activity(model, ds.render(ds.sample_factors(300, rng), rng=rng))
    assert float(m["dead_unit_share"]) == float(r["dead_share"])
    assert float(m["mask_sparsity"]) == float(r["sparsity"]) == pytest.approx(model.sparsity())
    assert float(m["mask_live_sparsity"]) == float(r["live_sparsity"])
    assert m["mask_live_sparsity"].attrs["definition"].endswith("#unit-activity")
    assert m.attrs["unit_activity"] == "300 images, rng seed [4, 3]"
