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

Processes: each row runs in its own process (``--isolation process``, default), started fresh
(``spawn``) and driven by this one: the rounds stay interleaved, but every row has the process
state it would have on its own. This matters for the allocator: ``varstruct.train`` raises
glibc's mmap/trim thresholds (``training.alloc``), which removes the page faults a step
otherwise pays for its buffers, and the setting is process-wide. ``--allocator as-run``
(default): each row as it runs in practice, the plain loops on glibc's defaults (a plain PyTorch
script), varstruct's rows with the trainer's setting; ``retain``: every row with the setting
(the plain loops given varstruct's allocator tuning too: the strictest floor); ``default``:
no row with it. ``--isolation none`` runs every row in this process (``as-run`` then means
``retain``, the setting being process-wide).

    python benchmarks/bench_train.py [--threads N] [--steps 20] [--rounds 7] [--clock wall|cpu]
                                     [--allocator as-run|retain|default] [--isolation process|none]
                                     [--rows PART,...]

Each row also reports its process's minor page faults per step (``getrusage``).
"""
from __future__ import annotations

import argparse
import os
import resource
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


ROWS = {  # name -> (precision, varstruct's row?)
    "plain loop fp32 (floor)": ("fp32", False),
    "plain loop bf16 autocast": ("bf16", False),
    "varstruct step fp32": ("fp32", True),
    "varstruct step bf16": ("bf16", True),
    "varstruct end-to-end fp32": ("fp32", True),
    "varstruct end-to-end bf16": ("bf16", True),
}
FLOOR = "plain loop fp32 (floor)"


def retains(row: str, allocator: str) -> bool:
    """Whether ``row`` runs with the trainer's allocator setting under ``--allocator``."""
    return allocator == "retain" or (allocator == "as-run" and ROWS[row][1])


def prepared(row: str):
    """(step function of ``row``, FLOPs per step for the floor else None), warmed up."""
    f = build_row(row)
    flops = flops_per_step(f) if row == FLOOR else None
    f(), f()
    return f, flops


def build_row(row: str):
    """The step function of ``row`` (plain rows and varstruct's step on one fixed batch)."""
    torch.manual_seed(0)
    ds = data.get("dsprites")
    x = make_batch(ds, make_objective("beta_vae"), B, np.random.default_rng(0))
    prec = ROWS[row][0]
    if row.startswith("plain"):
        return plain(x, prec == "bf16")
    if "step" in row:
        return ours_step(x, prec)
    return ours_end_to_end(ds, prec)


def timed(f, steps: int) -> tuple[list[float], int]:
    """(images/s of each of ``steps`` steps of ``f``, each timed on its own with CLOCK; the
    process's minor page faults during them)."""
    rates = []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        t = CLOCK()
        f()
        rates.append(B / (CLOCK() - t))
    return rates, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def worker(conn, row: str, threads, clock: str, retain: bool):
    """One row in its own process: set up, warm up, then time ``n`` steps per request."""
    global CLOCK
    CLOCK = time.process_time if clock == "cpu" else time.perf_counter
    if retain:
        retain_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    f, flops = prepared(row)
    conn.send(flops)
    while (n := conn.recv()) is not None:
        conn.send(timed(f, n))


class InProcess:
    """A row run in this process (``--isolation none``), with the worker's interface."""

    def __init__(self, row: str):
        self.f, self.flops = prepared(row)

    def run(self, n: int) -> tuple[list[float], int]:
        return timed(self.f, n)

    def close(self):
        pass


class Worker:
    """A row run in a fresh process (``spawn``), driven over a pipe."""

    def __init__(self, row: str, threads, clock: str, retain: bool):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker, args=(child, row, threads, clock, retain), daemon=True)
        self.proc.start()
        self.flops = self.conn.recv()

    def run(self, n: int) -> tuple[list[float], int]:
        self.conn.send(n)
        return self.conn.recv()

    def close(self):
        self.conn.send(None)
        self.proc.join(timeout=30)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--steps", type=int, default=20, help="steps per round and row")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--no-end-to-end", action="store_true", help="skip the end-to-end rows")
    p.add_argument("--rows", default=None,
                   help="comma-separated parts of row names: only the rows that contain one of them, and the floor "
                        "(e.g. 'bf16' or 'step bf16,end-to-end bf16')")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--allocator", choices=("as-run", "retain", "default"), default="as-run",
                   help="as-run: the plain loops on glibc's defaults (a plain PyTorch script), varstruct's rows with "
                        "the trainer's setting (freed memory kept); retain: every row keeps freed memory (the strictest "
                        "floor); default: glibc's defaults for every row")
    p.add_argument("--isolation", choices=("process", "none"), default="process",
                   help="process: every row in its own fresh process (default); none: every row in this process "
                        "(the allocator setting is then process-wide: as-run means retain)")
    a = p.parse_args()
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = [r for r in ROWS if not (a.no_end_to_end and "end-to-end" in r)]
    if a.rows:
        rows = [r for r in rows if r == FLOOR or any(part.strip() in r for part in a.rows.split(","))]
    if a.isolation == "none":
        allocator = a.allocator != "default" and retain_freed_memory()
        policy = {r: bool(allocator) for r in rows}
        runners = {r: InProcess(r) for r in rows}
    else:
        retain_freed_memory()  # this process only measures the peaks: the best rate its kernels reach
        policy = {r: retains(r, a.allocator) for r in rows}
        runners = {r: Worker(r, a.threads, a.clock, policy[r]) for r in rows}
    peaks = {(p_, k_): [] for p_ in ("fp32", "bf16") for k_ in ("matmul", "conv")}
    measure_peaks(peaks)
    flops = runners[FLOOR].flops
    rates = {k: [] for k in rows}
    faults = dict.fromkeys(rows, 0)
    try:
        for r in range(a.rounds):
            order = rows if r % 2 == 0 else rows[::-1]  # interleaved, alternating order
            for k in order:
                r_k, f_k = runners[k].run(a.steps)  # each step timed on its own: median and IQR over all
                rates[k] += r_k
                faults[k] += f_k
            measure_peaks(peaks, repeats=2)  # the peaks too: the best over the whole run
    finally:
        for w in runners.values():
            w.close()
    best = {k: max(v) for k, v in peaks.items()}
    peak = {p_: max(best[p_, "matmul"], best[p_, "conv"]) for p_ in ("fp32", "bf16")}
    load = os.getloadavg()
    print(f"batch {B}, 64x64x1, beta_vae; torch {torch.__version__}, threads {a.threads or torch.get_num_threads()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, native bf16 {P.cpu_has_native_bf16()}; "
          f"{a.rounds} rounds x {a.steps} steps; {a.clock} clock; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"rows {'each in its own process' if a.isolation == 'process' else 'in one process'}, allocator {a.allocator}")
    print(f"peak (best of matmul {N_MM}² and 3x3 conv): fp32 {peak['fp32']:.0f} GFLOP/s (matmul {best['fp32', 'matmul']:.0f}, "
          f"conv {best['fp32', 'conv']:.0f}), bf16 {peak['bf16']:.0f} GFLOP/s (matmul {best['bf16', 'matmul']:.0f}, "
          f"conv {best['bf16', 'conv']:.0f}); {flops / 1e9:.2f} GFLOP per training step ({flops / B / 1e6:.0f} MFLOP per image)")
    floor = statistics.median(rates[FLOOR])
    print(f"{'row':30s} {'images/s':>9s} {'IQR':>11s} {'vs plain fp32':>14s} {'of its peak':>12s} "
          f"{'faults/step':>12s}  freed memory")
    for k, r in rates.items():
        med = statistics.median(r)
        q = statistics.quantiles(r, n=4) if len(r) > 1 else [med, med, med]
        frac = med * flops / B / 1e9 / peak[ROWS[k][0]]
        print(f"{k:30s} {med:9.0f} {q[0]:5.0f}-{q[2]:<5.0f} {med / floor:13.2f}x {frac:12.1%} "
              f"{faults[k] / len(r):12.0f}  {'kept' if policy[k] else 'glibc default'}")


if __name__ == "__main__":
    main()
