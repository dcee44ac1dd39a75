"""Loss terms and objectives against hand-computed values on tiny inputs."""
import math
import os
import pathlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from varstruct.models import ConfigError, grid, make_objective
from varstruct.models import losses as L
from varstruct.models.layers import SameConv2d, SameConvTranspose2d, same_pads
from varstruct.models.nets import VAE
from varstruct.models.objectives import METHODS, discriminator
from varstruct.training.optim import Optimisers

pytestmark = [pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad"),
              pytest.mark.usefixtures("one_torch_thread")]



class Stub(torch.nn.Module):
    """A 'model' with fixed posterior and fixed decoder logits (the decoder ignores z)."""

    def __init__(self, mean, logvar, logits, deterministic=False):
        super().__init__()
        self.mean, self.logvar, self.logits = mean, logvar, logits
        self.deterministic, self.masked = deterministic, False
        self.w = torch.nn.Parameter(torch.ones(()))

    def encode(self, x):
        return self.mean * self.w, self.logvar * self.w

    def decode(self, z):
        return self.logits.expand(z.shape[0], *self.logits.shape[1:]) + 0 * z.sum()


MEAN = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
LOGVAR = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 0.0]])
# KL per dim = ½(m² + σ² - log σ² - 1)
KL_HAND = np.mean([0.5 * (1 + 1 - 0 - 1) + 0.5 * (0 + 2 - math.log(2) - 1),
                   0.5 * (0 + 0.5 - math.log(0.5) - 1) + 0.5 * (4 + 1 - 0 - 1)])


def test_kl_of_known_gaussians():
    assert float(L.gaussian_kl(MEAN, LOGVAR)) == pytest.approx(KL_HAND, rel=1e-6)
    assert float(L.gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0


def test_bernoulli_and_gaussian_reconstruction_by_hand():
    x = torch.tensor([[[[1.0, 0.0], [0.25, 1.0]]], [[[0.0, 0.0], [1.0, 0.5]]]])
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]], [[[0.5, 0.0], [-2.0, 1.0]]]])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    per = [sum(-(xx * math.log(sig(ll)) + (1 - xx) * math.log(1 - sig(ll)))
               for xx, ll in zip(x[b].flatten().tolist(), logits[b].flatten().tolist())) for b in range(2)]
    assert float(L.bernoulli_recon(logits, x)) == pytest.approx(np.mean(per), rel=1e-6)
    g = [sum((xx - sig(ll)) ** 2 / (2 * 0.02) for xx, ll in zip(x[b].flatten().tolist(), logits[b].flatten().tolist()))
         for b in range(2)]
    assert float(L.gaussian_recon(logits, x, 0.02)) == pytest.approx(np.mean(g), rel=1e-6)


def test_beta_vae_and_annealed_losses_with_fixed_posterior():
    x = torch.rand(2, 1, 3, 3)
    stub = Stub(MEAN, LOGVAR, torch.zeros(1, 1, 3, 3))
    recon = 9 * math.log(2.0)  # logits 0: log 2 per pixel whatever x
    loss, terms = make_objective("beta_vae", {"beta": 4.0}, 2).loss(stub, x, 0)
    assert float(loss) == pytest.approx(recon + 4 * KL_HAND, rel=1e-6)
    assert float(terms["kl"]) == pytest.approx(KL_HAND, rel=1e-6)
    ann = make_objective("annealed_vae", {"c_max": 10.0, "gamma": 100.0, "iteration_threshold": 1000}, 2)
    loss, terms = ann.loss(stub, x, 250)  # C = 10 * 250 / 1000 = 2.5
    assert float(terms["capacity"]) == 2.5
    assert float(loss) == pytest.approx(recon + 100 * abs(KL_HAND - 2.5), rel=1e-6)
    assert L.anneal(10.0, 5000, 1000) == 10.0 and L.anneal(10.0, 0, 1000) == 0.0


def test_ae_uses_the_mean_and_no_regulariser():
    x = torch.rand(2, 1, 3, 3)
    logits = torch.randn(1, 1, 3, 3)
    loss, terms = make_objective("ae").loss(Stub(MEAN, LOGVAR, logits, True), x, 0)
    assert float(loss) == pytest.approx(float(L.bernoulli_recon(logits.expand(2, 1, 3, 3), x)), rel=1e-6)
    assert set(terms) == {"recon"}


