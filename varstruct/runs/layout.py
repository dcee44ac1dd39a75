"""One run (model) dir: every file name, atomic reads and writes, its state and its writer lock.

Layout (see docs/run-dirs.md)::

    DIR/config.json              the resolved training config (written first)
    DIR/checkpoint.safetensors   training state of an unfinished run (removed when it finishes)
    DIR/model.safetensors        final weights (its presence means "trained"; float32, or float16 /
                                 bfloat16 in a packed zoo: loading upcasts to float32)
    DIR/model.safetensors.sha256 optional: the weights' sha256, checked on loading
    DIR/train_log.csv            step, loss terms, seconds
    DIR/scores.nc                `varstruct evaluate`
    DIR/measures.nc              `varstruct measure model`
    DIR/status.json              {"state", "error", "time"} (sweeps)
    DIR/.lock, DIR/.lock.pid     the writer lock and its holder's PID

States: :meth:`RunDir.progress` returns one :class:`RunState` judged from the files (see
docs/run-dirs.md#states); :attr:`RunDir.state` is the cheaper training-only view (``missing``,
``empty``, ``interrupted``, ``trained``, ``broken``). Only JSON, CSV, netCDF and safetensors are
ever read: nothing is unpickled. Importing this module does not import torch, xarray or pandas.

What the files *are* lives elsewhere: safetensors and sha256 in :mod:`varstruct.runs.weights`
(below this module), the model and the dataset a run dir holds in :mod:`varstruct.models.load`
(above it: ``load_model(rd)``, ``load_dataset(rd)``).
"""
from __future__ import annotations

import contextlib
import csv
import enum
import json
import math
import os
import time
from pathlib import Path

from ..errors import OutputError, RunDirError, first_line
from . import weights as _weights

REQUIRED_KEYS = ("dataset", "dataset_params", "data_file", "method", "hparams", "seed", "steps", "batch_size",
                 "arch", "latent_dim", "image_shape", "version")
STATES = ("missing", "empty", "interrupted", "trained", "broken")


class RunState(str, enum.Enum):
    """Where a run dir stands, judged from its files (:meth:`RunDir.progress`).

    The pipeline's steps in order: ``trained`` (config + final weights that pass their header
    and recorded-hash checks) < ``scored`` (+ scores.nc) < ``measured`` (+ scores.nc and
    measures.nc). Before them: ``missing`` (no dir), ``empty`` (a dir without config.json or
    weights), ``interrupted`` (config, no weights: resume finishes it), ``diverged`` (config and
    a train_log.csv whose last row has a non-finite loss term, no weights), ``failed`` (no
    weights, and the last attempt recorded a failure in status.json), ``released`` (results
    without weights: config, scores.nc and the weights' recorded sha256 in
    ``model.safetensors.sha256``, no weights and no checkpoint; a zoo distributed without the
    weights no figure loads; training the config again restores them, bit for bit on CPU, and
    the recorded hash checks that). ``broken``: not a folder,
    weights without a readable config, unreadable config, corrupt weights or a hash mismatch.
    status.json is read only when the files show no finished training, so a failed attempt can
    never downgrade a trained run.
    """

    MISSING = "missing"
    EMPTY = "empty"
    INTERRUPTED = "interrupted"
    TRAINED = "trained"
    SCORED = "scored"
    MEASURED = "measured"
    FAILED = "failed"
    DIVERGED = "diverged"
    RELEASED = "released"
    BROKEN = "broken"

    def __str__(self) -> str:
        return self.value

    @property
    def is_trained(self) -> bool:
        """Final weights are there and check out (trained, scored or measured)."""
        return self in (RunState.TRAINED, RunState.SCORED, RunState.MEASURED)


