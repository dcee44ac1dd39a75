"""Checkpoints as one safetensors file: every piece of training state flattened into tensors.

Keys: ``model.<param>``, ``objective.<param>`` (FactorVAE's discriminator), ``opt.<i>.<key>``
and ``aux.<name>.<i>.<key>`` (optimiser states: i = parameter index, key = exp_avg, ...),
``meta.step`` (completed steps), ``meta.seconds`` (training wall time so far), ``log.rows``
[R, 1 + T] (rows written so far), ``log.acc`` [T] and ``log.n`` (the running mean of the
current log window). The random streams need no state: step t draws from seeds derived from
(seed, t) only (see :mod:`varstruct.training.loop`). Nothing is pickled.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..models.errors import ModelDirError
from ..runs.weights import read_weights, write_weights

FORMAT = "varstruct-checkpoint-1"


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """An optimiser's per-parameter state as flat tensors ``<prefix>.<i>.<key>`` (hyper-
    parameters are not saved: the config rebuilds them)."""
    out = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"{prefix}.{i}.{k}"] = v.detach().clone() if torch.is_tensor(v) else torch.tensor(v)
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    sd = opt.state_dict()
    params = [p for g in opt.param_groups for p in g["params"]]
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            i, k = key[len(prefix) + 1:].split(".", 1)
            if not i.isdigit() or int(i) >= len(params):
                raise ModelDirError(f"checkpoint: optimiser entry {key} does not match the model")
            p = params[int(i)]
            if v.shape == p.shape:  # moments take the parameter's layout (channels_last): the
                v = torch.empty_like(p, dtype=v.dtype).copy_(v)  # fused kernel walks raw memory
            state.setdefault(int(i), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def save_checkpoint(path, *, model, objective, optimizers: dict, step: int, seconds: float, columns, rows, acc,
                    n) -> Path:
    """``optimizers``: checkpoint prefix -> optimiser (:meth:`Optimisers.by_prefix`)."""
    t = {f"model.{k}": v for k, v in model.state_dict().items()}
    t.update({f"objective.{k}": v for k, v in objective.state_dict().items()})
    for prefix, o in optimizers.items():
        t.update(optimizer_tensors(o, prefix))
    t["meta.step"] = torch.tensor(step, dtype=torch.int64)
    t["meta.seconds"] = torch.tensor(seconds, dtype=torch.float64)
    t["log.rows"] = torch.tensor(rows, dtype=torch.float64).reshape(-1, len(columns))
    t["log.acc"] = torch.tensor(acc, dtype=torch.float64)
    t["log.n"] = torch.tensor(n, dtype=torch.int64)
    return write_weights(path, t, metadata={"format": FORMAT, "columns": json.dumps(list(columns))})


def load_checkpoint(path, *, model, objective, optimizers: dict, columns) -> dict:
    """Restore model/objective/optimisers in place; return {step, seconds, rows, acc, n}."""
    from safetensors import safe_open

    t = read_weights(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # read_weights already validated the file
        meta = {}
    if meta.get("format") != FORMAT or json.loads(meta.get("columns", "[]")) != list(columns):
        raise ModelDirError(f"{path}: not a checkpoint of this run (format or logged terms differ)")
    try:
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")}, strict=True)
        objective.load_state_dict({k[10:]: v for k, v in t.items() if k.startswith("objective.")}, strict=True)
        for prefix, o in optimizers.items():
            load_optimizer_tensors(o, t, prefix)
        return {"step": int(t["meta.step"]), "seconds": float(t["meta.seconds"]),
                "rows": t["log.rows"].tolist(), "acc": t["log.acc"].tolist(), "n": int(t["log.n"])}
    except (RuntimeError, KeyError, ValueError) as e:
        raise ModelDirError(f"{path}: checkpoint does not match the run ({str(e).splitlines()[0]})") from None
