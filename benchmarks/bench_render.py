"""Renderer throughput: images/s for each procedural dataset (bar: dsprites >= 20,000 on 2 cores).

    python benchmarks/bench_render.py [--n 20000] [--repeats 5] [dataset ...]

Prints the median and range over the repeats and the load average (the machine may be shared).
"""
import argparse
import os
import time

import numpy as np
import torch

from varstruct import data


def images_per_second(name: str, n: int, repeats: int) -> np.ndarray:
    """images/s of each repeat, [repeats]."""
    ds = data.get(name)
    idx = ds.sample_factors(n, 0)
    ds.render(idx[:256], rng=0)  # warm-up
    rates = []
    for r in range(repeats):
        t = time.perf_counter()
        ds.render(idx, rng=r)
        rates.append(n / (time.perf_counter() - t))
    return np.array(rates)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("datasets", nargs="*", default=["dsprites", "color_dsprites", "noisy_dsprites", "shapes3d"])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, {a.n} images, {a.repeats} repeats, "
          f"load avg (1 min) {os.getloadavg()[0]:.1f}")
    for name in a.datasets:
        r = images_per_second(name, a.n, a.repeats)
        print(f"{name:16s} median {np.median(r):8.0f} images/s (range {r.min():.0f}-{r.max():.0f})")


if __name__ == "__main__":
    main()