def _tc_by_hand(z, mean, logvar):
    B, D = len(z), len(z[0])
    dens = lambda v, m, lv: -0.5 * ((v - m) ** 2 / math.exp(lv) + lv + math.log(2 * math.pi))  # noqa: E731
    total = 0.0
    for j in range(B):
        joint = math.log(sum(math.exp(sum(dens(z[j][l], mean[i][l], logvar[i][l]) for l in range(D))) for i in range(B)))
        prod = sum(math.log(sum(math.exp(dens(z[j][l], mean[i][l], logvar[i][l])) for i in range(B))) for l in range(D))
        total += joint - prod
    return total / B


def test_total_correlation_matches_a_hand_computation():
    z = [[0.3, -0.2], [1.0, 0.5], [-0.4, 0.9]]
    mean = [[0.1, 0.0], [0.8, 0.7], [-0.5, 1.2]]
    logvar = [[0.0, -0.5], [0.3, 0.1], [-1.0, 0.2]]
    got = float(L.total_correlation(torch.tensor(z, dtype=torch.float64), torch.tensor(mean, dtype=torch.float64),
                                    torch.tensor(logvar, dtype=torch.float64)))
    assert got == pytest.approx(_tc_by_hand(z, mean, logvar), rel=1e-10)


def test_total_correlation_lower_for_independent_than_correlated_codes():
    g = torch.Generator().manual_seed(0)
    B = 256
    logvar = torch.full((B, 2), math.log(0.05))
    indep = torch.randn(B, 2, generator=g)
    a = torch.randn(B, 1, generator=g)
    corr = torch.cat([a, a + 0.1 * torch.randn(B, 1, generator=g)], 1)
    tc_i = float(L.total_correlation(indep, indep, logvar))
    tc_c = float(L.total_correlation(corr, corr, logvar))
    assert tc_c > tc_i + 0.5


def test_beta_tcvae_loss_combines_terms():
    x = torch.rand(3, 1, 2, 2)
    m, lv = torch.randn(3, 2), torch.full((3, 2), -30.0)  # σ ≈ 0: z = mean
    stub = Stub(m, lv, torch.zeros(1, 1, 2, 2))
    torch.manual_seed(0)
    loss, t = make_objective("beta_tcvae", {"beta": 3.0}, 2).loss(stub, x, 0)
    assert float(t["tc"]) == pytest.approx(float(L.total_correlation(m, m, lv)), rel=1e-4)
    assert float(loss) == pytest.approx(float(t["recon"] + t["kl"] + 2.0 * t["tc"]), rel=1e-6)


def test_dip_covariance_penalty_by_hand():
    m = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    # means (2, 1); centred rows (-1, 1), (1, -1), (0, 0): cov = [[2/3, -2/3], [-2/3, 2/3]]
    cov = L.covariance(m)
    assert torch.allclose(cov, torch.tensor([[2 / 3, -2 / 3], [-2 / 3, 2 / 3]], dtype=torch.float64))
    reg = float(L.dip_regulariser(cov, 2.0, 5.0))
    assert reg == pytest.approx(2.0 * 2 * (2 / 3) ** 2 + 5.0 * 2 * (2 / 3 - 1) ** 2)
    lv = torch.log(torch.tensor([[1.0, 0.5], [2.0, 0.5], [3.0, 0.5]], dtype=torch.float64))
    cov2 = L.dip_covariance(m, lv, "ii")  # + diag(E[σ²]) = diag(2, 0.5)
    assert torch.allclose(cov2, cov + torch.diag(torch.tensor([2.0, 0.5], dtype=torch.float64)))
    x = torch.rand(3, 1, 2, 2)
    stub = Stub(m.float(), lv.float(), torch.zeros(1, 1, 2, 2))
    _, t = make_objective("dip_vae_ii", {"lambda_od": 2.0, "lambda_d": 5.0}, 2).loss(stub, x, 0)
    c2 = cov2.numpy()
    assert float(t["dip"]) == pytest.approx(2.0 * 2 * c2[0, 1] ** 2 + 5.0 * ((c2[0, 0] - 1) ** 2 + (c2[1, 1] - 1) ** 2), rel=1e-5)
    assert make_objective("dip_vae_i", {"lambda_od": 3.0}).hparams["lambda_d"] == 30.0
    assert make_objective("dip_vae_ii", {"lambda_od": 3.0}).hparams["lambda_d"] == 3.0


