"""Does bf16 training keep the model's quality? bf16 against fp32 over several seeds.

Settings (short runs, sized for a shared 2-core machine; pass larger --steps for a stronger test):

* dsprites: the conv β-VAE (β = 4, batch 64, Adam 1e-4, Bernoulli loss), ``--dsprites-steps``;
* toy_blobs: the reproduction's MLP β-VAE (256-256, 5 latents, Gaussian loss σ² = 0.005,
  Adam 1e-3, batch 64, β = 4) on ``toy_blobs`` r = 2, profile none, ``--toy-steps``.

For each seed and precision: train, then in fp32 on a fixed held-out set (the same for every
run) the reconstruction loss and the KL (mean over images, Σ over latents) and MIG of the
encoder means on ``--n-eval`` points. A metric "holds" when the bf16 median differs from the
fp32 median by no more than the fp32 seed-to-seed range (max − min).

    python benchmarks/bench_precision_quality.py [--seeds 3] [--dsprites-steps 500] [--toy-steps 3000]
        [--threads 1] [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import varstruct  # noqa: E402
from varstruct import data  # noqa: E402
from varstruct.metrics.evaluate import representation  # noqa: E402
from varstruct.metrics.mig import mig  # noqa: E402
from varstruct.models import load_model  # noqa: E402
from varstruct.models import losses as L  # noqa: E402
from varstruct.tensors import mean_encoder, to_torch  # noqa: E402

SETTINGS = {
    "dsprites": {"dataset": "dsprites", "method": "beta_vae", "hparams": {"beta": 4.0}, "batch_size": 64,
                 "lr": 1e-4, "recon": "bernoulli"},
    "toy_blobs": {"dataset": "toy_blobs", "dataset_params": {"r": 2.0, "profile": "none"}, "method": "beta_vae",
                  "hparams": {"beta": 4.0}, "arch": "mlp", "hidden": [256, 256], "latent_dim": 5,
                  "recon": "gaussian", "recon_var": 0.005, "lr": 1e-3, "batch_size": 64},
}


def held_out(ds, n: int):
    factors = ds.sample_factors(n, np.random.default_rng(12345))
    return to_torch(ds.render(factors, rng=np.random.default_rng(12346)))


def quality(run: Path, x: torch.Tensor, ds, n_eval: int) -> dict:
    model = load_model(run)
    cfg = model.config
    with torch.no_grad():
        mean, logvar = model.encode(x)
        logits = model.decode(mean)
        recon = (L.bernoulli_recon(logits, x) if cfg["recon"] == "bernoulli"
                 else L.gaussian_recon(logits, x, cfg["recon_var"]))
        kl = L.gaussian_kl(mean, logvar)
    codes, factors = representation(ds, mean_encoder(model), n_eval, np.random.default_rng(7))
    return {"recon": float(recon), "kl": float(kl), "mig": mig(codes, factors)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--dsprites-steps", type=int, default=500)
    p.add_argument("--toy-steps", type=int, default=3000)
    p.add_argument("--n-eval", type=int, default=5000, help="points for MIG")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--settings", default="toy_blobs,dsprites")
    p.add_argument("--json", default=None, help="also write the per-run numbers here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    steps = {"dsprites": a.dsprites_steps, "toy_blobs": a.toy_steps}
    results = {}
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.settings.split(","):
            base = SETTINGS[name]
            ds = data.get(base["dataset"], **base.get("dataset_params", {}))
            x = held_out(ds, 1024)
            rows = results[name] = {"fp32": [], "bf16": []}
            for seed in range(a.seeds):
                for prec in ("fp32", "bf16"):  # interleaved: the load drifts the same for both
                    t = time.time()
                    run = varstruct.train({**base, "steps": steps[name], "seed": seed, "precision": prec,
                                           "log_every": 100, "checkpoint_every": 10 ** 9},
                                          out=Path(tmp) / f"{name}-{prec}-{seed}")
                    q = quality(run, x, ds, a.n_eval)
                    q["seconds"] = time.time() - t
                    rows[prec].append(q)
                    print(f"{name:9s} seed {seed} {prec}: recon {q['recon']:.3f}  kl {q['kl']:.3f}  "
                          f"mig {q['mig']:.3f}  ({q['seconds']:.0f} s)", flush=True)
    load = os.getloadavg()
    print(f"\n{a.seeds} seeds; steps {steps}; threads {a.threads}; load average {load[0]:.1f}; "
          f"total {time.time() - t_start:.0f} s")
    print(f"{'setting':10s} {'metric':6s} {'fp32 median [min, max]':>28s} {'bf16 median [min, max]':>28s} "
          f"{'|Δmedian|':>9s} {'fp32 range':>10s}  holds")
    verdict = True
    for name, rows in results.items():
        for m in ("recon", "kl", "mig"):
            f = [r[m] for r in rows["fp32"]]
            b = [r[m] for r in rows["bf16"]]
            d, rng = abs(statistics.median(b) - statistics.median(f)), max(f) - min(f)
            ok = d <= rng
            verdict &= ok
            print(f"{name:10s} {m:6s} {statistics.median(f):10.4f} [{min(f):7.4f}, {max(f):7.4f}] "
                  f"{statistics.median(b):10.4f} [{min(b):7.4f}, {max(b):7.4f}] {d:9.4f} {rng:10.4f}  "
                  f"{'yes' if ok else 'NO'}")
    print(f"bf16 within the fp32 seed-to-seed spread on every metric: {'yes' if verdict else 'no'}")
    if a.json:
        Path(a.json).write_text(json.dumps({"steps": steps, "seeds": a.seeds, "results": results}, indent=1))


if __name__ == "__main__":
    main()
