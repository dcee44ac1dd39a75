"""Training a zoo faster: M models of one architecture as one vectorised model
(``torch.func.stack_module_state`` + ``vmap``) against one model per pool worker (today's sweep).

Rows, all on dsprites, β-VAE (β 4), the standard conv network, batch 64 per model, Adam 1e-4,
the precision ``--precision`` (default: the trainer's auto), every row in fresh processes:

- ``pool``: ``--cores`` worker processes, each running varstruct's trainer
  (``varstruct.training.train``) on one model with 1 thread: today's
  ``varstruct sweep --workers N --threads 1``. Images/s from each run's own train_log.csv
  (rows after the warm-up).
- ``vmap M``: one process with ``--cores`` threads training M models as one: the parameters
  stacked ([M, ...] each), every model's loss (the trainer's objective, called through
  ``torch.func.functional_call``) under ``vmap`` with its own batch and its own noise
  (``randomness="different"``), the summed loss backpropagated once, one fused Adam over the
  stacked tensors (Adam is elementwise, so this is M independent Adams).

Figure: images/s per core = (models × batch × timed steps / wall seconds) / cores, three
interleaved rounds; the median and range are printed, with the load average before and after.
Adopt the vectorised path in ``sweep`` only if it is >= 1.3x the pool per core.

    python benchmarks/bench_vectorised_zoo.py [--rounds 3] [--steps 40] [--models 2,4]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from varstruct.resources import cpu_count  # noqa: E402  (the cores this process may use)

WARMUP = 10


def _config(seed, steps, precision):
    return {"dataset": "dsprites", "method": "beta_vae", "hparams": {"beta": 4.0}, "seed": seed, "steps": steps,
            "batch_size": 64, "lr": 1e-4, "latent_dim": 10, "log_every": 1, "checkpoint_every": 10 ** 6,
            "precision": precision}


def _pool_worker(args):
    seed, steps, precision, out = args
    from varstruct.runs.layout import RunDir
    from varstruct.training.loop import train

    train(_config(seed, steps, precision), out=out, threads=1, progress=False)
    log = RunDir(out).read_log()
    t = log["seconds"].to_numpy()
    return (steps - WARMUP) * 64, float(t[-1] - t[WARMUP - 1])


def pool_row(cores, steps, precision) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(s, steps, precision, str(Path(tmp) / f"m{s}")) for s in range(cores)]
        ctx = mp.get_context("spawn")
        with ctx.Pool(cores) as pool:
            res = pool.map(_pool_worker, jobs)
    return sum(n / t for n, t in res) / cores


def _vmap_worker(models, cores, steps, precision, q):
    import numpy as np
    import torch
    from torch.func import functional_call, stack_module_state, vmap

    from varstruct.models.nets import build_model
    from varstruct.training.config import TrainConfig, resolve
    from varstruct.training.loop import make_batch, step_streams
    from varstruct.training import precision as P

    torch.set_num_threads(cores)
    ds, objective, record = resolve(TrainConfig.from_dict(_config(0, steps, precision)))
    nets = []
    for m in range(models):
        torch.manual_seed(m)
        nets.append(build_model(record))
    params, buffers = stack_module_state(nets)
    base = build_model(record).to("meta")
    amp = P.autocast(record["precision"])

    class Proxy:
        def __init__(self, p):
            self.p = p

        def encode(self, x):
            with amp():
                out = functional_call(base.encoder, {k[8:]: v for k, v in self.p.items() if k.startswith("encoder.")}, (x,))
            return tuple(o.float() for o in out)

        def decode(self, z):
            with amp():
                out = functional_call(base.decoder, {k[8:]: v for k, v in self.p.items() if k.startswith("decoder.")}, (z,))
            return out.float()

    def one_loss(p, x):
        loss, _ = objective.loss(Proxy(p), x, 0)
        return loss

    batched = vmap(one_loss, randomness="different")
    opt = torch.optim.Adam(list(params.values()), lr=record["lr"], fused=True)
    t0 = None
    for t in range(steps):
        if t == WARMUP:
            t0 = time.perf_counter()
        xs = torch.stack([make_batch(ds, objective, 64, step_streams(m, t)[0]) for m in range(models)])
        opt.zero_grad(set_to_none=True)
        losses = batched(params, xs)
        losses.sum().backward()
        opt.step()
    dt = time.perf_counter() - t0
    assert np.isfinite(losses.detach().numpy()).all()
    q.put(models * 64 * (steps - WARMUP) / dt / cores)


def vmap_row(models, cores, steps, precision) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_vmap_worker, args=(models, cores, steps, precision, q))
    p.start()
    v = q.get()
    p.join()
    return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--models", default="2,4")
    ap.add_argument("--cores", type=int, default=cpu_count())
    ap.add_argument("--precision", default="auto")
    a = ap.parse_args(argv)
    from varstruct.training.precision import resolve_precision

    prec = resolve_precision(a.precision)
    ms = [int(m) for m in a.models.split(",")]
    rows = {"pool": []} | {f"vmap {m}": [] for m in ms}
    load0 = os.getloadavg()[0]
    for r in range(a.rounds):
        rows["pool"].append(pool_row(a.cores, a.steps, prec))
        for m in ms:
            rows[f"vmap {m}"].append(vmap_row(m, a.cores, a.steps, prec))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rows.items()), flush=True)
    print(f"dsprites beta_vae, batch 64 per model, {prec}, {a.cores} cores, {a.steps - WARMUP} timed steps; "
          f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    base = sorted(rows["pool"])[len(rows["pool"]) // 2]
    for k, v in rows.items():
        v = sorted(v)
        med = v[len(v) // 2]
        print(f"  {k:8s} images/s per core: median {med:.0f} (range {v[0]:.0f}-{v[-1]:.0f}); {med / base:.2f}x the pool")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
