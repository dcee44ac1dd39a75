"""Shared pieces of the CLI: the typer apps, the options every command spells the same way,
choices, ``-p`` parsing, outputs and start-up (threads). Torch-free: help and validation errors
answer without importing torch or xarray."""
from __future__ import annotations

import contextlib
import enum
import logging
import sys
import json
import math
import os
from pathlib import Path
from typing import List, Optional

import typer

from .. import catalog
from ..errors import DatasetError, OutputError, VarstructError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="varstruct: the structure of variance in data and what VAEs learn from it. "
                       "Every command: `varstruct COMMAND --help`; the manual is docs/cli.md.")
measure_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                          help="Measure the variance structure of a dataset or a model.")
app.add_typer(measure_app, name="measure")

def _console():
    from rich.console import Console

    return Console()


class _LazyConsole:
    """rich's Console, built on first use."""
    _c = None

    def __getattr__(self, name):
        if _LazyConsole._c is None:
            _LazyConsole._c = _console()
        return getattr(_LazyConsole._c, name)


console = _LazyConsole()


# ---- choices (typer lists them in --help; every table is varstruct.catalog's) -------------------
def _enum(name: str, values) -> type[enum.Enum]:
    return enum.Enum(name, {v: v for v in values}, type=str)


def dataset_names() -> list[str]:
    """The rendered datasets, then those read only from their release files (--data-file)."""
    from ..data.registry import file_only_names, names

    return names() + file_only_names()


METHODS, METRICS = tuple(catalog.METHODS), catalog.METRICS
Dataset = _enum("Dataset", dataset_names())
Precision = _enum("Precision", catalog.PRECISIONS)
Method = _enum("Method", METHODS)
Arch = _enum("Arch", catalog.ARCHS)
Recon = _enum("Recon", catalog.RECONS)
MaskMode = _enum("MaskMode", catalog.MASK_MODES)
Baseline = _enum("Baseline", catalog.BASELINES)
Response = _enum("Response", catalog.RESPONSES)


# ---- the one table of option names: library parameter -> CLI option ---------------------------
# Training-config fields (varstruct.training.TrainConfig) and hyper-parameters ("hparams.NAME"),
# as `varstruct train` spells them. A hyper-parameter with its own option (catalog: option=True)
# is --NAME with dashes unless listed here; the others are given with --hparam NAME=VALUE.
FLAGS = {
    "dataset": "DATASET", "method": "--method", "dataset_params": "-p", "data_file": "--data-file",
    "seed": "--seed", "steps": "--steps", "batch_size": "--batch-size", "latent_dim": "--latents",
    "arch": "--arch", "lr": "--lr", "recon": "--recon", "recon_var": "--recon-var", "mask": "--mask",
    "mask.mode": "--mask", "mask.l1": "--mask-l1", "precision": "--precision", "log_every": "--log-every",
    "checkpoint_every": "--checkpoint-every", "out": "--out", "hparams": "--hparam",
    "until_converged": "--until-converged", "until_converged.min_steps": "--until-converged",
    "until_converged.check_every": "--check-every",
    "baseline": "--baseline", "baseline.kind": "--baseline", "baseline.n_fit": "--n-fit",
    "hparams.p": "--nested-p",
}
FLAGS.update({f"hparams.{h.name}": "--" + h.name.replace("_", "-") for m in catalog.METHODS.values()
              for h in m.hparams if h.option and f"hparams.{h.name}" not in FLAGS})


def flag(param: str | None) -> str | None:
    """The CLI option of a library parameter name (None if it has none)."""
    if param is None:
        return None
    if param in FLAGS:
        return FLAGS[param]
    if param.startswith("hparams."):
        return f"--hparam {param.split('.', 1)[1]}"
    return None


def with_flags(e: BaseException) -> BaseException:
    """A library error whose ``param`` has an option, reworded with the option's name (same
    type): ``"latent_dim must be ..."`` becomes ``"--latents must be ..."``, ``"batch_size: the
    request needs ..."`` ``"--batch-size: the request needs ..."``; a message that does not start
    with the parameter's name gets the option as a prefix. Anything else is returned as it is."""
    opt = flag(getattr(e, "param", None)) if isinstance(e, VarstructError) else None
    if opt is None:
        return e
    msg, name = str(e), e.param.split(".", 1)[1] if e.param.startswith("hparams.") else e.param
    if msg.startswith(name + " ") or msg.startswith(name + ":"):
        return type(e)(opt + msg[len(name):])
    return type(e)(f"{opt}: {msg}")


