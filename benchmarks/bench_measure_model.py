"""Benchmark: jacobian_response (forward-mode jvp, vmapped over directions) for 200 anchors x 5
directions with the standard 64x64x1 conv encoder, against

- a per-sample loop of ``torch.autograd.functional.jacobian`` (one full Jacobian [L, D] per
  anchor, applied to its 5 directions; timed on a subset of anchors and extrapolated), and
- the plain forward passes of the same 1000 (anchor, direction) images (the limit).

Optionally (``--run DIR``) times ``python -m varstruct measure model DIR`` end to end.
Usage: python benchmarks/bench_measure_model.py [--subset 20] [--run /work/runs/bvae_dsprites]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

import varstruct
from varstruct.measures import grid
from varstruct.measures.jacobian import encoder_jvp, images_to_model


class _ConvVAE(torch.nn.Module):
    """Stand-in with the standard conv architecture (TF "same" padding), used only while
    varstruct.models is not importable: conv 32 k4, 32 k4, 64 k2, 64 k2 (s2), dense 256, 2L;
    decoder dense 256, 1024, deconv 64-32-32-C k4 s2."""

    def __init__(self, L=10, C=1):
        super().__init__()
        nn = torch.nn
        self.L = L
        self.enc = nn.Sequential(
            nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(C, 32, 4, 2), nn.ReLU(),
            nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(32, 32, 4, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 2, 2), nn.ReLU(), nn.Conv2d(64, 64, 2, 2), nn.ReLU(),
            nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 2 * L))
        self.dec = nn.Sequential(
            nn.Linear(L, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(), nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, C, 4, 2, 1))

    def encode(self, x):
        h = self.enc(x)
        return h[:, :self.L], h[:, self.L:]

    def decode(self, z):
        return self.dec(z)


def conv_model(latent_dim=10):
    """The standard conv VAE of varstruct.models (random weights: timing does not depend on them)."""
    torch.manual_seed(0)
    try:
        from varstruct.models import VAE
    except ImportError:
        print("varstruct.models not available: using the stand-in conv architecture")
        return _ConvVAE(latent_dim).eval()
    return VAE((64, 64, 1), latent_dim, arch="conv").eval()


def best_interleaved(fns: dict, rounds=3) -> dict:
    """Min wall time of each function over ``rounds`` interleaved rounds (the CPU is shared, so
    interleaving keeps the ratios fair when the load changes)."""
    for fn in fns.values():
        fn()  # warm-up
    ts = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in ts.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anchors", type=int, default=200)
    ap.add_argument("--subset", type=int, default=20, help="anchors timed in the per-sample loop")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--run", default=None, help="a model dir to time `varstruct measure model` on")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus")

    ds = varstruct.datasets.get("dsprites")
    model = conv_model()
    A = args.anchors
    anchors = grid.sample_anchors(ds, A, 0)
    x = ds.render(anchors)  # [A, 64, 64, 1]
    d4 = grid.factor_directions(ds, anchors)[:, 1:]  # scale, orientation, posX, posY
    nxt = anchors.copy()
    nxt[:, 0] = (nxt[:, 0] + 1) % 3
    shape_step = (ds.render(nxt) - x).reshape(A, 1, -1).astype(np.float64)  # a 5th direction
    d = np.concatenate([shape_step, d4], axis=1)  # [A, 5, D]
    K = d.shape[1]
    print(f"{A} anchors x {K} directions = {A * K} Jacobian-vector products, conv encoder 64x64x1, L=10")

    xs = np.repeat(x, K, axis=0)  # the same A*K images

    def forward():
        with torch.no_grad():
            for s in range(0, len(xs), args.batch_size):
                model.encode(images_to_model(model, xs[s:s + args.batch_size]))

    n = min(args.subset, A)

    def loop():
        f = lambda v: model.encode(v)[0]  # noqa: E731
        out = []
        for a in range(n):
            J = torch.autograd.functional.jacobian(f, images_to_model(model, x[a:a + 1])).reshape(10, -1)
            out.append(J.double() @ torch.from_numpy(d[a]).T)
        return out
    t = best_interleaved({"jvp": lambda: encoder_jvp(model, x, d, args.batch_size), "fwd": forward, "loop": loop})
    t_jvp, t_fwd, t_loop = t["jvp"], t["fwd"], t["loop"] * A / n

    # agreement of the two
    ref = torch.stack(loop()).transpose(1, 2).numpy()
    got = encoder_jvp(model, x[:n], d[:n])
    err = np.abs(got - ref).max() / np.abs(ref).max()

    print(f"jvp+vmap (ours)           {t_jvp:8.3f} s")
    print(f"plain forward passes      {t_fwd:8.3f} s   -> ours / forward = {t_jvp / t_fwd:.2f}x (bar <= 3x)")
    print(f"per-anchor jacobian loop  {t_loop:8.3f} s   (timed on {n} anchors, x{A / n:g}) -> "
          f"speed-up {t_loop / t_jvp:.1f}x (bar >= 20x)")
    print(f"  per-(anchor, direction) loop would be {K}x that: {K * t_loop:.1f} s -> {K * t_loop / t_jvp:.0f}x")
    print(f"max relative difference ours vs loop: {err:.1e}")

    if args.run:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "varstruct", "measure", "model", args.run],
                           capture_output=True, text=True)
        dt = time.perf_counter() - t0
        print(r.stdout[-3000:], r.stderr[-2000:])
        print(f"varstruct measure model {args.run}: {dt:.1f} s (rc {r.returncode}; bar < 120 s)")


if __name__ == "__main__":
    main()