def test_ada_gvae_averaging_on_a_hand_made_pair():
    m1 = torch.tensor([[0.0, 0.0, 0.0]])
    m2 = torch.tensor([[3.0, 0.1, 0.0]])
    lv1 = torch.log(torch.tensor([[1.0, 1.0, 1.0]]))
    lv2 = torch.log(torch.tensor([[1.0, 1.0, 2.0]]))
    # KL(q1||q2) = ½(σ1²/σ2² + Δ²/σ2² - 1 + log σ2² - log σ1²): [4.5, 0.005, ½(0.5 - 1 + log 2)]
    kl = L.pair_kl(m1, lv1, m2, lv2)
    hand = [4.5, 0.005, 0.5 * (0.5 - 1 + math.log(2))]
    assert torch.allclose(kl, torch.tensor([hand]), atol=1e-6)
    a1, v1, a2, v2, shared = L.ada_gvae_aggregate(m1, lv1, m2, lv2)
    # threshold ½(4.5 + 0.005) = 2.2525: dims 1 and 2 shared, dim 0 kept
    assert shared.tolist() == [[False, True, True]]
    assert torch.allclose(a1, torch.tensor([[0.0, 0.05, 0.0]])) and torch.allclose(a2, torch.tensor([[3.0, 0.05, 0.0]]))
    assert torch.allclose(v1.exp(), torch.tensor([[1.0, 1.0, 1.5]])) and torch.allclose(v2.exp(), torch.tensor([[1.0, 1.0, 1.5]]))


def test_ada_gvae_loss_is_beta_vae_on_the_aggregated_pair():
    x1, x2 = torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 2)

    class PairStub(Stub):
        def encode(self, x):
            return torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.1, 0.0]]), torch.log(torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 2.0]]))

    stub = PairStub(None, None, torch.zeros(1, 1, 2, 2))
    loss, t = make_objective("ada_gvae", {"beta": 2.0}, 3).loss(stub, (x1, x2), 0)
    kl1 = 0.5 * (0.05 ** 2) + 0.5 * (1.5 - math.log(1.5) - 1)
    kl2 = 0.5 * 9 + 0.5 * (0.05 ** 2) + 0.5 * (1.5 - math.log(1.5) - 1)
    assert float(t["kl"]) == pytest.approx(0.5 * (kl1 + kl2), rel=1e-5)
    assert float(t["shared"]) == 2.0
    assert float(loss) == pytest.approx(4 * math.log(2) + 2.0 * 0.5 * (kl1 + kl2), rel=1e-5)


def test_factor_vae_discriminator_and_losses():
    d = discriminator(10)
    lin = [m for m in d if isinstance(m, torch.nn.Linear)]
    acts = [m for m in d if isinstance(m, torch.nn.LeakyReLU)]
    assert [l.out_features for l in lin] == [1000] * 6 + [2] and len(acts) == 6
    assert all(a.negative_slope == 0.2 for a in acts)
    obj = make_objective("factor_vae", {"gamma": 10.0}, 2)
    (name, group), = obj.aux_groups().items()
    assert name == "disc" and group["betas"] == (0.5, 0.9) and len(group["params"]) == 14
    # the trainer gives the discriminator the run's lr (not a hard-coded one)
    opts = Optimisers(VAE((4, 4, 1), 2, "mlp", hidden=(8,)), obj, lr=3e-4)
    assert opts.aux["disc"].defaults["lr"] == 3e-4 and opts.aux["disc"].defaults["betas"] == (0.5, 0.9)
    assert opts.main.defaults["lr"] == 3e-4 and opts.main.defaults["betas"] == (0.9, 0.999)
    z = torch.randn(8, 2)
    torch.manual_seed(0)
    got = obj.discriminator_loss(z)
    torch.manual_seed(0)
    zp = L.permute_dims(z)
    p_real = F.softmax(obj.disc(z), 1)[:, 0].clamp(1e-6, 1 - 1e-6)
    p_fake = F.softmax(obj.disc(zp), 1)[:, 1].clamp(1e-6, 1 - 1e-6)
    assert float(got) == pytest.approx(float(-(0.5 * p_real.log().mean() + 0.5 * p_fake.log().mean())), rel=1e-5)
    # permutation shuffles each column independently: same multiset per column
    assert torch.equal(zp.sort(0).values, z.sort(0).values)