def value(choice):
    """The string of an Enum choice (or None)."""
    return None if choice is None else getattr(choice, "value", choice)


# ---- options spelled the same way in every command -----------------------------------------
def dataset_argument():
    return typer.Argument(..., help="Dataset name (see `varstruct datasets`).", show_default=False,
                          metavar="DATASET")


def param_option():
    return typer.Option(None, "--param", "-p", metavar="KEY=VALUE",
                        help="Dataset parameter (repeatable). VALUE is JSON or a comma-separated "
                             "list: -p r=3 -p profile=flip -p sizes=5,5.")


def data_file_option():
    return typer.Option(None, "--data-file", help="Read the dataset from this file instead of rendering "
                                                  "it: dSprites .npz, 3dshapes .h5, MPI3D .npz, SmallNORB "
                                                  "*-dat.mat, a Cars3D .mat (its folder is read).")


def seed_option(what: str):
    return typer.Option(0, "--seed", "-s", help=f"Seed of {what}, in [0, 2^63).")


def anchors_option(default: int):
    return typer.Option(default, "--anchors", "-a", help="Anchors drawn from the factor grid.")


def pca_anchors_option():
    return typer.Option(None, "--pca-anchors", show_default=False,
                        help="Anchors used for local PCA (the first ones), at most --anchors. "
                             "[default: min(200, --anchors)]")


def check_anchors(anchors: int, pca_anchors: int | None) -> tuple[int, int]:
    """(A, P): --anchors >= 1 and --pca-anchors in [0, A] (default min(200, A)), or one line."""
    from ..validate import check_int

    A = check_int("--anchors", anchors, 1)
    P = min(200, A) if pca_anchors is None else check_int("--pca-anchors", pca_anchors, 0)
    if P > A:
        raise VarstructError(f"--pca-anchors {P} exceeds --anchors {A}; give at most {A}")
    return A, P


def threads_option():
    return typer.Option(None, "--threads", help="CPU threads for torch and BLAS. [default: all cores]",
                        show_default=False)


def device_option():
    return typer.Option("auto", "--device",
                        help="Where the networks run: cpu, cuda (cuda:N) or auto (a GPU where torch sees one).")


def check_device_option(device: str) -> str:
    """--device checked before torch is imported (one line, exit 2)."""
    from ..devices import check_device

    return check_device(device, "--device")


def overwrite_option():
    return typer.Option(False, "--overwrite", help="Replace existing results (refused otherwise).")


ParamList = Optional[List[str]]


# ---- validation helpers ----------------------------------------------------------------------
def _parse_value(text: str):
    try:
        v = json.loads(text)
    except json.JSONDecodeError:
        if "," in text:
            return [_parse_value(t.strip()) for t in text.split(",")]
        try:
            f = float(text)  # catches inf, nan, Infinity
        except ValueError:
            return text
        return f
    return v


def _finite(v) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    return True


def parse_params(items: list[str] | None, option: str = "-p") -> dict:
    """``["r=3", "profile=flip", "sizes=[5,5]", "sizes=5,5"]`` -> {"r": 3, "profile": "flip",
    "sizes": [5, 5]}. Values are JSON where they parse, comma-separated lists, else strings.
    Repeated keys and non-finite numbers are errors."""
    out: dict = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise VarstructError(f"{option} {item!r}: give KEY=VALUE, e.g. {option} r=3 or {option} sizes=5,5")
        if key in out:
            raise VarstructError(f"{option} {key} given twice ({option} {key}={json.dumps(out[key])} and {item})")
        v = _parse_value(text)
        if not _finite(v):
            raise VarstructError(f"{option} {item}: numbers must be finite")
        out[key] = v
    return out


def check_data_file(data_file: Path | None) -> str | None:
    if data_file is None:
        return None
    p = Path(data_file)
    if p.is_dir():
        raise DatasetError(f"--data-file {p}: is a folder; give the data file itself")
    if not p.exists():
        raise DatasetError(f"--data-file {p}: no such file")
    if not os.access(p, os.R_OK):
        raise DatasetError(f"--data-file {p}: not readable")
    return str(p)


