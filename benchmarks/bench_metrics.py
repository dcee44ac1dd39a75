"""Wall time of each metric on 10,000 train / 5,000 test dSprites-like points (10 codes, 5 factors
of sizes 3, 6, 40, 32, 32; codes = noisy nonlinear functions of the factors), and DCI beside a
single-process run of the reference's classifiers (one sklearn GradientBoostingClassifier per
factor, one after the other).

    python benchmarks/bench_metrics.py [--n-train 10000] [--n-test 5000] [--skip-reference]
                                       [--sampling] [--skip-arrays]

--sampling also times the BetaVAE / FactorVAE scores on dsprites with a fixed random-projection
encoder (mostly rendering: 1.9M + 1M images).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
from varstruct import metrics as M  # noqa: E402

SIZES = (3, 6, 40, 32, 32)


def dsprites_like(n, rng, n_codes=10):
    f = np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)
    u = f / (np.array(SIZES) - 1.0)
    mix = np.random.default_rng(123).normal(size=(len(SIZES), n_codes)) * 0.3
    mix[np.arange(len(SIZES)), np.arange(len(SIZES))] += 1.5
    codes = np.tanh(u @ mix - 0.5) + 0.05 * rng.normal(size=(n, n_codes))
    return codes, f


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument("--skip-reference", action="store_true", help="skip the single-process sklearn DCI")
    ap.add_argument("--sampling", action="store_true", help="also time the sampling-based scores")
    ap.add_argument("--skip-arrays", action="store_true", help="skip the array metrics and DCI")
    args = ap.parse_args()
    c, f = dsprites_like(args.n_train, np.random.default_rng(0))
    ct, ft = dsprites_like(args.n_test, np.random.default_rng(1))
    print(f"{args.n_train} train / {args.n_test} test points, {c.shape[1]} codes, factor sizes {SIZES}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    rows = [] if args.skip_arrays else [("mig", lambda: M.mig(c, f)),
            ("sap", lambda: M.sap(c, f, ct, ft)),
            ("modularity_explicitness", lambda: M.modularity_explicitness(c, f, ct, ft)["modularity"]),
            ("irs", lambda: M.irs(c, f)),
            ("unsupervised", lambda: M.unsupervised_scores(c)["gaussian_total_correlation"])]
    for name, fn in rows:
        value, t = timed(fn)
        print(f"{name:28s} {t:8.2f} s   value {value:.4f}")

    keys = ("disentanglement", "completeness", "informativeness_train", "informativeness_test")

    def show(label, r, t):
        print(f"{label:28s} {t:8.2f} s   " + "  ".join(f"{k[:6]} {r[k]:.4f}" for k in keys))
    if not args.skip_arrays:
        fast, t_fast = timed(lambda: M.dci(c, f, ct, ft))
        show("dci (fast, threads)", fast, t_fast)
    if not (args.skip_arrays or args.skip_reference):
        ref, t_ref = timed(lambda: M.dci(c, f, ct, ft, backend="sklearn", n_jobs=1))
        show("dci (sklearn, 1 process)", ref, t_ref)
        par, t_par = timed(lambda: M.dci(c, f, ct, ft, backend="sklearn"))
        show("dci (sklearn, threads)", par, t_par)
        dev_fast = max(abs(fast[k] - ref[k]) for k in keys)
        dev_imp = np.abs(fast["importance_matrix"] - ref["importance_matrix"]).max()
        same_par = all(par[k] == ref[k] for k in keys) and \
            np.array_equal(par["importance_matrix"], ref["importance_matrix"])
        print(f"speed-up vs the single-process reference: fast {t_ref / t_fast:.2f}x, "
              f"sklearn threads {t_ref / t_par:.2f}x")
        print(f"fast vs reference: max |score diff| {dev_fast:.2e}, max |importance diff| {dev_imp:.2e}; "
              f"sklearn threads identical to the reference: {same_par}")

    if args.sampling:
        import varstruct
        ds = varstruct.datasets.get("dsprites")
        proj = np.random.default_rng(0).normal(size=(64 * 64, 10)) / 64.0

        def encode(images):
            return np.tanh(images.reshape(len(images), -1) @ proj)
        for name, fn in (("beta_vae_score", lambda: M.beta_vae_score(ds, encode)),
                         ("factor_vae_score", lambda: M.factor_vae_score(ds, encode))):
            value, t = timed(fn)
            print(f"{name:28s} {t:8.2f} s   eval accuracy {value['eval_accuracy']:.4f}")


if __name__ == "__main__":
    main()