def test_factor_vae_step_updates_the_discriminator_from_its_own_loss_only():
    model = VAE((4, 4, 1), 2, "mlp", hidden=(8,))
    obj = make_objective("factor_vae", {"gamma": 5.0}, 2)
    opts = Optimisers(model, obj, lr=0.0)  # lr 0: inspect grads only
    x = torch.rand(6, 1, 4, 4)
    torch.manual_seed(1)
    losses = obj.compute(model, x, 0)
    assert set(losses.aux) == {"disc"} and list(losses.terms) == ["loss", "recon", "kl", "tc", "disc_loss"]
    opts.step(losses)
    got = [p.grad.clone() for p in obj.disc.parameters()]
    got_model = [p.grad.clone() for p in model.parameters()]
    torch.manual_seed(1)  # replay the same ε and permutation
    mean, logvar = model.encode(x)
    z = L.sample_gaussian(mean, logvar)
    d = obj.disc(z)
    vae_loss = (L.bernoulli_recon(model.decode(z), x) + L.gaussian_kl(mean, logvar)
                + 5.0 * (d[:, 0] - d[:, 1]).mean())
    want_model = torch.autograd.grad(vae_loss, list(model.parameters()))
    want = torch.autograd.grad(obj.discriminator_loss(z), list(obj.disc.parameters()))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, want))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got_model, want_model))