def build_dataset(name: str, params: dict, data_file: str | None):
    """The dataset, with constructor failures turned into one line naming ``-p``/--data-file."""
    from .. import data

    data.dataset_class(name)  # unknown name -> DatasetError
    try:
        return data.get(name, data_file=data_file, **params)
    except VarstructError:
        raise
    except MemoryError:
        from ..errors import ResourceError

        raise ResourceError(f"{name} with -p {params}: the dataset does not fit in memory; use smaller "
                            f"parameters") from None
    except (TypeError, ValueError, ArithmeticError) as e:  # a badly typed parameter reaching a constructor
        raise DatasetError(f"{name}: bad parameter(s) -p {params}: {_line(e)}") from None
    except Exception as e:  # an unreadable data file the loader did not classify
        if data_file is None:
            raise
        raise DatasetError(f"--data-file {data_file}: cannot load it as {name}: {type(e).__name__}: {_line(e)}") \
            from None


def _line(e: BaseException) -> str:
    from ..errors import first_line

    return first_line(e)


def check_output_file(path: Path, overwrite: bool, option: str = "--out") -> Path:
    """:func:`varstruct.io.check_output_file` with the CLI option's name in its messages."""
    from ..io import check_output_file as check

    return check(path, overwrite, label=option)


def open_trained_run(run_dir: Path, out: Path | None, default: str, overwrite: bool, threads: int | None):
    """(RunDir, config, output path, dataset) of a trained run whose result goes to ``out``
    (default: the run dir's file ``default``, e.g. "scores_path"), checked before any work."""
    from ..models.load import check_model_size, dataset_from_config
    from ..runs.layout import RunDir
    from ..validate import check_int

    if threads is not None:
        check_int("--threads", threads, 1, 4096)
    from ..training.config import validate_record

    rd = RunDir(run_dir)
    refuse_unfinished(rd)
    rd.require("trained")
    cfg = rd.read_config()
    validate_record(cfg, rd.config_path)  # the trainer's rules: bad values are refused, not used
    check_model_size(rd, cfg)
    out_path = check_output_file(getattr(rd, default) if out is None else Path(out), overwrite)
    return rd, cfg, out_path, dataset_from_config(cfg)


def refuse_unfinished(rd) -> None:
    """One line for a run dir that has nothing to score or measure although it holds a run: a
    diverged run (its train_log.csv ends with a non-finite loss; also an old one that saved its
    NaN weights) and a run still training (a live trainer holds its lock)."""
    from ..errors import RunDirError, RunDirLocked
    from ..runs.layout import log_diverged

    if not rd.config_path.is_file():
        return
    if log_diverged(rd.log_path):
        step = ""
        with contextlib.suppress(OSError, UnicodeDecodeError, IndexError):
            step = f" at step {rd.log_path.read_text().strip().splitlines()[-1].split(',')[0]}"
        raise RunDirError(f"{rd.path}: training diverged{step} (a non-finite loss in {rd.LOG}); it has no usable "
                          f"weights: train it again with a smaller --lr (--overwrite)")
    holder = rd.busy() if not rd.weights_path.exists() else None
    if holder:
        raise RunDirLocked(f"{rd.path} is in use by a running trainer ({holder}); wait for it to finish")


def writer_lock(rd, out: Path):
    """The run dir's writer lock when ``out`` lies in it; nothing when the output goes
    elsewhere (a read-only model dir can still be evaluated with ``--out``)."""
    import contextlib

    inside = os.path.realpath(Path(out).parent) == os.path.realpath(rd.path)
    return rd.lock() if inside else contextlib.nullcontext(rd)


def start(threads: int | None) -> int:
    """Set the process's thread counts once, after validation and before the work: torch's
    intra-op threads and the BLAS/OpenMP pools (threadpoolctl). Default: all cores."""
    from ..resources import cpu_count
    from ..validate import check_int

    n = cpu_count() if threads is None else check_int("--threads", threads, 1, 4096)
    if n > cpu_count():
        print(f"warning: --threads {n} is more than the {cpu_count()} CPU cores: the work will run slower, "
              "not faster", file=sys.stderr)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)
    return n


@contextlib.contextmanager
def warnings_to_stderr():
    """Warnings of collect (logger varstruct.collect) as plain `warning: ...` lines on stderr while the block runs."""
    log = logging.getLogger("varstruct.collect")
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("warning: %(message)s"))
    log.addHandler(h)
    prev, log.propagate = log.propagate, False
    try:
        yield
    finally:
        log.removeHandler(h)
        log.propagate = prev
