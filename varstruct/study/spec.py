"""Study specs: a TOML file -> the list of runs it defines, each with a deterministic, readable dir.

Format (see docs/studies.md)::

    seeds = [0, 1]          # or an int n: seeds 0..n-1
    steps = 300
    [train]                 # TrainConfig fields shared by every run (lists sweep, see below)
    [[datasets]]            # name, params (lists sweep), optional data_file
    [[methods]]             # name, hparams (lists sweep)
    [evaluate]              # metrics, seed, n_train, n_test
    [measure]               # model measures: n_anchors, seed, response, n_variance, n_decoder

A list of scalars sweeps over its values; to pass one list-valued setting, nest it
(``sizes = [[10, 10, 10]]``). The runs are the Cartesian product dataset grid × method grid ×
swept train options × seeds, per (dataset block, method block). Run dir:
``<dataset>-<params>/<method>-<hparams>[-<train options with several values>]/seed<s>`` with parameters sorted by
name, numbers written ``key<value>`` and strings as their value, e.g.
``toy_blobs-flip-r2/beta_vae-beta4/seed0``.
"""
from __future__ import annotations

import itertools
import json
import math
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..validate import check_int, check_seed

TOP_KEYS = {"name", "description", "seeds", "steps", "train", "datasets", "methods", "evaluate", "measure"}
# [train] takes any TrainConfig field (checked by the sweep against TrainConfig) except these:
RESERVED_TRAIN_KEYS = {"dataset", "dataset_params", "data_file", "method", "hparams", "seed", "steps", "out"}
EVALUATE_KEYS = {"metrics", "seed", "n_train", "n_test"}
MEASURE_KEYS = {"n_anchors", "seed", "response", "n_variance", "n_decoder", "batch_size"}
EVALUATE_DEFAULTS = {"metrics": None, "seed": 0, "n_train": 10000, "n_test": 5000}
MEASURE_DEFAULTS = {"n_anchors": 200, "seed": 0}


@dataclass(frozen=True)
class Run:
    """One run of a study: where it goes and what it does."""

    rel: str                       # run dir relative to the models dir (posix)
    train: dict                    # TrainConfig fields (dataset, method, hparams, dataset_params, seed, steps, ...)
    evaluate: dict = field(default_factory=dict)   # kwargs of varstruct.evaluate (metrics, seed, n_train, n_test)
    measure: dict = field(default_factory=dict)    # kwargs of varstruct.measure_model

    def to_dict(self) -> dict:
        return {"rel": self.rel, "train": self.train, "evaluate": self.evaluate, "measure": self.measure}


def _is_scalar(v) -> bool:
    return isinstance(v, (str, int, float, bool))


