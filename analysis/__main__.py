"""Regenerate every figure: ``python -m analysis [--zoo pretrained/] [--out figures/] [--only NAME ...]``.

Each figure script runs in turn; a figure whose data is missing is skipped with one line naming
what is missing, and a script that fails is reported with its error and the others go on (exit
code 1 at the end). The numbers behind the figures are written to OUT/numbers.json.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from . import FIGURES
from ._common import Missing, Zoo


def run(names, zoo: Zoo, out: Path) -> tuple[dict, list[str]]:
    numbers, failed = {}, []
    for name in names:
        t = time.perf_counter()
        try:
            numbers[name] = getattr(importlib.import_module(f"analysis.{name}"), "make")(zoo, out)
            print(f"{name}: done in {time.perf_counter() - t:.1f} s", flush=True)
        except Missing as e:
            print(f"{name}: skipped, missing {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - one broken figure must not stop the others
            failed.append(name)
            print(f"{name}: FAILED ({type(e).__name__}: {e})", flush=True)
            traceback.print_exc(limit=3)
    return numbers, failed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zoo", default="pretrained/", help="the models dir to read (default pretrained/)")
    p.add_argument("--out", default="figures/", help="where to write PNG + PDF (default figures/)")
    p.add_argument("--only", nargs="+", choices=FIGURES, metavar="NAME", help=f"only these: {', '.join(FIGURES)}")
    a = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    numbers, failed = run(a.only or FIGURES, Zoo(a.zoo), out)
    path = out / "numbers.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    from varstruct.io import write_json

    write_json(path, {**old, **numbers})
    print(f"{len(numbers)} figure(s) in {time.perf_counter() - t0:.0f} s; numbers in {path}"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
