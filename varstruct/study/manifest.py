"""Pack a models dir for distribution: half-precision weights and a manifest with sha256.

``python -m varstruct.study.manifest ROOT [--half float16|bfloat16] [--without-weights SUBDIR ...]``

- ``--half``: rewrite every run's ``model.safetensors`` with its float32 tensors stored as
  float16 (or bfloat16); loading upcasts them to float32 (:func:`varstruct.models.load.load_model`).
  A tensor outside float16's finite range keeps the file in float32. Idempotent.
- ``--without-weights SUBDIR``: release the scored runs under ROOT/SUBDIR as results only
  (:func:`release_without_weights`: the weights' sha256 is kept in a sidecar, the weights go).
- ``ROOT/manifest.csv``: one row per run dir under ROOT (as :func:`varstruct.collect` finds them):
  its path relative to ROOT, its state (:meth:`RunDir.progress`: measured, scored, released, ...), the config fields, the main global scores, the convergence verdict
  from its own train_log.csv (trained_steps, converged, recon_improvement), the weights' dtype,
  size and sha256. Loading a run listed there checks the weights against that sha256
  (:func:`varstruct.runs.weights.verify_sha256`, which reads the manifest: the file name and the
  ``path`` and ``weights_sha256`` columns are its contract, :data:`varstruct.runs.weights.MANIFEST`).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from ..errors import ConfigError, VarstructError, first_line

CONFIG_FIELDS = ("dataset", "dataset_params", "method", "hparams", "seed", "steps", "batch_size", "latent_dim",
                 "arch", "hidden", "lr", "recon", "recon_var", "mask", "precision", "until_converged", "baseline")
SCORES = ("mig", "active_mig", "dci_disentanglement", "dci_completeness", "dci_informativeness_test", "sap",
          "modularity", "explicitness_test")
HALF = {"float16": "F16", "bfloat16": "BF16"}


def pack_half(weights_path, dtype: str = "float16") -> str:
    """Store a weights file's float32 tensors as ``dtype``; return the file's float dtype afterwards
    ("float32" when a tensor would overflow float16, left unchanged)."""
    import torch

    from ..runs.weights import read_weights, write_weights

    if dtype not in HALF:
        raise ConfigError(f"--half must be one of {', '.join(HALF)}, got {dtype!r}")
    tdtype = getattr(torch, dtype)
    tensors = read_weights(weights_path)
    floats = {k: v for k, v in tensors.items() if v.is_floating_point()}
    if all(v.dtype == tdtype for v in floats.values()):
        return dtype
    limit = torch.finfo(tdtype).max
    if any(v.dtype == torch.float32 and v.abs().max().item() > limit for v in floats.values() if v.numel()):
        return "float32"
    out = {k: v.to(tdtype) if v.dtype == torch.float32 else v for k, v in tensors.items()}
    write_weights(weights_path, out, metadata={"format": "pt", "stored_dtype": dtype, "load_dtype": "float32"})
    return dtype


def release_without_weights(run_dir) -> Path:
    """Record a scored run's weights sha256 in ``model.safetensors.sha256`` and remove the weights:
    the run dir then holds its results only (state ``released``; :class:`varstruct.RunState`).
    Training its config.json again gives the same weights (CPU, the same precision and threads),
    which the recorded hash checks. ConfigError for a run that is not scored."""
    from ..runs.layout import RunDir, RunState
    from ..runs.weights import write_sha256

    rd = RunDir(run_dir)
    state = rd.progress()
    if state is RunState.RELEASED:
        return rd.path
    if state not in (RunState.SCORED, RunState.MEASURED):
        raise ConfigError(f"{rd.path}: only a scored run can be released without its weights (it is {state})")
    write_sha256(rd.weights_path)
    rd.weights_path.unlink()
    return rd.path


def weights_dtype(weights_path) -> str:
    """The float dtype(s) of a safetensors file, from its header ("" without float tensors)."""
    from ..runs.weights import float_dtypes

    return float_dtypes(weights_path)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _convergence_cells(path) -> dict:
    """trained_steps (the last logged step), converged (True/False; "" without a verdict) and
    recon_improvement of a run, from its own train_log.csv (:mod:`varstruct.training.convergence`)."""
    from ..training.convergence import run_convergence

    try:
        v = run_convergence(path)
    except (VarstructError, ValueError, OSError):
        return {"trained_steps": "", "converged": "", "recon_improvement": ""}
    return {"trained_steps": _cell(v["steps"]), "converged": _cell(v["converged"]),
            "recon_improvement": "" if v["converged"] is None else f"{v['improvement']:.6g}"}


def manifest_rows(root) -> list[dict]:
    """One dict per run dir under ``root`` (sorted by path)."""
    from ..runs.weights import file_sha256
    from ..runs.layout import RunDir
    from .collect import find_runs

    root = Path(root)
    rows = []
    for path in find_runs(root):
        rd = RunDir(path)
        row = {"path": path.relative_to(root).as_posix(), "group": path.relative_to(root).parts[0],
               "state": rd.progress(verify=False).value}  # its files; the hash is what this row records
        try:
            cfg = rd.read_config()
        except VarstructError:
            cfg = {}
        row.update({k: _cell(cfg.get(k)) for k in CONFIG_FIELDS})
        scores = {}
        if rd.has_scores:
            s = rd.read_scores()
            scores = {k: float(s[k]) for k in SCORES if k in s and s[k].ndim == 0}
        row.update({k: _cell(scores.get(k)) for k in SCORES})
        row["has_measures"] = str(rd.has_measures)
        row.update(_convergence_cells(path))
        if rd.weights_path.is_file():
            row.update(weights_dtype=weights_dtype(rd.weights_path), weights_bytes=str(rd.weights_path.stat().st_size),
                       weights_sha256=file_sha256(rd.weights_path))
        elif rd.is_released:  # the recorded hash of the weights it was released without
            digest = (path / rd.WEIGHTS_SHA).read_text().split()[0]
            row.update(weights_dtype="", weights_bytes="", weights_sha256=digest)
        else:
            row.update(weights_dtype="", weights_bytes="", weights_sha256="")
        rows.append(row)
    return rows


def write_manifest(root) -> Path:
    """Write ``root/manifest.csv`` (atomically) and return its path."""
    from ..io import write_text
    from ..runs.weights import MANIFEST

    rows = manifest_rows(root)
    if not rows:
        raise ConfigError(f"{root}: no run dirs to list")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return write_text(Path(root) / MANIFEST, buf.getvalue())


def main(argv=None) -> int:
    from ..runs.layout import RunDir
    from .collect import find_runs

    ap = argparse.ArgumentParser(prog="python -m varstruct.study.manifest", description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="models dir (e.g. pretrained/)")
    ap.add_argument("--half", choices=sorted(HALF), help="store the weights in this half precision first")
    ap.add_argument("--without-weights", action="append", default=[], metavar="SUBDIR",
                    help="release the runs under ROOT/SUBDIR without their weights (their sha256 is kept); "
                         "repeatable")
    args = ap.parse_args(argv)
    try:
        root = Path(args.root)
        if not root.is_dir():
            raise ConfigError(f"{root}: no such models dir")
        if args.half:
            kept = [p for p in find_runs(root) if RunDir(p).weights_path.is_file()
                    and pack_half(RunDir(p).weights_path, args.half) != args.half]
            for p in kept:
                print(f"kept float32 (a value beyond {args.half}'s range): {p}", file=sys.stderr)
        if args.without_weights:  # list the packed weights first: runs new to an existing manifest.csv
            write_manifest(root)   # are otherwise unverifiable (broken) until it is rewritten
        for sub in args.without_weights:  # after packing: the recorded hash is the shipped file's
            if not (root / sub).is_dir():
                raise ConfigError(f"--without-weights {sub}: no such folder under {root}")
            runs = find_runs(root / sub)
            for p in runs:
                release_without_weights(p)
            print(f"released {len(runs)} run(s) under {root / sub} without their weights")
        path = write_manifest(root)
    except VarstructError as e:
        print(f"error: {first_line(e)}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
