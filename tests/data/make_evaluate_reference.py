"""Writes evaluate_reference_<case>.nc: ``varstruct.evaluate`` of a fixed encoder on a small toy_linear,
recorded from the code before the score registry replaced evaluate's if/elif chain
(tests/test_evaluate_reference.py checks that today's code gives the identical Dataset).

    python tests/data/make_evaluate_reference.py

The encoder (:class:`PixelEncoder`) uses element-wise float64 operations only (no reductions,
no BLAS), and toy_linear's rendering adds exact zeros only, so the codes are the same on every
machine. The files are written by ``varstruct.io.write_netcdf`` as the CLI writes scores.nc.
Cases: ``all`` (every metric, active_mig included) and
``sampling`` (beta_vae and factor_vae only: no code is encoded, so no ``latent`` coordinate).
"""
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).parent
DATASET = {"sizes": [6, 5, 4], "side": 12}
CASES = {
    "all": {"metrics": None, "seed": 3, "n_train": 300, "n_test": 150},
    "sampling": {"metrics": ["beta_vae", "factor_vae"], "seed": 4, "n_train": 120, "n_test": 60},
}
VOLATILE = ("created", "history", "source", "varstruct_version")  # when and by which version: not compared


class PixelEncoder(torch.nn.Module):
    """5 latents from one pixel of each toy_linear block (c_j = pixel - 0.5, float64):
    z0 = c0 + 0.3 c1, z1 = c1 - 0.2 c2 c0, z2 = c2 + 0.5 c0, z3 = c0 c1, z4 = 0.001 c2 (its KL
    to the prior is ~0: inactive for active_mig); logvar = -1, -0.5, 0, 0.2, 0."""

    def __init__(self, block: int):
        super().__init__()
        self.block = block
        self.register_buffer("logvar", torch.tensor([-1.0, -0.5, 0.0, 0.2, 0.0], dtype=torch.float64))

    def encode(self, x):
        flat = x.flatten(1)
        c0, c1, c2 = (flat[:, j * self.block] - 0.5 for j in range(3))
        mean = torch.stack([c0 + 0.3 * c1, c1 - 0.2 * c2 * c0, c2 + 0.5 * c0, c0 * c1, 0.001 * c2], 1)
        return mean, self.logvar.expand_as(mean)


def dataset():
    import varstruct

    return varstruct.datasets.get("toy_linear", **DATASET)


def evaluate_case(name: str):
    import varstruct

    ds = dataset()
    return varstruct.evaluate(PixelEncoder(ds.block), ds, **CASES[name])


def path(case: str) -> Path:
    return DATA / f"evaluate_reference_{case}.nc"


def main():
    from varstruct.io import write_netcdf

    for name in CASES:
        res = evaluate_case(name)
        write_netcdf(res, path(name))
        print(f"wrote {path(name)}: {len(res.data_vars)} variables")


if __name__ == "__main__":
    main()
