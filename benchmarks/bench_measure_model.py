"""Benchmark: jacobian_response (forward-mode jvp, vmapped over directions) for 200 anchors x 5
directions with the standard 64x64x1 conv encoder, against

- a per-sample loop of ``torch.autograd.functional.jacobian`` (one full Jacobian [L, D] per
  (anchor, direction) sample, times its direction; timed on ``--subset`` samples and
  extrapolated to all 1000), and, for reference, a loop with one Jacobian per anchor shared by
  its 5 directions, and
- the plain forward passes of the same 1000 (anchor, direction) images (the limit).

Optionally (``--run DIR``) times ``python -m varstruct measure model DIR`` end to end.
Usage: python benchmarks/bench_measure_model.py [--subset 20] [--threads 1] [--run MODEL_DIR]
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


def conv_model(latent_dim=10):
    """The standard conv VAE of varstruct.models (random weights: timing does not depend on them)."""
    from varstruct.models import VAE

    torch.manual_seed(0)
    return VAE((64, 64, 1), latent_dim, arch="conv").eval()


def best_interleaved(fns: dict, rounds=3) -> dict:
    """{name: (min wall s, min process CPU s)} of each function over ``rounds`` interleaved rounds.

    The CPU is shared: interleaving keeps ratios fair when the load changes, and with one
    thread the process CPU time is the load-independent figure (it excludes time spent waiting
    for a core)."""
    for fn in fns.values():
        fn()  # warm-up
    ts = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            ts[k].append((time.perf_counter() - w0, time.process_time() - c0))
    return {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in ts.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anchors", type=int, default=200)
    ap.add_argument("--subset", type=int, default=20, help="samples timed in the per-sample loop (a multiple of 5)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's). On a busy machine 2 threads make the many "
                         "small ops of the per-sample loop erratic (up to 40x slower); 1 thread is stable")
    ap.add_argument("--run", default=None, help="a model dir to time `varstruct measure model` on")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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

    n = min(args.subset, A * K)
    f = lambda v: model.encode(v)[0]  # noqa: E731
    dt = torch.from_numpy(d)

    def loop_samples():
        """The per-sample loop: for each (anchor, direction) sample, its Jacobian [L, D] · d."""
        out = []
        for i in range(n):
            a, k = divmod(i, K)
            J = torch.autograd.functional.jacobian(f, images_to_model(model, x[a:a + 1])).reshape(10, -1)
            out.append(J.double() @ dt[a, k])
        return out

    def loop_anchors():
        """A smarter loop: one Jacobian per anchor, applied to its K directions."""
        out = []
        for a in range(n // K):
            J = torch.autograd.functional.jacobian(f, images_to_model(model, x[a:a + 1])).reshape(10, -1)
            out.append(J.double() @ dt[a].T)
        return out

    t = best_interleaved({"jvp": lambda: encoder_jvp(model, x, d, args.batch_size), "fwd": forward}, rounds=5)
    tl = best_interleaved({"samples": loop_samples, "anchors": loop_anchors}, rounds=2)
    t_jvp, t_fwd = np.array(t["jvp"]), np.array(t["fwd"])
    t_loop, t_loop_a = np.array(tl["samples"]) * A * K / n, np.array(tl["anchors"]) * A / (n // K)

    # agreement of the two
    ref = torch.stack(loop_anchors()).transpose(1, 2).numpy()
    got = encoder_jvp(model, x[:n // K], d[:n // K])
    err = np.abs(got - ref).max() / np.abs(ref).max()

    def row(name, v, note=""):
        print(f"{name:27s} {v[0]:9.3f} s {v[1]:9.3f} s   {note}")

    print(f"{'':27s} {'wall':>11s} {'CPU':>11s}")
    row("jvp+vmap (ours)", t_jvp)
    row("plain forward passes", t_fwd, "ours / forward = %.2fx wall, %.2fx CPU (bar <= 3x)" % tuple(t_jvp / t_fwd))
    row("per-sample jacobian loop", t_loop, f"timed on {n} samples, x{A * K / n:g}: speed-up "
        "%.1fx wall, %.1fx CPU (bar >= 20x)" % tuple(t_loop / t_jvp))
    row("per-anchor jacobian loop", t_loop_a, f"one Jacobian per anchor for its {K} directions, timed on {n // K} "
        "anchors: speed-up %.1fx wall, %.1fx CPU" % tuple(t_loop_a / t_jvp))
    print(f"max relative difference ours vs loop: {err:.1e}")

    if args.run:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "varstruct", "measure", "model", args.run, "--overwrite"],
                           capture_output=True, text=True)
        dt = time.perf_counter() - t0
        print(r.stdout[-3000:], r.stderr[-2000:])
        print(f"varstruct measure model {args.run}: {dt:.1f} s (rc {r.returncode}; bar < 120 s)")


if __name__ == "__main__":
    main()
