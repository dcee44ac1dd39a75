"""The training loop: seeded, resumable, with a progress bar and atomic checkpoints.

Randomness. Weights are initialised from ``torch.manual_seed(seed)``. Step t (0-based) draws
its batch from ``numpy.random.default_rng(SeedSequence([seed, t]).spawn(2)[0])`` (factors,
nuisances) and seeds torch's generator (sampling ε, FactorVAE's permutation, nested dropout,
hard-concrete gates) from the second child, so the whole stream is a function of (seed, t):
the same config gives bit-identical weights on CPU, and a resumed run continues exactly
where its checkpoint stopped. Torch's global RNG state is restored after training.

Model dir (:class:`varstruct.RunDir`, held under its writer lock): config.json is written first
(an unfinished dir has no model.safetensors), then checkpoint.safetensors every
``checkpoint_every`` steps and on SIGINT/SIGTERM, finally model.safetensors and train_log.csv
(columns: step, loss terms, seconds), and the checkpoint is removed. A run that fails before its
first checkpoint removes its config.json again. A non-finite loss term stops the run at once:
train_log.csv is written with the rows so far, ending with that step's row (the mean since the
last row, so non-finite too), the checkpoint is removed, no model.safetensors is written, and
:class:`varstruct.errors.DivergedError` is raised (the dir's state is then "diverged").
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import torch

from .. import io
from ..errors import ConfigError, DivergedError, RunDirError
from ..runs.layout import RunDir, log_diverged
from ..tensors import to_torch, torch_threads
from ..validate import check_int
from .precision import autocast, cast, param_dtype, to_device, wrap
from .alloc import retain_freed_memory
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, adopt_run_precision, differences, resolve
from .interrupt import TrainingInterrupted, stop_requests
from .optim import Optimisers


@contextlib.contextmanager
def _deterministic(threads: int | None = None, device: torch.device | None = None):
    """Deterministic algorithms, a private copy of torch's RNG state (the CPU's, and a CUDA
    ``device``'s), optionally a thread count."""
    prev, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    gpus = [device.index] if device is not None and device.type == "cuda" else []
    try:
        with torch_threads(threads or None), torch.random.fork_rng(devices=gpus):
            yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=warn)


def step_streams(seed: int, step: int) -> tuple[np.random.Generator, int]:
    """(numpy Generator for the data, torch seed) of step ``step``."""
    data_ss, torch_ss = np.random.SeedSequence([seed, step]).spawn(2)
    return np.random.default_rng(data_ss), int(torch_ss.generate_state(1, np.uint64)[0])


