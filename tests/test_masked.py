"""Channel-masked layers: a zero mask entry removes exactly one channel-to-channel dependence."""
import math

import pytest
import torch

from varstruct.models.masked import MaskedConv2d, MaskedConvTranspose2d, MaskedLinear, mask_penalty, sparsity
from varstruct.models.nets import VAE

pytestmark = [pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad"),
              pytest.mark.usefixtures("one_torch_thread")]



def _close(layer, o, i):
    """Set mask entry (o, i) to a value whose effective mask is exactly 0."""
    with torch.no_grad():
        layer.mask_param[o, i] = {"continuous": 0.0, "ste": -5.0, "hard_concrete": -100.0}[layer.mask_mode]


def _make(kind, mode):
    torch.manual_seed(0)
    if kind == "linear":
        return MaskedLinear(4, 3, mode=mode), torch.randn(2, 4, dtype=torch.float64)
    if kind == "conv":
        return MaskedConv2d(4, 3, 4, 2, mode=mode), torch.randn(1, 4, 6, 6, dtype=torch.float64)
    return MaskedConvTranspose2d(4, 3, 4, 2, mode=mode), torch.randn(1, 4, 3, 3, dtype=torch.float64)


@pytest.mark.parametrize("mode", ["continuous", "ste", "hard_concrete"])
@pytest.mark.parametrize("kind", ["linear", "conv", "deconv"])
@pytest.mark.parametrize("training", [True, False])
def test_zero_mask_entry_removes_exactly_that_dependence(kind, mode, training):
    layer, x = _make(kind, mode)
    layer = layer.double().train(training)
    o, i = 1, 2
    _close(layer, o, i)
    torch.manual_seed(3)  # the hard-concrete draw is the same in every jacobian evaluation

    def f(inp):
        torch.manual_seed(3)
        return layer(inp)

    J = torch.autograd.functional.jacobian(f, x)  # [out dims..., in dims...]
    if kind == "linear":
        blocks = J.permute(1, 3, 0, 2)  # [out_ch, in_ch, batch, batch]
    else:
        blocks = J.permute(1, 5, 0, 2, 3, 4, 6, 7)  # [out_ch, in_ch, ...]
    assert torch.count_nonzero(blocks[o, i]) == 0  # exactly zero, not just small
    others = [(a, b) for a in range(3) for b in range(4) if (a, b) != (o, i)]
    assert all(torch.count_nonzero(blocks[a, b]) > 0 for a, b in others)
    # and no gradient reaches the gated weights
    layer.zero_grad()
    f(x).square().sum().backward()
    g = layer.weight.grad
    gated = g[o, i] if kind != "deconv" else g[i, o]
    assert torch.count_nonzero(gated) == 0


def test_sparsity_and_penalties_by_hand():
    lin = MaskedLinear(5, 4, mode="continuous", l1=0.5)
    with torch.no_grad():
        lin.mask_param.fill_(2.0)
        lin.mask_param[0, :3] = 0.0
        lin.mask_param[1, 0] = 5e-4  # below 1e-3: counts as pruned
        lin.mask_param[2, 0] = -2e-3  # |m| above 1e-3: open
    assert lin.sparsity() == pytest.approx(4 / 20)
    assert float(lin.penalty()) == pytest.approx(0.5 * (2.0 * 15 + 5e-4 + 2e-3))
    ste = MaskedLinear(2, 2, mode="ste", l1=1.0)
    with torch.no_grad():
        ste.mask_param.copy_(torch.tensor([[1.0, -1.0], [0.0, 3.0]]))
    assert ste.mask().tolist() == [[1.0, 0.0], [0.0, 1.0]]  # hard forward, 1[s > 0]
    assert float(ste.penalty()) == pytest.approx(sum(1 / (1 + math.exp(-v)) for v in (1.0, -1.0, 0.0, 3.0)))
    assert ste.sparsity() == 0.5
    hc = MaskedLinear(2, 1, mode="hard_concrete", l1=2.0).eval()
    with torch.no_grad():
        hc.mask_param.copy_(torch.tensor([[0.0, -3.0]]))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert hc.mask().tolist()[0] == pytest.approx([max(0.0, min(1.0, sig(0.0) * 1.2 - 0.1)), max(0.0, sig(-3.0) * 1.2 - 0.1)])
    assert hc.sparsity() == 0.5  # σ(-3)·1.2 - 0.1 < 0 -> clipped to exactly 0
    shift = (2 / 3) * math.log(0.1 / 1.1)
    assert float(hc.penalty()) == pytest.approx(2.0 * (sig(0.0 - shift) + sig(-3.0 - shift)))


def test_ste_passes_gradients_through_the_sigmoid():
    lin = MaskedLinear(3, 2, mode="ste")
    x = torch.randn(4, 3)
    lin(x).sum().backward()
    s = torch.sigmoid(lin.mask_param.detach())
    want = (lin.weight.detach() * x.sum(0)[None, :]) * s * (1 - s)
    assert torch.allclose(lin.mask_param.grad, want, atol=1e-6)


def test_hard_concrete_gates_are_stochastic_in_training_only():
    lin = MaskedLinear(3, 2, mode="hard_concrete")
    with torch.no_grad():
        lin.mask_param.fill_(0.0)
    torch.manual_seed(0)
    a, b = lin.mask(), lin.mask()
    assert not torch.equal(a, b) and float(a.min()) >= 0 and float(a.max()) <= 1
    lin.eval()
    assert torch.equal(lin.mask(), lin.mask())


def test_masked_vae_reports_penalty_and_sparsity():
    v = VAE((8, 8, 1), 3, "mlp", hidden=(16,), mask={"mode": "continuous", "l1": 0.1})
    n = sum(m.numel() for name, m in v.named_parameters() if name.endswith("mask_param"))
    assert float(v.mask_penalty()) == pytest.approx(0.1 * n)  # masks start at 1
    assert v.sparsity() == 0.0
    plain = VAE((8, 8, 1), 3, "mlp", hidden=(16,))
    assert math.isnan(plain.sparsity()) and float(mask_penalty(plain)) == 0.0
    conv = VAE((64, 64, 1), 4, "conv", mask={"mode": "ste", "l1": 0.0})
    assert conv.decode(conv.encode(torch.rand(2, 1, 64, 64))[0]).shape == (2, 1, 64, 64)
    assert sparsity(conv) == 0.0
