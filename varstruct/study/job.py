"""One sweep job: train, evaluate and measure one run of a study in its own run dir.

What a job does follows from the dir's :class:`varstruct.runs.layout.RunState` (:meth:`RunDir.progress`)
and from whether the dir holds the spec's run (:func:`differences`) and results made with the
spec's settings (:func:`settings_match`); :func:`plan` turns the two into one action:

======================== ========================================================
state                    action
======================== ========================================================
missing, empty, failed*  ``train`` (a fresh run; failed* = no config.json)
interrupted, failed      ``resume`` (from the checkpoint, or from step 0 without one)
trained, scored          ``finish`` (the missing or stale scores / measures)
measured                 ``skip`` when scores and measures match the spec, else ``finish``
diverged                 ``diverged``: reported as failed, nothing is retrained
broken, other run        ``refuse`` (the dir is not the spec's run: reported, never touched)
other budget             ``rebudget`` or ``retrain`` (below)
in a packed zoo          ``packed`` for what would train or change a config (``train``,
                         ``resume``, ``retrain``, ``rebudget``): a ``manifest.csv`` above the
                         dir records the zoo's weights and configs, so a model trained there
                         would fail its sha256 check; reported as failed
======================== ========================================================

**A changed ``until_converged`` budget** (the spec differs from a finished run dir in ``steps``
only, with the same ``until_converged`` table): the stream of batches does not depend on the
budget, so a run of budget B' is, step for step, the run of budget B up to min(B, B').
:func:`budget_change` therefore keeps a run that met the criterion at T <= B' (``rebudget``: its
config.json's ``steps`` becomes B', nothing else changes; it stops at T under either budget), and
trains again, from step 0, a run that stopped unconverged at its old budget B < B' (``retrain``:
its files are replaced; its first B steps replay bit for bit and it goes on until the criterion
holds or B'). Any other change of ``steps`` is a different run (``refuse``).

A job never raises for its run's own failure (:func:`run_job` returns an outcome), and a failed
attempt writes ``status.json`` only into a dir without a trained model, so it can never
downgrade a good run.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

from ..errors import ConfigError, RunDirError, RunDirLocked, VarstructError, first_line
from ..runs.layout import RunDir, RunState

# spec key -> attr of the stored Dataset that records it
SCORE_ATTRS = {"metrics": "metrics", "seed": "seed", "n_train": "points_train", "n_test": "points_test"}
MEASURE_ATTRS = {"n_anchors": "n_anchors", "seed": "seed", "response": "response"}
ACTIONS = ("train", "resume", "finish", "skip", "diverged", "refuse", "rebudget", "retrain", "packed")
TRAINS = ("train", "resume", "retrain", "rebudget")  # what a packed zoo refuses
FINISHED = (RunState.TRAINED, RunState.SCORED, RunState.MEASURED, RunState.RELEASED)


def differences(record: dict, train: dict) -> list[str]:
    """Fields the spec sets that a run dir's config.json has differently (hparams by key)."""
    diff = []
    for k, v in train.items():
        have = record.get(k)
        if k == "hparams":
            hp = have or {}
            diff += [f"hparams.{h}" for h, x in v.items() if hp.get(h) != x]
        elif k == "data_file":
            if str(Path(v).expanduser().resolve()) != have:
                diff.append(k)
        elif have != v:
            diff.append(k)
    return diff


def settings_match(ds, spec: dict, attr_names: dict) -> bool:
    """Whether a stored scores/measures Dataset was made with the spec's settings."""
    for key, attr in attr_names.items():
        if key in spec and spec[key] is not None and attr in ds.attrs:
            have, want = ds.attrs[attr], spec[key]
            if key == "metrics":
                want = ",".join(want)
            if str(have) != str(want):
                return False
    return True