def test_objectives_only_compute_losses():
    """No objective owns an optimiser or steps; building a model does not import them."""
    import subprocess
    import sys
    for m in METHODS:
        obj = make_objective(m)
        assert not any(isinstance(v, torch.optim.Optimizer) for v in vars(obj).values())
        assert not hasattr(obj, "train_step")
    code = ("import sys; from varstruct.models.nets import build_model; "
            "build_model({'image_shape': [8, 8, 1], 'latent_dim': 2, 'arch': 'mlp', 'method': 'ae'}); "
            "assert 'varstruct.models.objectives' not in sys.modules")
    root = str(pathlib.Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert {m for m, c in METHODS.items() if c.deterministic} == {"ae", "ordered_ae"}


def test_nested_dropout_keeps_a_geometric_prefix():
    torch.manual_seed(0)
    keep = L.nested_dropout_mask(20000, 6, 0.5)
    b = keep.sum(1)
    assert torch.equal(keep, (torch.arange(6)[None] < b[:, None]).float())  # a prefix
    freq = [(b == k).float().mean().item() for k in range(1, 6)]
    assert freq == pytest.approx([0.5, 0.25, 0.125, 0.0625, 0.03125], abs=0.01)
    assert (b == 6).float().mean().item() == pytest.approx(0.03125, abs=0.01)  # the truncated tail
    x = torch.rand(4, 1, 2, 2)
    loss, t = make_objective("ordered_ae", {"p": 1.0}).loss(Stub(MEAN[:1].expand(4, 2), LOGVAR[:1].expand(4, 2),
                                                                 torch.zeros(1, 1, 2, 2), True), x, 0)
    assert float(t["kept"]) == 1.0


def test_bad_hyper_parameters_are_refused():
    with pytest.raises(ConfigError, match="beta"):
        make_objective("beta_vae", {"beta": -1})
    with pytest.raises(ConfigError, match="beta is not a hyper-parameter of factor_vae"):
        make_objective("factor_vae", {"beta": 2})
    for bad in (True, "3", "4.0", None, [4.0]):  # _number took True and "3" before the catalog
        with pytest.raises(ConfigError, match="beta must be a finite number"):
            make_objective("beta_vae", {"beta": bad})
    with pytest.raises(ConfigError, match="k must be an integer >= 1 or 'random'"):
        make_objective("ada_gvae", {"k": "3"})
    with pytest.raises(ConfigError, match="method must be one of ae, "):
        make_objective("vae2")
    with pytest.raises(ConfigError, match="k"):
        make_objective("ada_gvae", {"k": 0})
    with pytest.raises(ConfigError, match="p"):
        make_objective("ordered_ae", {"p": 1.5})
    with pytest.raises(ConfigError):
        make_objective("beta_vae", {"beta": float("nan")})
    assert make_objective("ada_gvae", {"k": "random"}).hparams["k"] == "random"


def test_locatello_grids():
    assert [h["beta"] for h in grid("beta_vae")] == [1, 2, 4, 6, 8, 16]
    assert [h["c_max"] for h in grid("annealed_vae")] == [5, 10, 25, 50, 75, 100]
    assert [h["beta"] for h in grid("beta_tcvae")] == [1, 2, 4, 6, 8, 10]
    assert [h["gamma"] for h in grid("factor_vae")] == [10, 20, 30, 40, 50, 100]
    assert [(h["lambda_od"], h["lambda_d"]) for h in grid("dip_vae_i")] == [(l, 10 * l) for l in (1, 2, 5, 10, 20, 50)]
    assert [(h["lambda_od"], h["lambda_d"]) for h in grid("dip_vae_ii")] == [(l, l) for l in (1, 2, 5, 10, 20, 50)]
    for m in METHODS:
        for hp in grid(m):
            make_objective(m, hp)  # every grid point is a valid configuration


# ---- TF "same" padding and the conv network ------------------------------------------
def test_tf_same_padding_sizes():
    assert same_pads(64, 4, 2) == (1, 1) and same_pads(8, 2, 2) == (0, 0)
    assert same_pads(64, 3, 2) == (0, 1) and same_pads(7, 3, 2) == (1, 1) and same_pads(5, 4, 1) == (1, 2)


@pytest.mark.parametrize("k,s,n", [(3, 2, 8), (4, 2, 8), (2, 2, 8), (4, 1, 5), (1, 2, 6)])
def test_same_conv_pads_like_tf_and_its_transpose_is_the_adjoint(k, s, n):
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, k, s)
    x = torch.randn(1, 2, n, n, dtype=torch.float64)
    w = conv.weight.double()
    pl, pr = same_pads(n, k, s)
    want = F.conv2d(F.pad(x, (pl, pr, pl, pr)), w, None, s)  # extra pixel right/bottom
    got = conv.double()(x) - conv.bias[None, :, None, None]
    assert got.shape[-1] == -(-n // s) and torch.allclose(got, want)
    # TF's conv2d_transpose("same") is the adjoint of the "same" conv (here from n to n/s)
    if n % s == 0:
        deconv = SameConvTranspose2d(3, 2, k, s).double()
        with torch.no_grad():
            deconv.weight.copy_(w)
            deconv.bias.zero_()
        y = torch.randn_like(want)
        assert deconv(y).shape == x.shape
        assert float((want * y).sum()) == pytest.approx(float((x * deconv(y)).sum()), rel=1e-10)


def test_conv_network_matches_disentanglement_lib_layout():
    v = VAE((64, 64, 3), 10, "conv")
    convs = [m for m in v.encoder.modules() if isinstance(m, SameConv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [(32, 4, 2), (32, 4, 2), (64, 2, 2), (64, 2, 2)]
    deconvs = [m for m in v.decoder.modules() if isinstance(m, SameConvTranspose2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in deconvs] == [(64, 4, 2), (32, 4, 2), (32, 4, 2), (3, 4, 2)]
    x = torch.rand(2, 3, 64, 64)
    h = x
    for m in v.encoder.convs:
        h = m(h)
        if isinstance(m, torch.nn.Flatten):
            assert h.shape == (2, 1024)
    mean, logvar = v.encode(x)
    assert mean.shape == logvar.shape == (2, 10) and v.decode(mean).shape == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="64x64"):
        VAE((32, 32, 1), 10, "conv")
