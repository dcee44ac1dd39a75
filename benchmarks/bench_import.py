"""Import speed: disentanglement_lib models per second (``varstruct import dlib``'s library call).

    python benchmarks/bench_import.py [--copies 20] [--repeats 3] [--fixture beta_vae_dsprites]

Copies one fixture zip of tests/data/dlib/ ``--copies`` times (each with its own model number
in the gin config, so each is a distinct model), imports the folder into a fresh models dir,
and prints models/s of each repeat (median, range) with the load average (the machine may be
shared). A final run over the already-imported folder times the idempotent skip.
"""
import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from varstruct.importers import dlib as D

FIX = Path(__file__).resolve().parents[1] / "tests" / "data" / "dlib"


def make_copies(fixture: str, n: int, folder: Path) -> None:
    src = FIX / f"{fixture}.zip"
    for i in range(n):
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(folder / f"{i}.zip", "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename.endswith(D.TRAIN_GIN):
                    data += f"\nmodel.model_num = {i}\n".encode()
                zout.writestr(info.filename, data)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--copies", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--fixture", default="beta_vae_dsprites")
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "zoo"
        src.mkdir()
        make_copies(a.fixture, a.copies, src)
        D.import_models([FIX / f"{a.fixture}.zip"], Path(tmp) / "warm")  # imports, first-call costs
        rates = []
        for r in range(a.repeats):
            out = Path(tmp) / f"m{r}"
            t = time.perf_counter()
            res = D.import_models([src], out)
            rates.append(a.copies / (time.perf_counter() - t))
            assert all(x.state == "imported" for x in res), res
        t = time.perf_counter()
        res = D.import_models([src], Path(tmp) / "m0")
        skip = a.copies / (time.perf_counter() - t)
        assert all(x.state == "skipped" for x in res)
    rates = np.array(rates)
    print(f"import dlib, {a.copies} copies of {a.fixture}: {np.median(rates):.1f} models/s "
          f"(range {rates.min():.1f}-{rates.max():.1f} over {a.repeats} repeats); re-run (all skipped): "
          f"{skip:.0f} models/s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
