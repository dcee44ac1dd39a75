"""The decoder's transposed convolutions (varstruct.models.deconv) against torch's own
``F.conv_transpose2d``: values, gradients, forward mode, vmap, autocast."""
import pytest
import torch
import torch.nn.functional as F
from torch.func import jvp, vmap

from varstruct.models import deconv as D
from varstruct.models.layers import SameConvTranspose2d
from varstruct.training.alloc import retain_freed_memory

# (in, out, kernel, stride, padding, output_padding, n): sub-pixel (k4 s2 p1, out <= 4) and adjoint cases
CASES = [(3, 1, 4, 2, 1, 0, 5), (4, 3, 4, 2, 1, 0, 4), (5, 6, 4, 2, 1, 0, 3), (3, 2, 3, 2, 1, 1, 4),
         (2, 3, 2, 2, 0, 0, 4), (3, 4, 4, 1, 1, 0, 5)]


def _inputs(ci, co, k, n, dtype=torch.float64, channels_last=False):
    g = torch.Generator().manual_seed(ci * 100 + co * 10 + k)
    x = torch.randn(2, ci, n, n + 1, generator=g, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(ci, co, k, k, generator=g, dtype=dtype)
    b = torch.randn(co, generator=g, dtype=dtype)
    return x.requires_grad_(), w.requires_grad_(), b.requires_grad_()


@pytest.mark.parametrize("ci,co,k,s,p,op,n", CASES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_equal_conv_transpose2d(ci, co, k, s, p, op, n, channels_last):
    x, w, b = _inputs(ci, co, k, n, channels_last=channels_last)
    want = F.conv_transpose2d(x, w, b, s, p, op)
    got = D.conv_transpose2d(x, w, b, (s, s), (p, p), (op, op))
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    gy = torch.randn_like(want)
    for a, c in zip(torch.autograd.grad(want, (x, w, b), gy), torch.autograd.grad(got, (x, w, b), gy)):
        torch.testing.assert_close(c, a, rtol=1e-12, atol=1e-12)
    # without a bias, and with only some inputs requiring gradients
    got = D.conv_transpose2d(x.detach(), w, None, (s, s), (p, p), (op, op))
    (gw,) = torch.autograd.grad(got, (w,), gy)
    torch.testing.assert_close(gw, torch.autograd.grad(F.conv_transpose2d(x.detach(), w, None, s, p, op), (w,), gy)[0])


def test_subpixel_is_used_where_documented():
    w = torch.zeros(32, 1, 4, 4)
    assert D.uses_subpixel(w, (2, 2), (1, 1), (0, 0))
    assert not D.uses_subpixel(torch.zeros(32, 32, 4, 4), (2, 2), (1, 1), (0, 0))
    assert not D.uses_subpixel(w, (2, 2), (0, 0), (0, 0)) and not D.uses_subpixel(w, (1, 1), (1, 1), (0, 0))


def test_phase_kernel_is_a_permutation_and_its_gradient_the_inverse():
    w = torch.arange(2 * 3 * 16, dtype=torch.float64).reshape(2, 3, 4, 4)
    k = D.phase_kernel(w)
    assert k.shape == (12, 2, 2, 2)
    assert sorted(k.flatten().tolist()) == sorted(w.flatten().tolist())
    # phase (a=0, b=1), channel c=2, input channel 1, taps (u, v) = (0, 1): W[1, 2, 3, 0]
    assert k[(0 * 2 + 1) * 3 + 2, 1, 0, 1] == w[1, 2, 3, 0]
    torch.testing.assert_close(D.phase_kernel_grad(k, 2, 3), w)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[3]])
def test_gradcheck_and_forward_mode(case):
    ci, co, k, s, p, op, n = case
    x, w, b = _inputs(ci, co, k, n)
    f = lambda x, w, b: D.conv_transpose2d(x, w, b, (s, s), (p, p), (op, op))  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, w, b), check_forward_ad=True)
    # torch.func: a vmap of jvp over tangents, as the Jacobian measures use it
    tangents = torch.randn(3, *x.shape, dtype=x.dtype)
    want = vmap(lambda t: jvp(lambda x: F.conv_transpose2d(x, w.detach(), b.detach(), s, p, op), (x.detach(),), (t,))[1])(tangents)
    got = vmap(lambda t: jvp(lambda x: f(x, w.detach(), b.detach()), (x.detach(),), (t,))[1])(tangents)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("co", [1, 8])
def test_autocast_runs_in_bf16_and_returns_fp32_gradients(co):
    x, w, b = (t.detach().float().requires_grad_() for t in _inputs(8, co, 4, 6, channels_last=True))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = F.conv_transpose2d(x, w, b, 2, 1)
        got = D.conv_transpose2d(x, w, b, (2, 2), (1, 1), (0, 0))
    assert got.dtype == want.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2 * float(want.detach().abs().max()))
    gw_want = torch.autograd.grad(want.float().sum(), (x, w, b))
    gw_got = torch.autograd.grad(got.float().sum(), (x, w, b))
    for a, c in zip(gw_want, gw_got):
        assert c.dtype == torch.float32
        torch.testing.assert_close(c, a, rtol=2e-2, atol=2e-2 * float(a.abs().max()))


def test_same_conv_transpose_layer_uses_it_and_matches_tf_same():
    torch.manual_seed(0)
    layer = SameConvTranspose2d(5, 1, 4, 2).double()
    x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
    want = F.conv_transpose2d(x, layer.weight, layer.bias, 2, 1)  # TF "same" for k4 s2 = padding 1
    torch.testing.assert_close(layer(x), want)


def test_retain_freed_memory_is_idempotent():
    assert retain_freed_memory() == retain_freed_memory()


def test_transposed_convolutions_run_under_vmap_over_stacked_weights():
    """Several models' decoders as one (torch.func.stack_module_state + vmap) give each model's
    own output: the layout query in the sub-pixel path must not fail under vmap."""
    import torch
    from torch.func import functional_call, stack_module_state, vmap

    from varstruct.models.layers import SameConvTranspose2d

    torch.manual_seed(0)
    layers = [SameConvTranspose2d(8, 1, 4, 2), SameConvTranspose2d(8, 1, 4, 2)]  # C = 1: the sub-pixel path
    params, _ = stack_module_state(layers)
    base = SameConvTranspose2d(8, 1, 4, 2).to("meta")
    x = torch.randn(2, 3, 8, 5, 5)
    got = vmap(lambda p, xi: functional_call(base, p, (xi,)))(params, x)
    for m in range(2):
        torch.testing.assert_close(got[m], layers[m](x[m]), rtol=1e-5, atol=1e-6)