def _grid(table: dict, where: str) -> tuple[list[str], list[dict]]:
    """(keys with more than one value, list of dicts): the Cartesian product of the list-valued entries."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    keys, choices, swept = [], [], []
    for k, v in table.items():
        if isinstance(v, list):
            if not v:
                raise ConfigError(f"{where}.{k}: empty list (give at least one value)")
            if all(isinstance(x, list) for x in v):   # [[...], [...]]: sweep over list values
                vals = v
            elif all(_is_scalar(x) for x in v) or all(isinstance(x, dict) for x in v):  # scalars or tables
                vals = v
            else:
                raise ConfigError(f"{where}.{k}: a list sweeps over scalars; nest a list-valued setting "
                                  f"([[1, 2]]), got {v!r}")
            keys.append(k)
            choices.append(vals)
            if len(vals) > 1:
                swept.append(k)
        else:
            keys.append(k)
            choices.append([v])
    return swept, [dict(zip(keys, combo)) for combo in itertools.product(*choices)]


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else format(v, "g")
    if isinstance(v, list):
        return "_".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "_".join(f"{k}{_fmt(x)}" for k, x in sorted(v.items()))
    return str(v)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+]+")


def slug(name: str, params: dict) -> str:
    """``name-<tokens>``, tokens sorted by key: strings as their value, everything else key+value."""
    tokens = [name]
    for k in sorted(params):
        v = params[k]
        tokens.append(str(v) if isinstance(v, str) else f"{k}{_fmt(v)}")
    return "-".join(_UNSAFE.sub("_", t).strip("_") or "_" for t in tokens)


def _check_keys(table, allowed, where):
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _seeds(value) -> list[int]:
    if isinstance(value, list):
        seeds = [check_seed("seeds", s, error=ConfigError) for s in value]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds must be a non-empty list of distinct seeds or a count, got {value!r}")
        return seeds
    return list(range(check_int("seeds", value, 1, error=ConfigError)))


def _blocks(spec, key, name_key="name") -> list[dict]:
    blocks = spec.get(key)
    if isinstance(blocks, dict):
        blocks = [blocks]
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, dict) for b in blocks):
        raise ConfigError(f"the spec needs at least one [[{key}]] table")
    for i, b in enumerate(blocks):
        where = f"{key}[{i}]"
        if not isinstance(b.get(name_key), str):
            raise ConfigError(f"{where} needs a {name_key} = \"...\"")
    return blocks


def runs_from_dict(spec: dict) -> list[Run]:
    """The runs a parsed spec defines, in spec order (dataset, method, train grid, seed)."""
    _check_keys(spec, TOP_KEYS, "spec")
    seeds = _seeds(spec.get("seeds", [0]))
    if "steps" not in spec:
        raise ConfigError("the spec needs steps = N (training steps per run)")
    steps = spec["steps"]
    steps_list = steps if isinstance(steps, list) else [steps]
    for s in steps_list:
        check_int("steps", s, 1, error=ConfigError)
    train = dict(spec.get("train", {}))
    if not isinstance(train, dict):
        raise ConfigError(f"[train] must be a table, got {train!r}")
    reserved = sorted(RESERVED_TRAIN_KEYS & set(train))
    if reserved:
        raise ConfigError(f"[train]: {', '.join(reserved)} cannot be set here (seeds and steps are top-level keys, "
                          "datasets and methods their own tables)")
    if isinstance(steps, list):
        train["steps"] = steps
    train_swept, train_grid = _grid(train, "[train]")
    evaluate = dict(EVALUATE_DEFAULTS, **spec.get("evaluate", {}))
    _check_keys(evaluate, EVALUATE_KEYS, "[evaluate]")
    measure = dict(MEASURE_DEFAULTS, **spec.get("measure", {}))
    _check_keys(measure, MEASURE_KEYS, "[measure]")
    if evaluate["metrics"] is not None:
        from ..metrics.evaluate import METRICS
        from ..validate import check_choices
        evaluate["metrics"] = check_choices("[evaluate] metrics", evaluate["metrics"], METRICS, error=ConfigError)

    runs, seen = [], {}
    for di, dblock in enumerate(_blocks(spec, "datasets")):
        _check_keys(dblock, {"name", "params", "data_file"}, f"datasets[{di}]")
        _, pgrid = _grid(dblock.get("params", {}), f"datasets[{di}].params")
        for mi, mblock in enumerate(_blocks(spec, "methods")):
            _check_keys(mblock, {"name", "hparams"}, f"methods[{mi}]")
            _, hgrid = _grid(mblock.get("hparams", {}), f"methods[{mi}].hparams")
            for params, hparams, tr, seed in itertools.product(pgrid, hgrid, train_grid, seeds):
                swept_train = {k: tr[k] for k in train_swept}
                rel = "/".join([slug(dblock["name"], params), slug(mblock["name"], {**hparams, **swept_train}),
                                f"seed{seed}"])
                cfg = {"dataset": dblock["name"], "dataset_params": params, "method": mblock["name"],
                       "hparams": hparams, "seed": seed, "steps": steps, **tr}
                if dblock.get("data_file"):
                    cfg["data_file"] = str(dblock["data_file"])
                if rel in seen:
                    raise ConfigError(f"two runs map to the same dir {rel} ({seen[rel]} and {cfg}); "
                                      "give them distinct parameters")
                seen[rel] = cfg
                runs.append(Run(rel=rel, train=cfg, evaluate=dict(evaluate), measure=dict(measure)))
    return runs


def load_spec(path) -> dict:
    """Parse a TOML spec file (ConfigError with the file and the parser's message on failure)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"spec {path}: no such file")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"spec {path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"spec {path}: cannot read ({e})") from None


def read_spec(path) -> list[Run]:
    """The runs of the spec file at ``path``."""
    try:
        return runs_from_dict(load_spec(path))
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith("spec ") else f"spec {path}: {msg}") from None


def describe(value) -> str:
    """A compact one-line rendering of a config value (for tables)."""
    if isinstance(value, float) and math.isfinite(value):
        return _fmt(value)
    return json.dumps(value) if not isinstance(value, str) else value
