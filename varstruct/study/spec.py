"""Study specs: a TOML file -> the list of runs it defines, each with a deterministic, readable dir.

Format (see docs/studies.md)::

    seeds = [0, 1]          # or an int n: seeds 0..n-1
    steps = 300
    [train]                 # TrainConfig fields shared by every run (lists sweep, see below)
    [[datasets]]            # name, params (lists sweep), optional data_file
    [[methods]]             # name, hparams (lists sweep)
    [evaluate]              # metrics, seed, n_train, n_test
    [measure]               # model measures: n_anchors, seed, response, n_variance, n_decoder

A list of scalars sweeps over its values (all of one type: numbers, strings or booleans; no value
twice); to pass one list-valued setting, nest it (``sizes = [[10, 10, 10]]``). The grid is counted
before it is built: a spec of more than :data:`MAX_RUNS` runs is refused. A relative ``data_file``
is resolved against the spec file's folder. The runs are the Cartesian product dataset grid × method grid ×
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

from .. import catalog
from ..errors import ConfigError
from ..validate import SEED_MAX, check_choice, check_choices, check_int, check_seed

TOP_KEYS = {"name", "description", "seeds", "steps", "train", "datasets", "methods", "evaluate", "measure"}
# [train] takes any TrainConfig field (checked by the sweep against TrainConfig) except these:
RESERVED_TRAIN_KEYS = {"dataset", "dataset_params", "data_file", "method", "hparams", "seed", "steps", "out"}
EVALUATE_KEYS = {"metrics", "seed", "n_train", "n_test"}
MEASURE_KEYS = {"n_anchors", "seed", "response", "n_variance", "n_decoder", "batch_size"}
EVALUATE_DEFAULTS = {"metrics": None, "seed": 0, "n_train": 10000, "n_test": 5000}
MEASURE_DEFAULTS = {"n_anchors": 200, "seed": 0}
#: the most runs one spec may define (counted before any run is built)
MAX_RUNS = 100_000


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


def _kind(x) -> str:
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, (int, float)):
        return "number"
    return "string" if isinstance(x, str) else type(x).__name__


def _choices(table: dict, where: str) -> list[tuple[str, list]]:
    """(key, values) per entry of a grid table, checked: a list sweeps over values of one type
    (numbers, strings, booleans, lists or tables), none repeated."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    out = []
    for k, v in table.items():
        if not isinstance(v, list):
            out.append((k, [v]))
            continue
        if not v:
            raise ConfigError(f"{where}.{k}: empty list (give at least one value)")
        if not (all(isinstance(x, list) for x in v) or all(_is_scalar(x) for x in v)
                or all(isinstance(x, dict) for x in v)):
            raise ConfigError(f"{where}.{k}: a list sweeps over scalars; nest a list-valued setting "
                              f"([[1, 2]]), got {v!r}")
        kinds = sorted({_kind(x) for x in v})
        if len(kinds) > 1:
            raise ConfigError(f"{where}.{k}: a swept list mixes {' and '.join(kinds)} values ({v!r}); "
                              "give values of one type")
        seen = []
        for x in v:
            key = json.dumps(x, sort_keys=True) if isinstance(x, (list, dict)) else x
            if key in seen:
                raise ConfigError(f"{where}.{k}: the value {x!r} is given twice ({v!r})")
            seen.append(key)
        out.append((k, v))
    return out


def _grid(table: dict, where: str) -> tuple[list[str], list[dict]]:
    """(keys with more than one value, list of dicts): the Cartesian product of the list-valued entries."""
    choices = _choices(table, where)
    swept = [k for k, vals in choices if len(vals) > 1]
    keys = [k for k, _ in choices]
    return swept, [dict(zip(keys, combo)) for combo in itertools.product(*(vals for _, vals in choices))]


def _grid_size(table: dict, where: str) -> int:
    """How many dicts :func:`_grid` would build, without building them."""
    return math.prod(len(vals) for _, vals in _choices(table, where))


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


