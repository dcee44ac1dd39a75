"""Does bf16 encoding change the metrics? MIG and DCI of fp32 codes vs bf16-autocast codes.

Trains small models (or reuses the dirs under --work), encodes the same evaluation points once
with the model in fp32 and once under ``torch.autocast(bfloat16)`` (varstruct.tensors.encode_batches
with precision='bf16'), and prints MIG and DCI for both and their difference. The metrics may
use bf16 only if every difference is within 1e-3 (issue: bf16 encoding for metrics).

    python benchmarks/bench_encode_precision.py --work /tmp/bench_prec [--steps 600] [--points 2000]

Last result (2026-12-02, 2-core CPU with AVX-512 BF16, one torch thread, 2,000 / 1,000 points):
toy_blobs β-VAE (β=4, 600 steps), seeds 0 and 1: |ΔMIG| 1.7e-2 / 9.7e-3, |ΔDCI disentanglement|
0.12 / 0.30, |ΔDCI completeness| 0.093 / 0.17, |ΔDCI informativeness| 1.0e-2 / 5.0e-3;
dSprites β-VAE (β=4, 1,000 steps), seed 0: |ΔMIG| 8.6e-4, |ΔDCI| 2.8e-3 / 3.5e-3 / 4.0e-3.
Not within 1e-3, so the metrics encode in fp32 (varstruct.tensors.mean_encoder).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import varstruct
from varstruct.metrics import dci, mig
from varstruct.models.load import dataset_from_config, load_model
from varstruct.tensors import encode_batches

RUNS = {
    "toy_blobs": dict(dataset="toy_blobs", method="beta_vae", hparams={"beta": 4.0}, recon="gaussian",
                      dataset_params={"r": 2.0, "profile": "flip"}),
    "dsprites": dict(dataset="dsprites", method="beta_vae", hparams={"beta": 4.0}),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/bench_encode_precision")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--points", type=int, default=2000)
    p.add_argument("--runs", default="toy_blobs,dsprites")
    p.add_argument("--seeds", default="0")
    a = p.parse_args()
    torch.set_num_threads(1)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{'run':<14} {'seed':>4} {'metric':<28} {'fp32':>9} {'bf16':>9} {'|diff|':>9}  max|dz|/sd")
    worst = 0.0
    for name in a.runs.split(","):
        for seed in map(int, a.seeds.split(",")):
            out = work / f"{name}_s{seed}"
            if not (out / "model.safetensors").is_file():
                t = time.perf_counter()
                varstruct.train(dict(RUNS[name], seed=seed, steps=a.steps, log_every=100,
                                     checkpoint_every=10 ** 6), out=out, overwrite=True)
                print(f"# trained {out} in {time.perf_counter() - t:.0f} s")
            model = load_model(out)
            ds = dataset_from_config(model.config)
            rng = np.random.default_rng(seed)
            fac_tr = ds.sample_factors(a.points, rng)
            img_tr = ds.render(fac_tr, rng=rng)
            fac_te = ds.sample_factors(a.points // 2, rng)
            img_te = ds.render(fac_te, rng=rng)
            codes = {}
            for prec in ("fp32", "bf16"):
                codes[prec] = (encode_batches(model, img_tr, 256, prec)[0], encode_batches(model, img_te, 256, prec)[0])
            sd = codes["fp32"][0].std(0)
            dz = np.abs(codes["bf16"][0] - codes["fp32"][0]).max(0) / np.where(sd > 0, sd, 1)
            res = {}
            for prec, (ctr, cte) in codes.items():
                r = dci(ctr, fac_tr, cte, fac_te, n_jobs=1)
                res[prec] = {"mig": mig(ctr, fac_tr), "dci_disentanglement": r["disentanglement"],
                             "dci_completeness": r["completeness"],
                             "dci_informativeness_test": r["informativeness_test"]}
            for k in res["fp32"]:
                d = abs(res["fp32"][k] - res["bf16"][k])
                worst = max(worst, d)
                print(f"{name:<14} {seed:>4} {k:<28} {res['fp32'][k]:9.5f} {res['bf16'][k]:9.5f} {d:9.2e}  "
                      f"{dz.max():.2e}")
    print(f"# worst |diff| {worst:.2e}: bf16 {'within' if worst <= 1e-3 else 'NOT within'} 1e-3")


if __name__ == "__main__":
    main()