class RunDir:
    """A model dir at ``path`` (nothing is touched on construction)."""

    CONFIG = "config.json"
    WEIGHTS = "model.safetensors"
    LOG = "train_log.csv"
    CHECKPOINT = "checkpoint.safetensors"
    SCORES = "scores.nc"
    MEASURES = "measures.nc"
    STATUS = "status.json"
    LOCK = ".lock"
    LOCK_PID = ".lock.pid"
    WEIGHTS_SHA = "model.safetensors.sha256"
    #: the files a run writes; ``--overwrite`` removes them all (status.json belongs to the sweep)
    RUN_FILES = (CONFIG, WEIGHTS, WEIGHTS_SHA, LOG, CHECKPOINT, SCORES, MEASURES)
    #: bookkeeping files that do not make a dir non-empty
    BOOKKEEPING = (LOCK, LOCK_PID, STATUS)

    def __init__(self, path: str | os.PathLike):
        if isinstance(path, RunDir):
            path = path.path
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ paths
    config_path = property(lambda self: self.path / self.CONFIG)
    weights_path = property(lambda self: self.path / self.WEIGHTS)
    log_path = property(lambda self: self.path / self.LOG)
    checkpoint_path = property(lambda self: self.path / self.CHECKPOINT)
    scores_path = property(lambda self: self.path / self.SCORES)
    measures_path = property(lambda self: self.path / self.MEASURES)
    status_path = property(lambda self: self.path / self.STATUS)
    lock_path = property(lambda self: self.path / self.LOCK)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> str:
        """missing | empty | interrupted | trained | broken (cheap: reads the JSON config and
        the safetensors header only)."""
        if not self.path.exists():
            return "missing"
        if not self.path.is_dir():
            return "broken"
        if not self.config_path.exists():
            return "broken" if self.weights_path.exists() else "empty"
        try:
            self.read_config()
        except RunDirError:
            return "broken"
        if not self.weights_path.exists():
            return "interrupted"
        return "trained" if _weights.header_ok(self.weights_path) else "broken"

    def progress(self, verify: bool = True) -> RunState:
        """The run's :class:`RunState`, from its files only (config.json, model.safetensors and
        its recorded sha256 where a sidecar or manifest holds one, train_log.csv, scores.nc,
        measures.nc); status.json only tells ``failed`` from ``empty``/``interrupted``. Cost: the
        JSON config, the safetensors header, the weights' hash where one is recorded and the
        last line of the log; netCDF files are checked for presence only. ``verify=False`` skips
        the recorded-hash check (the manifest writer judging runs it is about to record)."""
        if not self.path.exists():
            return RunState.MISSING
        if not self.path.is_dir():
            return RunState.BROKEN
        has_config = self.config_path.exists()
        if self.weights_path.exists():
            if not has_config or not self._config_ok() or not self._weights_ok(verify):
                return RunState.BROKEN
            if not self.has_scores:
                return RunState.TRAINED
            return RunState.MEASURED if self.has_measures else RunState.SCORED
        if has_config and not self._config_ok():
            return RunState.BROKEN
        if has_config and self.is_released:
            return RunState.RELEASED
        if has_config and log_diverged(self.log_path):
            return RunState.DIVERGED
        if self._status_failed():
            return RunState.FAILED
        return RunState.INTERRUPTED if has_config else RunState.EMPTY

    def failure(self) -> str | None:
        """The error line status.json recorded for a failed attempt, if any (for messages)."""
        try:
            st = self.read_status()
        except RunDirError:
            return None
        return str(st.get("error")) if st and st.get("state") == "failed" else None

    def _config_ok(self) -> bool:
        try:
            self.read_config()
            return True
        except RunDirError:
            return False

    def _weights_ok(self, verify: bool = True) -> bool:
        if not _weights.header_ok(self.weights_path):
            return False
        if not verify:
            return True
        side = self.path / self.WEIGHTS_SHA
        if not side.exists() and not any((p / _weights.MANIFEST).exists() for p in self.path.resolve().parents):
            return True  # nothing records a hash: skip hashing
        try:
            _weights.verify_sha256(self.weights_path)
            return True
        except (RunDirError, OSError):
            return False

    def _status_failed(self) -> bool:
        return self.failure() is not None

    @property
    def is_trained(self) -> bool:
        return self.state == "trained"

    @property
    def is_released(self) -> bool:
        """Results without weights (see :class:`RunState`): no weights, no checkpoint, a recorded
        weights sha256 and scores.nc."""
        return (not self.weights_path.exists() and not self.has_checkpoint
                and (self.path / self.WEIGHTS_SHA).is_file() and self.has_scores)

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    @property
    def has_scores(self) -> bool:
        return self.scores_path.is_file()

    @property
    def has_measures(self) -> bool:
        return self.measures_path.is_file()

    def contents(self) -> set[str]:
        """Names in the dir other than the bookkeeping files (lock, PID, status)."""
        if not self.path.is_dir():
            return set()
        return {p.name for p in self.path.iterdir()} - set(self.BOOKKEEPING)

    def require(self, *states: str) -> str:
        """The state if it is one of ``states``, else RunDirError with one line saying why."""
        st = self.state
        if st in states:
            return st
        why = {"missing": "no such model dir", "empty": f"not a model dir (no {self.CONFIG})",
               "interrupted": f"training unfinished (no {self.WEIGHTS}); finish it with "
                              f"`varstruct train --resume --out {self.path}`",
               "trained": "already holds a trained model", "broken": ""}[st]
        if st == "broken":
            try:
                self.read_config()
                _weights.header(self.weights_path)
                why = "not a model dir"
            except RunDirError as e:
                raise RunDirError(str(e)) from None
        raise RunDirError(f"{self.path}: {why}")

    # ------------------------------------------------------------------ reading
    def read_config(self) -> dict:
        """The run's config dict; RunDirError if the dir or a valid config.json is missing."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: no such model dir")
        p = self.config_path
        if not p.is_file():
            raise RunDirError(f"{self.path}: no {self.CONFIG} (not a model dir)")
        try:
            cfg = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunDirError(f"{p}: not a valid JSON config ({first_line(e)})") from None
        if not isinstance(cfg, dict):
            raise RunDirError(f"{p}: not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in cfg]
        if missing:
            raise RunDirError(f"{p}: missing field(s) {', '.join(missing)}")
        return cfg

    def read_log(self):
        """train_log.csv as a pandas DataFrame (columns: step, loss terms, seconds)."""
        import pandas as pd

        if not self.log_path.is_file():
            raise RunDirError(f"{self.path}: no {self.LOG}")
        try:
            return pd.read_csv(self.log_path)
        except Exception as e:  # pandas' parser errors have no common base
            raise RunDirError(f"{self.log_path}: not a valid CSV log ({first_line(e)})") from None

    def read_scores(self):
        return self._read_nc(self.scores_path)

    def read_measures(self):
        return self._read_nc(self.measures_path)

    def _read_nc(self, path: Path):
        from ..io import read_netcdf

        if not path.is_file():
            raise RunDirError(f"{self.path}: no {path.name}")
        try:
            return read_netcdf(path)
        except Exception as e:  # h5py / xarray raise many types for a corrupt file
            raise RunDirError(f"{path}: not a readable netCDF file ({first_line(e)})") from None

    def read_weights(self, path: str | os.PathLike | None = None) -> dict:
        """A safetensors file of this dir (default: the final weights) as a dict of tensors. The
        final weights are checked against their recorded sha256 (a ``model.safetensors.sha256``
        beside them, or the run's row of the nearest ``manifest.csv`` above the dir), if any
        (:func:`varstruct.runs.weights.verify_sha256`). Imports torch."""
        if path is None:
            if self.weights_path.is_file():
                _weights.verify_sha256(self.weights_path)
            return _weights.read_weights(self.weights_path)
        return _weights.read_weights(path)

    def read_status(self) -> dict | None:
        if not self.status_path.is_file():
            return None
        try:
            st = json.loads(self.status_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunDirError(f"{self.status_path}: not valid JSON ({first_line(e)})") from None
        return st if isinstance(st, dict) else None

    # ------------------------------------------------------------------ writing (atomic)
    def write_config(self, config: dict) -> Path:
        from ..io import write_json

        return write_json(self.config_path, config)

    def write_weights(self, tensors: dict, metadata: dict | None = None, path=None) -> Path:
        return _weights.write_weights(self.weights_path if path is None else path, tensors, metadata=metadata)

    def write_log(self, text: str) -> Path:
        from ..io import write_text

        return write_text(self.log_path, text)

    def write_scores(self, ds) -> Path:
        from ..io import write_netcdf

        return write_netcdf(ds, self.scores_path)

    def write_measures(self, ds) -> Path:
        from ..io import write_netcdf

        return write_netcdf(ds, self.measures_path)

    def write_status(self, state: str, error: str | None = None) -> Path:
        from ..io import write_json

        return write_json(self.status_path, {"state": state, "error": error,
                                             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def clear(self) -> None:
        """Remove every run file (``--overwrite``); other files in the dir are left alone."""
        for name in self.RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def check_writable(self) -> None:
        """OutputError (one line) unless the dir, or the folder it would be created in, is a
        writable folder."""
        p = self.path
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"cannot write run dir {p}: it exists and is not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise OutputError(f"cannot write run dir {p}: it is not writable")
            return
        parent = p.parent if str(p.parent) else Path(".")
        from ..io import check_folder

        check_folder(parent, f"cannot create run dir {p}")

    # ------------------------------------------------------------------ lock (varstruct.runs.lock)
    @contextlib.contextmanager
    def lock(self):
        """Hold the dir's exclusive writer lock (creating the dir if needed). Raises
        RunDirLocked("DIR is in use by process PID") at once if another process holds it.
        Re-entrant within a process (a sweep holding the lock may call ``train``). A dir this
        call created is removed again on exit if nothing but the lock files is in it."""
        from . import lock as _lock

        self.check_writable()
        created = not self.path.exists()
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create run dir {self.path}: {e.strerror or first_line(e)}") from None
        try:
            with _lock.hold(self.lock_path, self.path / self.LOCK_PID, self.path):
                yield self
        finally:
            if created:
                with contextlib.suppress(OSError):
                    if {p.name for p in self.path.iterdir()} <= {self.LOCK, self.LOCK_PID}:
                        self.lock_path.unlink(missing_ok=True)
                        self.path.rmdir()

    def busy(self) -> str | None:
        """"process PID" when another process holds this dir's writer lock; None when it is free
        or cannot be probed (a read-only dir)."""
        from . import lock as _lock

        return _lock.probe(self.lock_path, self.path / self.LOCK_PID)


def log_diverged(log_path) -> bool:
    """True iff the last data row of the train_log.csv at ``log_path`` has a non-finite value
    (NaN, ±inf, or not a number) in any loss column (every column but ``step`` and
    ``seconds``); False for a missing, unreadable or row-less log."""
    try:
        with open(log_path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    rows = [r for r in rows if r]
    if len(rows) < 2:
        return False
    header, last = rows[0], rows[-1]
    for name, value in zip(header, last):
        if name.strip() in ("step", "seconds"):
            continue
        try:
            if not math.isfinite(float(value)):
                return True
        except ValueError:
            return True
    return False
