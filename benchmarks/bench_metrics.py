"""Wall time of each metric on 10,000 train / 5,000 test dSprites-like points (10 codes, 5 factors
of sizes 3, 6, 40, 32, 32; codes = noisy nonlinear functions of the factors), and DCI per call
with 5 and 10 codes: backend "fast" (numba, all cores) against the reference's classifiers
(backend "sklearn": one GradientBoostingClassifier per factor, one after the other, as
disentanglement_lib), run back to back, interleaved, ``--repeats`` times; prints the median and
the range of each, the speed-up (ratio of medians) and the largest difference of any score or
importance between the two (0: the same values).

    python benchmarks/bench_metrics.py [--n-train 10000] [--n-test 5000] [--skip-reference]
                                       [--sampling] [--skip-arrays] [--dci-only]
                                       [--codes 5,10] [--repeats 3]

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
from varstruct.resources import cpu_count  # noqa: E402

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


def timed_cpu(fn):
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    c = time.process_time()
    out, t = timed(fn)
    return out, t, time.process_time() - c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument("--skip-reference", action="store_true", help="skip the single-process sklearn DCI")
    ap.add_argument("--sampling", action="store_true", help="also time the sampling-based scores")
    ap.add_argument("--skip-arrays", action="store_true", help="skip the array metrics and DCI")
    ap.add_argument("--dci-only", action="store_true", help="only DCI")
    ap.add_argument("--codes", default="5,10", help="numbers of codes for the DCI rows")
    ap.add_argument("--repeats", type=int, default=3, help="DCI calls per backend (interleaved)")
    args = ap.parse_args()
    c, f = dsprites_like(args.n_train, np.random.default_rng(0))
    ct, ft = dsprites_like(args.n_test, np.random.default_rng(1))
    print(f"{args.n_train} train / {args.n_test} test points, {c.shape[1]} codes, factor sizes {SIZES}; "
          f"{cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    rows = [] if (args.skip_arrays or args.dci_only) else [("mig", lambda: M.mig(c, f)),
            ("sap", lambda: M.sap(c, f, ct, ft)),
            ("modularity_explicitness", lambda: M.modularity_explicitness(c, f, ct, ft)["modularity"]),
            ("irs", lambda: M.irs(c, f)),
            ("unsupervised", lambda: M.unsupervised_scores(c)["gaussian_total_correlation"])]
    for name, fn in rows:
        value, t = timed(fn)
        print(f"{name:28s} {t:8.2f} s   value {value:.4f}")

    keys = ("disentanglement", "completeness", "informativeness_train", "informativeness_test")
    for n_codes in ([] if args.skip_arrays else [int(x) for x in args.codes.split(",")]):
        c, f = dsprites_like(args.n_train, np.random.default_rng(0), n_codes)
        ct, ft = dsprites_like(args.n_test, np.random.default_rng(1), n_codes)
        times = {"fast": [], "sklearn": []}
        res = {}
        for _ in range(args.repeats):                      # interleaved: fast, reference, ...
            for backend in (("fast",) if args.skip_reference else ("fast", "sklearn")):
                res[backend], t, cpu = timed_cpu(lambda: M.dci(c, f, ct, ft, backend=backend, random_state=0))
                times[backend].append(t)
                print(f"  dci {n_codes:2d} codes {backend:8s} {t:8.2f} s (CPU {cpu:.1f} s)   load {os.getloadavg()[0]:.1f}   "
                      + "  ".join(f"{k[:6]} {res[backend][k]:.4f}" for k in keys), flush=True)
        for backend, ts in times.items():
            if ts:
                print(f"dci {n_codes:2d} codes {backend:8s} median {np.median(ts):8.2f} s  "
                      f"range {min(ts):.2f}-{max(ts):.2f} s  ({len(ts)} runs)")
        if times["sklearn"]:
            dev = max(max(abs(res["fast"][k] - res["sklearn"][k]) for k in keys),
                      float(np.abs(res["fast"]["importance_matrix"] - res["sklearn"]["importance_matrix"]).max()))
            print(f"dci {n_codes:2d} codes speed-up fast vs reference {np.median(times['sklearn']) / np.median(times['fast']):.2f}x; "
                  f"max |difference| of scores and importances {dev:.1e}")

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
