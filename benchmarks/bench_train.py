"""Training throughput of the standard conv network (β-VAE, batch 64, 64x64x1) in images/s.

Compares varstruct's training step (the objective's ``train_step`` on the model the trainer
builds, as the trainer runs it: channels_last; model-only on a fixed batch, and end-to-end
with dsprites batches rendered on the fly, with and without the trainer's prefetch thread) with a plain
PyTorch loop of the same network and loss (the floor: ``nn.Conv2d``/``nn.ConvTranspose2d``
with symmetric padding, NCHW, a hand-written β-VAE loss), and reports each as a fraction of
the machine's fp32 matmul peak (measured here with a large ``torch.mm``). FLOPs per step are
counted by ``torch.utils.flop_counter`` (convolutions and matmuls, forward + backward).

    python benchmarks/bench_train.py [--threads 1] [--steps 10] [--rounds 3] [--compile]

Variants are timed one step at a time, interleaved (the machine may be shared); the median
per-step rate and its interquartile range are reported.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from varstruct import data
from varstruct.models.nets import VAE
from varstruct.models.objectives import make_objective
from varstruct.training.loop import batch_stream, make_batch

B = 64


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """fp32 GFLOP/s of an n x n matmul (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


class PlainVAE(nn.Module):
    """The same network written the obvious PyTorch way (k4 s2 "same" = padding 1)."""

    def __init__(self, L=10):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
                                 nn.Conv2d(32, 64, 2, 2), nn.ReLU(), nn.Conv2d(64, 64, 2, 2), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 2 * L))
        self.dec = nn.Sequential(nn.Linear(L, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
                                 nn.Unflatten(1, (64, 4, 4)),
                                 nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1),
                                 nn.ReLU(), nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(32, 1, 4, 2, 1))


def plain_step(model, opt, x, beta=4.0):
    opt.zero_grad()
    mu, logvar = model.enc(x).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    logits = model.dec(z)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
    kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1).mean()
    loss = recon + beta * kl
    loss.backward()
    opt.step()
    return loss


def flops_per_step(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step()
    return float(fc.get_total_flops())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--steps", type=int, default=10, help="steps per round and variant")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the train step")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    try:
        ds = data.get("dsprites")
        name = "dsprites"
    except Exception:  # no dsprites: random binary images for the model-only part
        ds, name = None, "random binary"
    rng = np.random.default_rng(0)
    x_nchw = (torch.from_numpy(rng.random((B, 1, 64, 64), dtype=np.float32)) > 0.9).float()
    if ds is not None:
        x_nchw = make_batch(ds, make_objective("beta_vae"), B, rng)
    x_cl = x_nchw.contiguous(memory_format=torch.channels_last)

    peak = matmul_peak()
    obj = make_objective("beta_vae", {"beta": 4.0})

    def ours(channels_last=True, foreach=True):
        m = VAE((64, 64, 1), 10, "conv")
        if channels_last:
            m.to(memory_format=torch.channels_last)
        o = torch.optim.Adam(m.parameters(), lr=1e-4, foreach=foreach)
        x = x_cl if channels_last else x_nchw
        return lambda: obj.train_step(m, o, x, 0)

    def ours_end_to_end(prefetch):
        m = VAE((64, 64, 1), 10, "conv").to(memory_format=torch.channels_last)
        o = torch.optim.Adam(m.parameters(), lr=1e-4, foreach=True)
        stream = batch_stream(ds, obj, 0, B, 0, 10 ** 9, channels_last=True, prefetch=prefetch)

        def step():
            t, x, s = next(stream)
            torch.manual_seed(s)
            return obj.train_step(m, o, x, t)
        return step

    def plain():
        m = PlainVAE()
        o = torch.optim.Adam(m.parameters(), lr=1e-4)
        return lambda: plain_step(m, o, x_nchw)

    variants = {"plain PyTorch loop (floor)": plain(),
                "varstruct step (channels_last, foreach Adam)": ours(),
                "varstruct step (channels_last, per-tensor Adam)": ours(foreach=None),
                "varstruct step (NCHW, foreach Adam)": ours(channels_last=False)}
    if ds is not None:
        variants["varstruct end-to-end (render, then step)"] = ours_end_to_end(False)
        variants["varstruct end-to-end (render prefetched)"] = ours_end_to_end(True)
    if a.compile:
        m = VAE((64, 64, 1), 10, "conv").to(memory_format=torch.channels_last)
        o = torch.optim.Adam(m.parameters(), lr=1e-4)

        @torch.compile
        def fwd_loss(x):
            mean, logvar = m.encode(x)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            logits = m.decode(z)
            return (F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
                    + 4.0 * (0.5 * (mean.square() + logvar.exp() - logvar - 1)).sum(1).mean())

        def compiled():
            o.zero_grad(set_to_none=True)
            fwd_loss(x_cl).backward()
            o.step()
        t = time.perf_counter()
        compiled()
        print(f"torch.compile: first step (compilation) {time.perf_counter() - t:.1f} s")
        variants["torch.compile (forward + loss)"] = compiled

    flops = flops_per_step(variants["plain PyTorch loop (floor)"])
    for f in variants.values():  # warm-up
        f(); f()
    # interleave single steps of every variant (the machine may be shared: load drifts), and
    # report the median per-step rate, plus the interquartile range
    times = {k: [] for k in variants}
    for _ in range(a.rounds * a.steps):
        for k, f in variants.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    rates = {k: [B / v for v in ts] for k, ts in times.items()}
    print(f"data: {name}; batch {B}; torch threads {torch.get_num_threads()}; "
          f"{a.rounds} rounds x {a.steps} steps; fp32 matmul peak {peak:.1f} GFLOP/s; "
          f"{flops / 1e9:.2f} GFLOP per training step ({flops / B / 1e6:.0f} MFLOP per image)")
    floor = statistics.median(rates["plain PyTorch loop (floor)"])
    print(f"{'variant':48s} {'images/s':>9s} {'IQR':>11s} {'vs plain':>9s} {'of peak':>8s}")
    for k, r in rates.items():
        med = statistics.median(r)
        q = statistics.quantiles(r, n=4)
        print(f"{k:48s} {med:9.0f} {q[0]:5.0f}-{q[2]:<5.0f} {med / floor:8.2f}x {med * flops / B / 1e9 / peak:8.1%}")


if __name__ == "__main__":
    main()
