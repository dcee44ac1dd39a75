"""Writes dci_reference_inputs.npz: fixed DCI inputs (1,500 train / 500 test points, float32
codes, int8 factors) for the recorded reference outputs in dci_reference.json.

    python tests/data/make_dci_reference_inputs.py

Cases (seeded, numpy only):
- rotated:    3 factors of sizes 3, 4, 5; codes = (factors scaled to [0, 1], 2 noise
              dimensions, + 0.05 noise) times a random 5x5 rotation;
- noise:      3 factors of sizes 4, 5, 6; 5 codes of pure standard normal noise;
- duplicated: 3 factors of sizes 3, 4, 5; codes 0-2 = factors scaled to [0, 1] + 0.1 noise,
              codes 3 and 4 exact copies of codes 0 and 1 (exact ties between features).
"""
from pathlib import Path

import numpy as np

N_TRAIN, N_TEST, SEED = 1500, 500, 20261202
OUT = Path(__file__).with_name("dci_reference_inputs.npz")


def _factors(rng, sizes, n):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


def make_case(name, rng):
    n = N_TRAIN + N_TEST
    if name == "rotated":
        sizes = (3, 4, 5)
        f = _factors(rng, sizes, n)
        z = np.concatenate([f / (np.array(sizes) - 1.0), rng.normal(size=(n, 2))], axis=1)
        z += 0.05 * rng.normal(size=z.shape)
        q, r = np.linalg.qr(rng.normal(size=(5, 5)))
        codes = z @ (q * np.sign(np.diag(r)))
    elif name == "noise":
        sizes = (4, 5, 6)
        f = _factors(rng, sizes, n)
        codes = rng.normal(size=(n, 5))
    elif name == "duplicated":
        sizes = (3, 4, 5)
        f = _factors(rng, sizes, n)
        base = f / (np.array(sizes) - 1.0) + 0.1 * rng.normal(size=(n, 3))
        codes = np.concatenate([base, base[:, :2]], axis=1)
    else:
        raise ValueError(name)
    return codes.astype(np.float32), f.astype(np.int8)


def main():
    rng = np.random.default_rng(SEED)
    arrays = {}
    for name in ("rotated", "noise", "duplicated"):
        codes, f = make_case(name, rng)
        arrays[f"{name}_codes_train"], arrays[f"{name}_codes_test"] = codes[:N_TRAIN], codes[N_TRAIN:]
        arrays[f"{name}_factors_train"], arrays[f"{name}_factors_test"] = f[:N_TRAIN], f[N_TRAIN:]
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