def _seeds(value) -> range | list[int]:
    """The seeds: a list of distinct seeds, or range(n) for a count n (not built)."""
    if isinstance(value, list):
        seeds = [check_seed("seeds", s, error=ConfigError) for s in value]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds must be a non-empty list of distinct seeds or a count, got {value!r}")
        return seeds
    return range(check_int("seeds", value, 1, SEED_MAX, error=ConfigError))


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


def _check_evaluate(ev: dict) -> dict:
    """[evaluate] with its values checked (metric names last, in :func:`runs_from_dict`)."""
    ev = dict(ev)
    ev["seed"] = check_seed("[evaluate] seed", ev["seed"], error=ConfigError)
    ev["n_train"] = check_int("[evaluate] n_train", ev["n_train"], 2, error=ConfigError)
    ev["n_test"] = check_int("[evaluate] n_test", ev["n_test"], 0, error=ConfigError)
    m = ev["metrics"]
    if m is not None and (not isinstance(m, (list, str)) or not m or
                          not all(isinstance(x, str) for x in ([m] if isinstance(m, str) else m))):
        raise ConfigError(f"[evaluate] metrics must be a non-empty list of metric names, got {m!r}")
    return ev


def _check_measure(me: dict) -> dict:
    """[measure] with its values checked (response: one of the catalog's)."""
    me = dict(me)
    me["n_anchors"] = check_int("[measure] n_anchors", me["n_anchors"], 1, error=ConfigError)
    me["seed"] = check_seed("[measure] seed", me["seed"], error=ConfigError)
    if "n_variance" in me:
        me["n_variance"] = check_int("[measure] n_variance", me["n_variance"], 2, error=ConfigError)
    if "n_decoder" in me:
        me["n_decoder"] = check_int("[measure] n_decoder", me["n_decoder"], 1, me.get("n_variance"),
                                    error=ConfigError)
    if "batch_size" in me:
        me["batch_size"] = check_int("[measure] batch_size", me["batch_size"], 1, error=ConfigError)
    if "response" in me:
        check_choice("[measure] response", me["response"], catalog.RESPONSES, error=ConfigError)
    return me