def budget_change(rd: RunDir, state: RunState, record: dict, run: dict) -> tuple[str | None, str]:
    """For a finished until_converged run whose config differs from the spec's ``run`` (a
    :meth:`Run.to_dict`) in ``steps`` only: ("rebudget" | "retrain" | None, one line saying why).
    None: a different run."""
    from ..training.convergence import run_convergence

    train = run["train"]
    uc = record.get("until_converged")
    old, new = record.get("steps"), train.get("steps")
    if not uc or uc != train.get("until_converged") or not isinstance(old, int) or not isinstance(new, int):
        return None, "not an until_converged run with the same table"
    try:
        v = run_convergence(rd.path)
    except (ValueError, OSError, VarstructError):
        return None, "its train_log.csv gives no verdict"
    stopped = v["steps"]
    # the trainer judges the criterion only at multiples of check_every from min_steps on, and not at
    # the budget's own end: a run that ended at its old budget stopped there under a larger one only
    # if that step was a check (and passed)
    checked = stopped >= uc.get("min_steps", 0) and stopped % uc.get("check_every", 1) == 0
    if v["converged"] and stopped <= new and (stopped < old or checked):
        if state is RunState.RELEASED and not _results_match(rd, run):  # it could not be finished
            return None, "results without weights, scored or measured with other settings"
        return "rebudget", f"converged at {stopped} steps: kept, its budget set from {old} to {new}"
    if stopped == old < new and not (v["converged"] and checked):
        why = {False: "unconverged", None: "without a verdict"}.get(v["converged"], "without a convergence check there")
        return "retrain", (f"stopped {why} at its budget of {old} steps: trained again to at most {new} "
                           f"(its first {old} steps replay bit for bit)")
    return None, f"stopped at {stopped} steps, {'converged' if v['converged'] else 'unconverged'}"


def plan(run: dict, root) -> tuple[RunState, str, str | None]:
    """(state, action, why) for a run (a :meth:`Run.to_dict`) under ``root``; ``why`` is one
    line for ``refuse``, ``diverged``, ``rebudget`` and ``retrain`` (None otherwise). Reads the JSON config, the
    safetensors header (and the recorded hash) and, for a measured run, the netCDF attrs."""
    return plan_dir(RunDir(Path(root) / run["rel"]), run)


def plan_dir(rd: RunDir, run: dict) -> tuple[RunState, str, str | None]:
    """:func:`plan` for the run dir ``rd``."""
    state, action, why = _plan_dir(rd, run)
    if action in TRAINS:
        manifest = packed_zoo(rd)
        if manifest is not None:
            return state, "packed", (f"{rd.path} is in a packed zoo ({manifest} records its runs' weights and configs, "
                                     f"so a model trained here would fail its sha256 check); sweep a copy in a work dir, "
                                     f"then pack it with `python -m varstruct.study.manifest`")
    return state, action, why


def packed_zoo(rd: RunDir) -> Path | None:
    """The ``manifest.csv`` of the nearest folder above a run dir, if any (a packed zoo)."""
    from ..runs.weights import MANIFEST

    for folder in rd.path.resolve().parents:
        if (folder / MANIFEST).exists():
            return folder / MANIFEST
    return None


def _plan_dir(rd: RunDir, run: dict) -> tuple[RunState, str, str | None]:
    state = rd.progress()
    if state in (RunState.MISSING, RunState.EMPTY):
        return state, "train", None
    if state is RunState.BROKEN:
        try:
            rd.require("trained")
            why = "not a model dir"
        except RunDirError as e:
            why = first_line(e)
        if rd.weights_path.is_file() and rd.config_path.is_file():
            from ..runs.weights import verify_sha256

            try:
                verify_sha256(rd.weights_path)
            except RunDirError as e:
                why = first_line(e)
        return state, "refuse", f"broken run dir ({why})"
    if state is RunState.FAILED and not rd.config_path.is_file():
        return state, "train", None
    record = rd.read_config()
    diff = differences(record, run["train"])
    if diff == ["steps"] and state in FINISHED:
        action, why = budget_change(rd, state, record, run)
        if action:
            return state, action, why
    if diff:
        return state, "refuse", (f"{rd.path} holds a different run (differs in {', '.join(diff)}); "
                                 "remove it or sweep into another --out")
    if state is RunState.DIVERGED:
        return state, "diverged", (f"training diverged (a non-finite loss in {rd.LOG}); change the spec "
                                   "(e.g. a lower lr) and sweep into another --out, or remove the dir")
    if state in (RunState.INTERRUPTED, RunState.FAILED):
        return state, "resume", None
    if state is RunState.MEASURED and _results_match(rd, run):
        return state, "skip", None
    if state is RunState.RELEASED:
        if rd.has_measures and _results_match(rd, run):
            return state, "skip", None
        return state, "refuse", (f"{rd.path} holds results without weights (released), scored or measured with "
                                 "other settings; sweep into another --out to train it again")
    return state, "finish", None


def _results_match(rd: RunDir, run: dict) -> bool:
    try:
        return settings_match(rd.read_scores(), run["evaluate"], SCORE_ATTRS) and \
            settings_match(rd.read_measures(), run["measure"], MEASURE_ATTRS)
    except VarstructError:  # an unreadable result is computed again
        return False


def _limits(threads: int):
    import torch  # noqa: F401  (imported first, so that its pool is limited too)

    from ..threads import limit_threads

    return limit_threads(threads)


