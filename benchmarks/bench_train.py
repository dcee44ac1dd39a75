"""Training throughput of the standard conv network (β-VAE, batch 64, 64x64x1) in images/s,
fp32 and bf16, against the plain PyTorch loop and the machine's matmul peaks.

Rows (rounds of ``--steps`` steps of every row, the rounds interleaved in alternating order
because the machine may be shared; each step timed on its own; median images/s over all
steps of a row and the interquartile range):

* plain fp32 loop (the floor): the same network written the obvious way (``nn.Conv2d`` /
  ``nn.ConvTranspose2d`` with symmetric padding, NCHW, ``torch.optim.Adam()`` defaults, a
  hand-written β-VAE loss) on one fixed batch;
* plain bf16 loop: the same under ``torch.autocast("cpu", bfloat16)`` with channels-last
  tensors (what a user gets by adding autocast);
* varstruct step fp32 / bf16: the trainer's step (``objective.compute`` +
  ``Optimisers.step``: channels-last, fused Adam, bf16 autocast via
  ``training.precision``) on the same fixed batch;
* varstruct end-to-end fp32 / bf16: the trainer's loop on dSprites: batches rendered on the
  fly from the per-step seeds and prefetched in a thread (``training.loop.batch_stream``), the
  step, the logged terms pulled to Python each step (what ``varstruct.train`` does per step,
  without its one-time set-up).

Clock: ``--clock wall`` (default) times wall seconds; ``--clock cpu`` the process's CPU seconds
(``time.process_time``), which on a loaded machine is far steadier than wall time (it ignores
time spent waiting for a core); with ``--threads 1`` it gives single-core rates. The
end-to-end rows then also pay for the rendering thread's CPU (on an idle machine it overlaps).

Each rate is also given as a fraction of the machine's measured peak for its precision: the
better of a large ``torch.mm`` and a large oneDNN 3x3 convolution (on AMD CPUs MKL's fp32 sgemm
runs an AVX2 path at about half the rate oneDNN's fp32 convolutions reach), best over the run,
with FLOPs per step counted by ``torch.utils.flop_counter`` (convolutions and matmuls, forward +
backward).

Allocator: ``varstruct.train`` raises glibc's mmap/trim thresholds (``training.alloc``), which
removes the page faults a step otherwise pays for its buffers. The setting is process-wide, so
with ``--allocator retain`` (default) every row has it, the plain loop included; with
``--allocator default`` every row runs on glibc's defaults (the plain loop as a user runs it, and
varstruct's rows without the trainer's setting).

    python benchmarks/bench_train.py [--threads N] [--steps 20] [--rounds 7] [--clock wall|cpu] [--allocator retain|default]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from varstruct import data  # noqa: E402
from varstruct.models.nets import VAE  # noqa: E402
from varstruct.models.objectives import make_objective  # noqa: E402
from varstruct.training import precision as P  # noqa: E402
from varstruct.training.alloc import retain_freed_memory  # noqa: E402
from varstruct.training.loop import batch_stream, make_batch  # noqa: E402
from varstruct.training.optim import Optimisers  # noqa: E402

B = 64


CLOCK = time.perf_counter


def _best(f, repeats: int) -> float:
    f()
    best = float("inf")
    for _ in range(repeats):
        t = CLOCK()
        f()
        best = min(best, CLOCK() - t)
    return best


N_MM = 2048


def matmul_peak(dtype, n: int = N_MM, repeats: int = 5) -> float:
    """GFLOP/s of an n x n matmul in ``dtype`` (best of ``repeats``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n ** 3 / _best(lambda: torch.mm(a, b), repeats) / 1e9


def conv_peak(dtype, c: int = 128, hw: int = 16, batch: int = 64, repeats: int = 5) -> float:
    """GFLOP/s of a 3x3 convolution c -> c channels (oneDNN, channels-last) in ``dtype``."""
    x = torch.randn(batch, c, hw, hw).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, c, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
    return 2 * batch * hw * hw * c * c * 9 / _best(lambda: F.conv2d(x, w, padding=1), repeats) / 1e9


def measure_peaks(peaks: dict, repeats: int = 5) -> None:
    """Append the matmul and the conv rate of fp32 and bf16 to ``peaks[(precision, kind)]``."""
    for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peaks[prec, "matmul"].append(matmul_peak(dtype, repeats=repeats))
        peaks[prec, "conv"].append(conv_peak(dtype, repeats=repeats))


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


def _ours(prec: str):
    """The trainer's model, objective, precision wrapper and optimisers (as ``training.loop``)."""
    model = VAE((64, 64, 1), 10, "conv").to(memory_format=torch.channels_last)
    obj = make_objective("beta_vae", {"beta": 4.0})
    net = P.wrap(model, prec)
    obj.amp = P.autocast(prec)
    return obj, net, Optimisers(model, obj, 1e-4)


def ours_step(x, prec: str):
    """The trainer's step on a fixed batch (the same calls as ``training.loop``)."""
    obj, net, opts = _ours(prec)
    x = x.contiguous(memory_format=torch.channels_last)
    state = {"t": 0}

    def step():
        opts.step(obj.compute(net, x, state["t"]))
        state["t"] += 1
    return step


def ours_end_to_end(ds, prec: str):
    """The trainer's loop: rendered, prefetched batches, the step, the logged terms to Python."""
    obj, net, opts = _ours(prec)
    stream = batch_stream(ds, obj, 0, B, 0, 10 ** 9, channels_last=True, prefetch=True)
    columns = obj.term_names()

    def step():
        t, x, seed = next(stream)
        torch.default_generator.manual_seed(seed)   # as training.loop
        losses = obj.compute(net, x, t)
        opts.step(losses)
        torch.stack([losses.terms[c].double() for c in columns]).tolist()
    return step


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
    p.add_argument("--no-end-to-end", action="store_true", help="skip the end-to-end rows")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--allocator", choices=("retain", "default"), default="retain",
                   help="retain: glibc keeps freed memory, as varstruct.train sets it (process-wide: every row, the "
                        "plain loop too); default: glibc's defaults for every row (the plain loop as a user runs it; "
                        "varstruct's rows then lack the trainer's setting)")
    a = p.parse_args()
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ds = data.get("dsprites")
    x = make_batch(ds, make_objective("beta_vae"), B, np.random.default_rng(0))
    allocator = a.allocator == "retain" and retain_freed_memory()  # as varstruct.train; process-wide: every row
    peaks = {(p_, k_): [] for p_ in ("fp32", "bf16") for k_ in ("matmul", "conv")}
    measure_peaks(peaks)
    rows = {  # name -> (precision, step function or None for end-to-end)
        "plain loop fp32 (floor)": ("fp32", plain(x, False)),
        "plain loop bf16 autocast": ("bf16", plain(x, True)),
        "varstruct step fp32": ("fp32", ours_step(x, "fp32")),
        "varstruct step bf16": ("bf16", ours_step(x, "bf16")),
    }
    if not a.no_end_to_end:
        rows["varstruct end-to-end fp32"] = ("fp32", ours_end_to_end(ds, "fp32"))
        rows["varstruct end-to-end bf16"] = ("bf16", ours_end_to_end(ds, "bf16"))
    flops = flops_per_step(rows["plain loop fp32 (floor)"][1])
    rates = {k: [] for k in rows}
    for prec, f in rows.values():  # warm-up
        f(), f()
    for r in range(a.rounds):
        order = list(rows) if r % 2 == 0 else list(rows)[::-1]  # interleaved, alternating order
        for k in order:
            f = rows[k][1]
            for _ in range(a.steps):  # each step timed on its own: median and IQR over all steps
                t = CLOCK()
                f()
                rates[k].append(B / (CLOCK() - t))
        measure_peaks(peaks, repeats=2)  # the peaks too: the best over the whole run
    best = {k: max(v) for k, v in peaks.items()}
    peak = {p_: max(best[p_, "matmul"], best[p_, "conv"]) for p_ in ("fp32", "bf16")}
    load = os.getloadavg()
    print(f"batch {B}, 64x64x1, beta_vae; torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, native bf16 {P.cpu_has_native_bf16()}; "
          f"{a.rounds} rounds x {a.steps} steps; {a.clock} clock; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"glibc free-memory retention {'on' if allocator else 'off'} (every row)")
    print(f"peak (best of matmul {N_MM}² and 3x3 conv): fp32 {peak['fp32']:.0f} GFLOP/s (matmul {best['fp32', 'matmul']:.0f}, "
          f"conv {best['fp32', 'conv']:.0f}), bf16 {peak['bf16']:.0f} GFLOP/s (matmul {best['bf16', 'matmul']:.0f}, "
          f"conv {best['bf16', 'conv']:.0f}); {flops / 1e9:.2f} GFLOP per training step ({flops / B / 1e6:.0f} MFLOP per image)")
    floor = statistics.median(rates["plain loop fp32 (floor)"])
    print(f"{'row':30s} {'images/s':>9s} {'IQR':>11s} {'vs plain fp32':>14s} {'of its peak':>12s}")
    for k, r in rates.items():
        med = statistics.median(r)
        q = statistics.quantiles(r, n=4) if len(r) > 1 else [med, med, med]
        frac = med * flops / B / 1e9 / peak[rows[k][0]]
        print(f"{k:30s} {med:9.0f} {q[0]:5.0f}-{q[2]:<5.0f} {med / floor:13.2f}x {frac:12.1%}")


if __name__ == "__main__":
    main()