def _check_train_keys(train: dict) -> None:
    """Unknown [train] options, from TrainConfig's fields (torch-free: training.config imports no torch)."""
    import dataclasses

    from ..training.config import TrainConfig

    allowed = {f.name for f in dataclasses.fields(TrainConfig)} - RESERVED_TRAIN_KEYS
    unknown = sorted(set(train) - allowed)
    if unknown:
        raise ConfigError(f"[train]: unknown option(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def count_runs(spec: dict) -> int:
    """How many runs a parsed spec defines, counted without building them (ConfigError for a
    malformed spec)."""
    _check_keys(spec, TOP_KEYS, "spec")
    n_seeds = len(_seeds(spec.get("seeds", [0])))
    if "steps" not in spec:
        raise ConfigError("the spec needs steps = N (training steps per run)")
    train = spec.get("train", {})
    if not isinstance(train, dict):
        raise ConfigError(f"[train] must be a table, got {train!r}")
    n_train = _grid_size({**train, "steps": spec["steps"]}, "[train]")
    n = 0
    for di, dblock in enumerate(_blocks(spec, "datasets")):
        _check_keys(dblock, {"name", "params", "data_file"}, f"datasets[{di}]")
        n_data = _grid_size(dblock.get("params", {}), f"datasets[{di}].params")
        for mi, mblock in enumerate(_blocks(spec, "methods")):
            _check_keys(mblock, {"name", "hparams"}, f"methods[{mi}]")
            n += n_data * _grid_size(mblock.get("hparams", {}), f"methods[{mi}].hparams") * n_train * n_seeds
    return n


def runs_from_dict(spec: dict, base: str | Path | None = None) -> list[Run]:
    """The runs a parsed spec defines, in spec order (dataset, method, train grid, seed).

    base: the folder a relative ``data_file`` is resolved against (the spec file's folder;
    None: left as written). Everything that needs no training library is checked here, the
    grid counted before it is built (more than :data:`MAX_RUNS` runs: ConfigError)."""
    _check_keys(spec, TOP_KEYS, "spec")
    n = count_runs(spec)
    if n > MAX_RUNS:
        raise ConfigError(f"the spec defines {n:,} runs, more than the limit of {MAX_RUNS:,} runs per spec; "
                          "split the study into several specs")
    seeds = _seeds(spec.get("seeds", [0]))
    steps = spec["steps"]
    steps_list = steps if isinstance(steps, list) else [steps]
    for s in steps_list:
        check_int("steps", s, 0, error=ConfigError)
    train = dict(spec.get("train", {}))
    reserved = sorted(RESERVED_TRAIN_KEYS & set(train))
    if reserved:
        raise ConfigError(f"[train]: {', '.join(reserved)} cannot be set here (seeds and steps are top-level keys, "
                          "datasets and methods their own tables)")
    _check_train_keys(train)
    if isinstance(steps, list):
        train["steps"] = steps
    train_swept, train_grid = _grid(train, "[train]")
    for name in ("evaluate", "measure"):
        if not isinstance(spec.get(name, {}), dict):
            raise ConfigError(f"[{name}] must be a table, got {spec[name]!r}")
    evaluate = dict(EVALUATE_DEFAULTS, **spec.get("evaluate", {}))
    _check_keys(evaluate, EVALUATE_KEYS, "[evaluate]")
    evaluate = _check_evaluate(evaluate)
    measure = dict(MEASURE_DEFAULTS, **spec.get("measure", {}))
    _check_keys(measure, MEASURE_KEYS, "[measure]")
    measure = _check_measure(measure)

    runs, seen = [], {}
    for di, dblock in enumerate(_blocks(spec, "datasets")):
        _, pgrid = _grid(dblock.get("params", {}), f"datasets[{di}].params")
        data_file = dblock.get("data_file")
        if data_file is not None:
            if not isinstance(data_file, str) or not data_file:
                raise ConfigError(f"datasets[{di}].data_file must be a path, got {data_file!r}")
            p = Path(data_file).expanduser()
            data_file = str(Path(base) / p if base is not None and not p.is_absolute() else p)
        for mi, mblock in enumerate(_blocks(spec, "methods")):
            _, hgrid = _grid(mblock.get("hparams", {}), f"methods[{mi}].hparams")
            for params, hparams, tr, seed in itertools.product(pgrid, hgrid, train_grid, seeds):
                swept_train = {k: tr[k] for k in train_swept if k != "baseline"}
                if tr.get("baseline"):  # a fitted baseline is named by its kind, swept or not
                    swept_train["baseline"] = tr["baseline"].get("kind")
                rel = "/".join([slug(dblock["name"], params), slug(mblock["name"], {**hparams, **swept_train}),
                                f"seed{seed}"])
                cfg = {"dataset": dblock["name"], "dataset_params": params, "method": mblock["name"],
                       "hparams": hparams, "seed": seed, "steps": steps, **tr}
                if data_file:
                    cfg["data_file"] = data_file
                if rel in seen:
                    raise ConfigError(f"two runs map to the same dir {rel} ({seen[rel]} and {cfg}); "
                                      "give them distinct parameters")
                seen[rel] = cfg
                runs.append(Run(rel=rel, train=cfg, evaluate=dict(evaluate), measure=dict(measure)))
    if evaluate["metrics"] is not None:
        metrics = check_choices("[evaluate] metrics", evaluate["metrics"], catalog.METRICS, error=ConfigError)
        for r in runs:
            r.evaluate["metrics"] = list(metrics)
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
    """The runs of the spec file at ``path`` (a relative ``data_file`` is taken from its folder)."""
    try:
        return runs_from_dict(load_spec(path), base=Path(path).expanduser().resolve().parent)
    except ConfigError as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith("spec ") else f"spec {path}: {msg}") from None


def describe(value) -> str:
    """A compact one-line rendering of a config value (for tables)."""
    if isinstance(value, float) and math.isfinite(value):
        return _fmt(value)
    return json.dumps(value) if not isinstance(value, str) else value
