"""Training throughput of the standard conv network (β-VAE, batch 64, 64x64x1) in images/s,
fp32 and bf16, against the plain PyTorch loop and the machine's matmul peaks.

Rows (each timed in rounds of ``--steps`` steps, rounds of all rows interleaved because the
machine may be shared; median images/s over rounds and the interquartile range):

* plain fp32 loop (the floor): the same network written the obvious way (``nn.Conv2d`` /
  ``nn.ConvTranspose2d`` with symmetric padding, NCHW, ``torch.optim.Adam()`` defaults, a
  hand-written β-VAE loss) on one fixed batch;
* plain bf16 loop: the same under ``torch.autocast("cpu", bfloat16)`` with channels-last
  tensors (what a user gets by adding autocast);
* varstruct step fp32 / bf16: the trainer's step (``objective.compute`` +
  ``Optimisers.step``: channels-last, fused Adam, bf16 autocast via
  ``training.precision``) on the same fixed batch;
* varstruct end-to-end fp32 / bf16: ``varstruct.train`` itself on dSprites (batches
  rendered on the fly and prefetched, logging, progress off), the rate from its own
  ``seconds`` column (the training loop; set-up excluded).

Each rate is also given as a fraction of the machine's measured matmul peak for its
precision (a large ``torch.mm`` in fp32 and in bf16, best of several), with FLOPs per step
counted by ``torch.utils.flop_counter`` (convolutions and matmuls, forward + backward).

    python benchmarks/bench_train.py [--threads N] [--steps 20] [--rounds 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import varstruct  # noqa: E402
from varstruct import data  # noqa: E402
from varstruct.models.nets import VAE  # noqa: E402
from varstruct.models.objectives import make_objective  # noqa: E402
from varstruct.training import precision as P  # noqa: E402
from varstruct.training.loop import make_batch  # noqa: E402
from varstruct.training.optim import Optimisers  # noqa: E402

B = 64


def matmul_peak(dtype, n: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of an n x n matmul in ``dtype`` (best of ``repeats``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
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


def plain(x, bf16: bool):
    m = PlainVAE()
    if bf16:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    ctx = P.autocast("bf16" if bf16 else "fp32")

    def step():
        opt.zero_grad()
        with ctx():
            mu, logvar = m.enc(x).float().chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = m.dec(z).float()
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
        kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1).mean()
        loss = recon + 4.0 * kl
        loss.backward()
        opt.step()
    return step


def ours_step(x, prec: str):
    """The trainer's step on a fixed batch (the same calls as ``training.loop``)."""
    model = VAE((64, 64, 1), 10, "conv").to(memory_format=torch.channels_last)
    obj = make_objective("beta_vae", {"beta": 4.0})
    net = P.wrap(model, prec)
    obj.amp = P.autocast(prec)
    opts = Optimisers(model, obj, 1e-4)
    x = x.contiguous(memory_format=torch.channels_last)
    state = {"t": 0}

    def step():
        opts.step(obj.compute(net, x, state["t"]))
        state["t"] += 1
    return step


def train_rate(prec: str, steps: int, tmp: Path, k: list) -> float:
    """images/s of ``varstruct.train`` (its logged loop seconds) for ``steps`` steps."""
    k[0] += 1
    out = tmp / f"{prec}-{k[0]}"
    varstruct.train({"dataset": "dsprites", "method": "beta_vae", "hparams": {"beta": 4.0}, "steps": steps,
                     "batch_size": B, "log_every": steps, "checkpoint_every": 10 ** 9, "precision": prec,
                     "seed": k[0]}, out=out)
    secs = float((out / "train_log.csv").read_text().splitlines()[-1].split(",")[-1])
    return steps * B / secs


def flops_per_step(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step()
    return float(fc.get_total_flops())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--steps", type=int, default=20, help="steps per round and row")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--no-end-to-end", action="store_true", help="skip the varstruct.train rows")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ds = data.get("dsprites")
    x = make_batch(ds, make_objective("beta_vae"), B, np.random.default_rng(0))
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows = {  # name -> (precision, step function or None for end-to-end)
        "plain loop fp32 (floor)": ("fp32", plain(x, False)),
        "plain loop bf16 autocast": ("bf16", plain(x, True)),
        "varstruct step fp32": ("fp32", ours_step(x, "fp32")),
        "varstruct step bf16": ("bf16", ours_step(x, "bf16")),
    }
    if not a.no_end_to_end:
        rows["varstruct end-to-end fp32"] = ("fp32", None)
        rows["varstruct end-to-end bf16"] = ("bf16", None)
    flops = flops_per_step(rows["plain loop fp32 (floor)"][1])
    rates = {k: [] for k in rows}
    with tempfile.TemporaryDirectory() as tmp:
        counter = [0]
        for k, (prec, f) in rows.items():  # warm-up
            if f is None:
                train_rate(prec, 3, Path(tmp), counter)
            else:
                f(), f()
        for r in range(a.rounds):
            order = list(rows) if r % 2 == 0 else list(rows)[::-1]  # interleaved, alternating order
            for k in order:
                prec, f = rows[k]
                if f is None:
                    rates[k].append(train_rate(prec, a.steps, Path(tmp), counter))
                    continue
                t = time.perf_counter()
                for _ in range(a.steps):
                    f()
                rates[k].append(a.steps * B / (time.perf_counter() - t))
    load = os.getloadavg()
    print(f"batch {B}, 64x64x1, beta_vae; torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, native bf16 {P.cpu_has_native_bf16()}; "
          f"{a.rounds} rounds x {a.steps} steps; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s; "
          f"{flops / 1e9:.2f} GFLOP per training step ({flops / B / 1e6:.0f} MFLOP per image)")
    floor = statistics.median(rates["plain loop fp32 (floor)"])
    print(f"{'row':30s} {'images/s':>9s} {'IQR':>11s} {'vs plain fp32':>14s} {'of its peak':>12s}")
    for k, r in rates.items():
        med = statistics.median(r)
        q = statistics.quantiles(r, n=4) if len(r) > 1 else [med, med, med]
        frac = med * flops / B / 1e9 / peak[rows[k][0]]
        print(f"{k:30s} {med:9.0f} {q[0]:5.0f}-{q[2]:<5.0f} {med / floor:13.2f}x {frac:12.1%}")


if __name__ == "__main__":
    main()
