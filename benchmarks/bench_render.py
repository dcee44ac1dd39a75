"""Renderer throughput: images/s for each procedural dataset (bar: dsprites >= 20,000 on 2 cores).

    python benchmarks/bench_render.py [--n 20000] [--repeats 3] [dataset ...]
"""
import argparse
import time

import torch

from varstruct import data


def images_per_second(name: str, n: int, repeats: int) -> float:
    ds = data.get(name)
    idx = ds.sample_factors(n, 0)
    ds.render(idx[:256], rng=0)  # warm-up
    best = float("inf")
    for r in range(repeats):
        t = time.perf_counter()
        ds.render(idx, rng=r)
        best = min(best, time.perf_counter() - t)
    return n / best


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("datasets", nargs="*", default=["dsprites", "color_dsprites", "noisy_dsprites", "shapes3d"])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, {a.n} images, best of {a.repeats}")
    for name in a.datasets:
        print(f"{name:16s} {images_per_second(name, a.n, a.repeats):10.0f} images/s")


if __name__ == "__main__":
    main()
