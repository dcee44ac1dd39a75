"""Copy the runs of a models dir that meet the convergence criterion into another (a zoo's gate).

``python -m varstruct.study.keep_converged SRC DST``

Every finished run dir under SRC (trained, scored; :func:`varstruct.study.collect.find_runs`)
whose own train_log.csv meets the criterion (:func:`varstruct.training.convergence.run_convergence`)
is copied to the same relative path under DST, without its lock files; a run already in DST is
left alone. Prints one line per run: copied, present, unconverged (with its improvement) or
unfinished. Exit 0, or 2 with one line for bad arguments.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from ..errors import ConfigError, VarstructError, first_line

SKIP = (".lock", ".lock.pid")


def keep_converged(src, dst) -> dict:
    """{relative path: "copied" | "present" | "unconverged" | "unfinished"} for every run under src."""
    from ..runs.layout import RunDir
    from ..training.convergence import run_convergence
    from .collect import find_runs

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ConfigError(f"{src}: no such models dir")
    out = {}
    for path in find_runs(src):
        rel = path.relative_to(src).as_posix()
        rd = RunDir(path)
        if not (rd.weights_path.is_file() and rd.has_scores):
            out[rel] = "unfinished"
            continue
        if not run_convergence(path)["converged"]:
            out[rel] = "unconverged"
            continue
        target = dst / rel
        if target.exists():
            out[rel] = "present"
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(path, tmp, ignore=shutil.ignore_patterns(*SKIP))
        tmp.rename(target)
        out[rel] = "copied"
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m varstruct.study.keep_converged SRC DST", file=sys.stderr)
        return 2
    try:
        res = keep_converged(*argv)
    except VarstructError as e:
        print(f"error: {first_line(e)}", file=sys.stderr)
        return 2
    for rel, what in res.items():
        print(f"{what:12s} {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