def _no_dask_in_job():
    """On a dask worker, let the job's own libraries use dask's local scheduler: xarray would
    otherwise take a cluster-wide lock for its in-memory netCDF writes (and fail)."""
    import sys

    if "dask" not in sys.modules:
        return contextlib.nullcontext()
    import dask

    return dask.config.set(scheduler="synchronous")


def run_job(run: dict, root: str, threads: int = 1, device: str = "auto") -> dict:
    """Train + evaluate + measure one run (a :meth:`Run.to_dict`) under ``root`` on ``device``
    (:mod:`varstruct.devices`; a missing GPU fails the run with one line). Never raises
    for a run's own failure: returns {rel, outcome, error, seconds}, outcome one of done,
    skipped, failed, interrupted, busy (another process holds the run dir's lock: it is that
    process's run, e.g. a second sweep over the same dir, and is left to it)."""
    t0 = time.perf_counter()
    rel = run["rel"]
    try:
        with _no_dask_in_job():
            for attempt in range(3):  # a lock held for a moment (a --dry-run probe) is not a busy run
                try:
                    outcome = _run_job(run, Path(root) / rel, threads, device)
                    break
                except RunDirLocked:
                    if attempt == 2:
                        raise
                    time.sleep(0.5)
        error = None
    except KeyboardInterrupt:
        outcome, error = "interrupted", "interrupted"
    except RunDirLocked as e:
        outcome, error = "busy", first_line(e)
    except Exception as e:  # noqa: BLE001 - a failing run is recorded, the others go on
        if type(e).__name__ == "TrainingInterrupted":
            outcome, error = "interrupted", first_line(e)
        else:
            outcome, error = "failed", first_line(e) if isinstance(e, VarstructError) else \
                f"{type(e).__name__}: {first_line(e)}"
            if not isinstance(e, _Refused):  # a dir owned by another run is not ours
                _record_failure(RunDir(Path(root) / rel), error)
    return {"rel": rel, "outcome": outcome, "error": error, "seconds": time.perf_counter() - t0}


class _Refused(ConfigError):
    """The dir holds something other than this run (never marked failed)."""


def _record_failure(rd: RunDir, error: str) -> None:
    """status.json "failed", only where the files show no trained model (never a downgrade)."""
    with contextlib.suppress(Exception):
        if rd.progress().is_trained:
            return
        rd.path.mkdir(parents=True, exist_ok=True)
        rd.write_status("failed", error)


def _run_job(run: dict, path: Path, threads: int, device: str = "auto") -> str:
    rd = RunDir(path)
    _, action, why = plan_dir(rd, run)  # cheap, without the lock: what needs no work ends here
    if action in ("refuse", "diverged", "packed"):
        raise _Refused(why)
    if action == "skip":
        return "skipped"
    path.parent.mkdir(parents=True, exist_ok=True)
    with rd.lock():  # planned again under the lock: no other process changes the dir from here on
        _, action, why = plan_dir(rd, run)
        if action == "rebudget":
            rd.write_config({**rd.read_config(), "steps": run["train"]["steps"]})
            _, action, why = plan_dir(rd, run)
        if action in ("refuse", "diverged", "packed", "rebudget"):
            raise _Refused(why or f"{rd.path}: its budget could not be changed")
        if action == "skip":
            return "skipped"

        from ..training import train

        if action in ("train", "retrain"):
            with contextlib.suppress(FileNotFoundError):  # left by an earlier attempt or the old run
                rd.status_path.unlink()
            # retrain: the run files are replaced (other files in the dir are left alone)
            train(run["train"], out=path, overwrite=action == "retrain", threads=threads, device=device)
        elif action == "resume":  # from the checkpoint, or from step 0 without one (the same weights)
            train(run["train"], out=path, resume=True, threads=threads, device=device)

        from ..measures.model import measure_model
        from ..metrics.evaluate import evaluate
        from ..models.load import dataset_from_config, load_model

        ev, me = dict(run["evaluate"]), dict(run["measure"])
        with _limits(threads):
            model = load_model(rd, device=device)
            ds = dataset_from_config(model.config)
            if not (rd.has_scores and _matches(rd.read_scores, ev, SCORE_ATTRS)):
                rd.write_scores(evaluate(model, ds, n_jobs=1, threads=threads, **ev))
            if not (rd.has_measures and _matches(rd.read_measures, me, MEASURE_ATTRS)):
                from ..models.units import add_unit_activity

                m = measure_model(model, ds, threads=threads, **me)
                rd.write_measures(add_unit_activity(m, model, ds, seed=me.get("seed", 0)))
            rd.write_status("done")
    return "done"


def _matches(read, spec: dict, attrs: dict) -> bool:
    try:
        return settings_match(read(), spec, attrs)
    except VarstructError:
        return False
