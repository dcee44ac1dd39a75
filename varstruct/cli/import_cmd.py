"""`varstruct import dlib SOURCE... -o MODELS_DIR`: disentanglement_lib's released models as run dirs
(docs/importing.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from .common import app, console

import_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="Import models trained elsewhere as run dirs (docs/importing.md).")
app.add_typer(import_app, name="import")


@import_app.command("dlib")
def import_dlib_cmd(
    sources: List[Path] = typer.Argument(..., metavar="SOURCE...", show_default=False,
                                         help="A disentanglement_lib model zip (unsupervised_study_v1/<n>.zip), "
                                              "its unpacked folder, or a folder of them."),
    out: Path = typer.Option(..., "--out", "-o", metavar="MODELS_DIR", show_default=False,
                             help="Models folder: each model becomes MODELS_DIR/dlib_<n> (created if missing)."),
    data_files: Optional[List[str]] = typer.Option(None, "--data-file", metavar="DATASET=PATH", show_default=False,
                                                   help="Record PATH as the data file of the models of DATASET "
                                                        "(repeatable; needed for smallnorb, cars3d, mpi3d)."),
):
    """Import disentanglement_lib's released models (TF-Hub modules in zips) as run dirs: config.json,
    model.safetensors, reference_scores.nc (dlib's recorded scores), status "imported". Models already
    imported are skipped; a malformed source gets one line and the rest go on (exit 2 at the end)."""
    from ..errors import VarstructError
    from ..importers.dlib import import_models

    files = {}
    for item in data_files or []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise VarstructError(f"--data-file {item!r}: give DATASET=PATH, e.g. --data-file cars3d=/data/cars")
        p = Path(path).expanduser()
        if not p.exists():
            raise VarstructError(f"--data-file {item}: no such file or folder")
        files[name.strip()] = str(p.resolve())

    def report(r):
        if r.state == "failed":
            print(f"error: {r.message}", file=sys.stderr, flush=True)

    results = import_models(sources, out, data_files=files, progress=True, on_result=report)
    n = {s: sum(r.state == s for r in results) for s in ("imported", "skipped", "failed")}
    console.print(f"{out}: imported {n['imported']}, skipped {n['skipped']} (already imported), "
                  f"failed {n['failed']}", markup=False, highlight=False, soft_wrap=True)
    if n["failed"]:
        raise typer.Exit(2)