def make_batch(ds, objective, batch_size: int, rng: np.random.Generator, channels_last: bool = False):
    """x [B, C, H, W], or (x1, x2) for pair objectives (pairs from ``ds.sample_pairs``)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if objective.pairs:
        idx1, idx2 = ds.sample_pairs(batch_size, rng, k=objective.hparams["k"],
                                     changeable=objective.hparams.get("changeable"))
        x = to_torch(ds.render(np.concatenate([idx1, idx2]), rng=rng)).contiguous(memory_format=fmt)
        return x[:batch_size], x[batch_size:]
    return to_torch(ds.render(ds.sample_factors(batch_size, rng), rng=rng)).contiguous(memory_format=fmt)


def batch_stream(ds, objective, seed: int, batch_size: int, start: int, stop: int, channels_last: bool = False,
                 prefetch: bool = True):
    """Yield (t, batch, torch_seed) for steps start..stop-1. With ``prefetch`` the batch of step
    t+1 is rendered in a background thread while step t trains (each batch depends on (seed, t)
    only, so the stream is the same either way)."""
    def load(t):
        rng, torch_seed = step_streams(seed, t)
        return make_batch(ds, objective, batch_size, rng, channels_last), torch_seed

    if not prefetch:
        for t in range(start, stop):
            yield (t, *load(t))
        return
    from concurrent.futures import ThreadPoolExecutor

    threads = torch.get_num_threads()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="varstruct-data", initializer=_one_thread) as pool:
        nxt = pool.submit(load, start) if start < stop else None
        for t in range(start, stop):
            batch, torch_seed = nxt.result()
            if t == start:
                torch.set_num_threads(threads)  # the loader's setting reached torch's process-wide default too
            nxt = pool.submit(load, t + 1) if t + 1 < stop else None
            yield t, batch, torch_seed


def _one_thread():
    """The loader thread renders on its own core: torch ops it runs take no OpenMP team (a team
    of its own would spin on the cores the training step uses)."""
    torch.set_num_threads(1)


def _prepare_dir(rd: RunDir, record: dict, resume: bool, overwrite: bool) -> str:
    """Check/clean the run dir (under its lock). Returns 'fresh', 'resume' (a checkpoint
    exists) or 'done'."""
    if resume and overwrite:
        raise ConfigError("choose one of --resume and --overwrite")
    state = rd.state
    if resume:
        if state in ("missing", "empty"):
            raise RunDirError(f"--resume: {rd.path} holds no run to resume "
                              f"({'no such folder' if state == 'missing' else 'no ' + rd.CONFIG})")
        if state == "broken":
            rd.require("trained")
        if state == "interrupted" and not rd.has_checkpoint and log_diverged(rd.log_path):
            raise RunDirError(f"--resume: {rd.path} diverged (its {rd.LOG} ends with a non-finite loss); "
                              f"nothing to resume: train it again with --overwrite and a smaller learning rate")
        diff = differences(rd.read_config(), record)
        if diff:
            raise ConfigError(f"cannot resume {rd.path}: its run differs in {', '.join(diff)}")
        if rd.has_checkpoint:
            return "resume"
        return "done" if state == "trained" else "fresh"
    if overwrite:
        rd.clear()
        return "fresh"
    if state == "missing":
        return "fresh"
    foreign = rd.contents()
    if not foreign:
        return "fresh"
    if state == "interrupted" and not rd.has_checkpoint and foreign == {rd.CONFIG} \
            and not differences(rd.read_config(), record):
        return "fresh"  # a run killed before its first checkpoint: start it again
    raise ConfigError(f"output dir {rd.path} exists and is not empty (use --resume to finish its run "
                      f"or --overwrite to replace it)")


def _write_log(path: Path, columns, rows) -> None:
    lines = [",".join(columns)]
    for r in rows:
        lines.append(",".join([str(int(r[0]))] + [f"{v:.9g}" for v in r[1:]]))
    io.write_text(path, "\n".join(lines) + "\n")


def _diverged(rd: RunDir, columns, rows, vals) -> None:
    """Stop a run at its first non-finite loss: write train_log.csv ending with that step's row,
    remove the checkpoint (the run cannot be finished), write no weights, raise DivergedError."""
    step = int(rows[-1][0])
    _write_log(rd.log_path, columns, rows)
    rd.checkpoint_path.unlink(missing_ok=True)
    bad = ", ".join(f"{c} = {v}" for c, v in zip(columns[1:-1], vals) if not math.isfinite(v))
    raise DivergedError(f"diverged at step {step}: non-finite loss ({bad}); {rd.path} keeps config.json and "
                        f"train_log.csv, no weights (train again with a smaller learning rate)",
                        step=step, run_dir=rd.path)


def _converged_at(uc: dict, done: int, columns, rows) -> bool:
    """Whether an until_converged run ends at step ``done``: a check step (a multiple of
    check_every, >= min_steps) at which the criterion holds on the log rows so far, judged as for
    a run of ``done`` steps."""
    if done < uc["min_steps"] or done % uc["check_every"]:
        return False
    from .convergence import convergence

    arr = np.asarray(rows, dtype=np.float64)
    return bool(convergence(arr[:, 0], arr[:, columns.index("recon")], total_steps=done)["converged"])


def train(config, *, out=None, resume: bool = False, overwrite: bool = False, progress: bool = False,
          stop_after: int | None = None, threads: int | None = None, prefetch: bool = True,
          device: str = "auto") -> Path:
    """Train the model a config describes and write its model dir; return the dir's Path.

    config: a :class:`TrainConfig` or a dict of its fields (``out`` may be given here).
    resume: finish an interrupted run from its checkpoint (same final weights as an
    uninterrupted run); a finished run is left as it is. overwrite: replace the run files
    of an existing dir. An existing non-empty dir is refused otherwise. progress: True (a rich bar,
    :func:`varstruct.progress.progress_bar`), False, or a :class:`varstruct.progress.Progress`
    callback (one unit per step, the loss terms as its text at each log row). stop_after: checkpoint and return after this many steps (simulates
    an interruption). threads: torch CPU threads while training (restored after; bit-identity
    holds for a fixed thread count; 1 is fastest on a busy or small machine). prefetch: render
    the next batch in a background thread during each step (same batches either way).
    device: cpu, cuda, cuda:N or auto (:mod:`varstruct.devices`): where the networks train. The
    weights are initialised on the CPU (the same initial weights everywhere) and written as fp32
    CPU tensors; config.json does not record the device, so a run can be resumed on another.
    Raises ConfigError / DatasetError (ValueError) for bad input, before writing anything, and
    DivergedError at the first non-finite loss (see the module docstring).
    """
    cfg = TrainConfig.from_dict(config)
    if threads is not None:
        threads = check_int("threads", threads, 1, error=ConfigError)
    out = out if out is not None else cfg.out
    if out is None:
        raise ConfigError("no output dir given")
    out = Path(out)
    rd = RunDir(out)
    from ..devices import resolve_device

    device = resolve_device(device)
    ds, objective, record = resolve(cfg, device=device.type)
    rd.check_writable()
    with rd.lock(), stop_requests() as stop:  # SIGINT/SIGTERM from here on: checkpoint at the next step
        if resume:
            record = adopt_run_precision(cfg, record, out)
        state = _prepare_dir(rd, record, resume, overwrite)
        if state == "done":
            return out
        if state == "fresh":
            rd.write_config(record)
        try:
            if record.get("baseline"):
                return _fit_baseline(rd, ds, record, threads)
            return _train(rd, ds, objective, record, state, progress, stop_after, threads, prefetch, stop,
                          device)
        except (TrainingInterrupted, DivergedError):
            raise
        except BaseException:
            if state == "fresh" and not rd.has_checkpoint:
                rd.config_path.unlink(missing_ok=True)  # leave no config-only dir behind
            raise


def _fit_baseline(rd: RunDir, ds, record, threads: int | None) -> Path:
    """A fitted baseline's run dir (:mod:`varstruct.models.baselines`): its weights, and a
    train_log.csv of one row at step 0 (recon: the fit sample's mean squared error per image)."""
    from ..models.baselines import fit, state_dict

    t0 = time.perf_counter()
    b = record["baseline"]
    maps = fit(b["kind"], ds, record["latent_dim"], b["n_fit"], record["seed"], threads=threads)
    rd.write_weights(state_dict(maps, record["latent_dim"]))
    _write_log(rd.log_path, ["step", "recon", "seconds"], [[0, maps["recon"], time.perf_counter() - t0]])
    return rd.path


def _train(rd: RunDir, ds, objective, record, state, progress, stop_after, threads, prefetch, stop,
           device: torch.device) -> Path:
    out = rd.path
    from ..models.nets import build_model

    seed, steps, B = record["seed"], record["steps"], record["batch_size"]
    log_every, ckpt_every = record["log_every"], record["checkpoint_every"]
    uc = record.get("until_converged")
    retain_freed_memory()  # no page faults on the step's buffers (glibc)
    gpu = device.type == "cuda"
    with _deterministic(threads, device):
        torch.manual_seed(seed)
        model = build_model(record)  # on the CPU: the same initial weights on every device
        objective = type(objective)(record["latent_dim"], recon=record["recon"], recon_var=record["recon_var"],
                                    **record["hparams"])  # built after the model: its own init is seeded too
        dtype = param_dtype(record["precision"])
        objective.to(dtype)  # FactorVAE's discriminator
        if gpu:
            torch.cuda.init()
            cuda_generator = torch.cuda.default_generators[device.index]
            model.to(device)
            objective.to(device)
        model.train()
        channels_last = record["arch"] == "conv"  # ~20% faster convolutions on CPU (oneDNN)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        opts = Optimisers(model, objective, record["lr"])
        net = wrap(model, record["precision"], device.type)  # the model as the objective calls it
        objective.amp = autocast(record["precision"], device.type)
        columns = ["step", *objective.term_names(model.masked), "seconds"]
        n_terms = len(columns) - 2
        start, seconds, rows, acc, n = 0, 0.0, [], [0.0] * n_terms, 0
        if state == "resume":
            st = load_checkpoint(rd.checkpoint_path, model=model, objective=objective,
                                 optimizers=opts.by_prefix(), columns=columns)
            start, seconds, rows, acc, n = st["step"], st["seconds"], st["rows"], st["acc"], st["n"]

        def checkpoint(done: int):
            save_checkpoint(rd.checkpoint_path, model=model, objective=objective, optimizers=opts.by_prefix(),
                            step=done, seconds=seconds, columns=columns, rows=rows, acc=acc, n=n)

        from ..progress import progress_bar

        with progress_bar(progress, steps, "train", transient=True, completed=start) as advance:
            t0 = time.perf_counter()
            for t, batch, torch_seed in batch_stream(ds, objective, seed, B, start, steps, channels_last, prefetch):
                # the CPU generator only: torch.manual_seed would also queue a lazy CUDA seed and
                # format the Python stack on every step (~1 ms; more on a dask worker's deep stack)
                torch.default_generator.manual_seed(torch_seed)
                if gpu:  # ε, permutations and masks are drawn on the GPU: its generator, same seed
                    cuda_generator.manual_seed(torch_seed)
                    batch = to_device(batch, device)
                if dtype != torch.float32:
                    batch = cast(batch, dtype)
                losses = objective.compute(net, batch, t)
                opts.step(losses)
                vals = torch.stack([losses.terms[c].double() for c in columns[1:-1]]).tolist()
                acc = [a + v for a, v in zip(acc, vals)]
                n += 1
                done = t + 1
                now = time.perf_counter()
                seconds, t0 = seconds + (now - t0), now
                if not all(math.isfinite(v) for v in vals):  # diverged: log this step's row, keep no weights
                    rows.append([done, *(a / n for a in acc), seconds])
                    _diverged(rd, columns, rows, vals)
                if done % log_every == 0 or done == steps:
                    rows.append([done, *(a / n for a in acc), seconds])
                    acc, n = [0.0] * n_terms, 0
                    advance(1, "train  " + "  ".join(
                        f"{c} {v:.4g}" for c, v in zip(columns[1:-1], rows[-1][1:-1])))
                else:
                    advance(1)
                if uc is not None and done < steps and _converged_at(uc, done, columns, rows):
                    break  # the convergence criterion holds: the run ends here (a run of `done` steps)
                if stop_after is not None and done == stop_after and done < steps:
                    checkpoint(done)
                    return out
                if stop.signum is not None and done < steps:  # SIGINT/SIGTERM: save and stop
                    checkpoint(done)
                    raise TrainingInterrupted(done, out)
                if done % ckpt_every == 0 and done < steps:
                    checkpoint(done)
                    t0 = time.perf_counter()
        rd.write_weights(model.state_dict())
        _write_log(rd.log_path, columns, rows)
        rd.checkpoint_path.unlink(missing_ok=True)
    return out
