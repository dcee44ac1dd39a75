"""One set of input validators with one rule set, used by the library and the CLI.

Rules: booleans are never numbers; an integer may be given as an int, a numpy integer or an
integral finite float (``2.0`` -> 2); every number must be finite; bounds are inclusive unless
said otherwise. Each check returns the normalised value or raises :class:`ConfigError`-like
``VarstructError`` (the class is a parameter) with one line naming the argument and the accepted
form. Torch-free.

Declarative checks (scikit-learn's ``_parameter_constraints`` is the model): a
:class:`Constraint` is one accepted form (:class:`Interval`, :class:`Options`, :class:`Text`,
:class:`Names`, :class:`ListOf`, :class:`Table`); a list of them (``None`` in it: the value may be
None) is checked by the one checker :func:`check_value`, a dict param -> list by
:func:`check_params`. ``TrainConfig.validate()`` and the hyper-parameters of the catalog
(:mod:`varstruct.catalog`) are checked this way.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Iterable, Sequence

from .errors import ConfigError, VarstructError

SEED_MAX = 2 ** 63  # seeds live in [0, 2^63): numpy, torch and netCDF (int64) all take them


def _range_text(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return ""


class Constraint:
    """One accepted form of a value: ``accepts(v)``, ``normalise(v)`` (the value in its
    canonical type) and ``describe()`` (what is accepted, for the one-line message)."""

    def accepts(self, v) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def normalise(self, v):
        return v

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class Interval(Constraint):
    """A finite number of ``kind`` int or float in [lo, hi] (either bound optional; ``lo_open``/
    ``hi_open``: strict). Booleans and strings are never numbers; an int kind takes an integral
    finite float (``2.0`` -> 2), a float kind takes an int (``4`` -> 4.0)."""

    def __init__(self, kind: type, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False):
        self.kind, self.lo, self.hi, self.lo_open, self.hi_open = kind, lo, hi, lo_open, hi_open

    def _number(self, v):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return None
        if self.kind is int:
            if isinstance(v, numbers.Integral):
                return int(v)
            f = float(v)
            return int(f) if math.isfinite(f) and f == int(f) else None
        f = float(v)
        return f if math.isfinite(f) else None

    def accepts(self, v) -> bool:
        x = self._number(v)
        if x is None:
            return False
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return not (self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi))

    def normalise(self, v):
        return self._number(v)

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        return " ".join([what, _range_text(self.lo, self.hi, self.lo_open, self.hi_open)]).strip()


class Options(Constraint):
    """One of a fixed set of values (compared with ==, booleans never equal to numbers)."""

    def __init__(self, values: Iterable):
        self.values = tuple(values)

    def accepts(self, v) -> bool:
        return any(v == o and isinstance(v, bool) == isinstance(o, bool) for o in self.values) \
            if _hashable(v) else False

    def describe(self) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(map(str, self.values))


class Text(Constraint):
    """A non-empty string (``path``: or an ``os.PathLike``, normalised to its string)."""

    def __init__(self, path: bool = False):
        self.path = path

    def accepts(self, v) -> bool:
        if self.path and isinstance(v, os.PathLike):
            v = os.fspath(v)
        return isinstance(v, str) and bool(v)

    def normalise(self, v):
        return os.fspath(v) if self.path else v

    def describe(self) -> str:
        return "a path" if self.path else "a non-empty string"


class Names(Constraint):
    """A non-empty list (or tuple) of distinct non-empty strings, normalised to a list."""

    def accepts(self, v) -> bool:
        return (isinstance(v, (list, tuple)) and bool(v) and all(isinstance(x, str) and x for x in v)
                and len(set(v)) == len(v))

    def normalise(self, v):
        return list(v)

    def describe(self) -> str:
        return "a non-empty list of distinct names"


class ListOf(Constraint):
    """A non-empty list (or tuple) whose every item meets ``item``; normalised item by item."""

    def __init__(self, item: Constraint):
        self.item = item

    def accepts(self, v) -> bool:
        return isinstance(v, (list, tuple)) and bool(v) and all(self.item.accepts(x) for x in v)

    def normalise(self, v):
        return [self.item.normalise(x) for x in v]

    def describe(self) -> str:
        return f"a non-empty list of {_plural(self.item.describe())}"


class Table(Constraint):
    """A dict (the form only; its entries are checked by the owner, e.g. with :func:`check_params`)."""

    def accepts(self, v) -> bool:
        return isinstance(v, dict)

    def normalise(self, v):
        return dict(v)

    def describe(self) -> str:
        return "a table (dict)"


def _plural(text: str) -> str:
    for a in ("an integer", "a finite number"):
        if text.startswith(a):
            return a.split(" ", 1)[1] + "s" + text[len(a):]
    return text


def _hashable(v) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def check_value(name: str, value, constraints: Sequence, param: str | None = None,
                error: type[VarstructError] | None = None):
    """``value`` normalised by the first of ``constraints`` it meets (``None`` in the list: the
    value may be None); otherwise ``error`` (default :class:`ConfigError`, with ``param``) with
    the one line ``"{name} must be A or B, got value"``."""
    for c in constraints:
        if c is None:
            if value is None:
                return None
        elif c.accepts(value):
            return c.normalise(value)
    forms = [("None" if c is None else c.describe()) for c in constraints]
    msg = f"{name} must be {' or '.join(forms)}, got {value!r}"
    if error is None or issubclass(error, ConfigError):
        raise (error or ConfigError)(msg, param=param if param is not None else name)
    raise error(msg)


def check_params(values: dict, constraints: dict, prefix: str = "", error: type[VarstructError] | None = None) -> dict:
    """Each entry of ``values`` checked by :func:`check_value` against ``constraints[key]``
    (scikit-learn's ``_parameter_constraints``: param -> list of accepted forms), in the order of
    ``constraints``; the normalised dict. Keys without constraints are errors. ``prefix`` is
    prepended to the names (``"mask."``)."""
    unknown = [k for k in values if k not in constraints]
    if unknown:
        name = f"{prefix}{unknown[0]}"
        msg = f"unknown entry {name} (known: {', '.join(prefix + k for k in constraints)})"
        if error is None or issubclass(error, ConfigError):
            raise (error or ConfigError)(msg, param=name)
        raise error(msg)
    return {k: check_value(f"{prefix}{k}", values[k], constraints[k], error=error)
            for k in constraints if k in values}


def check_int(name: str, value, lo: int | None = None, hi: int | None = None,
              error: type[VarstructError] = VarstructError) -> int:
    """``value`` as an int in [lo, hi] (either bound optional)."""
    c = Interval(int, lo, hi)
    if not c.accepts(value):
        raise error(f"{name} must be {c.describe()}, got {value!r}")
    return c.normalise(value)


def check_float(name: str, value, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                hi_open: bool = False, error: type[VarstructError] = VarstructError) -> float:
    """``value`` as a finite float in the given range (``lo_open``: strictly above ``lo``)."""
    c = Interval(float, lo, hi, lo_open, hi_open)
    if not c.accepts(value):
        raise error(f"{name} must be {c.describe()}, got {value!r}")
    return c.normalise(value)


def check_seed(name: str, value, error: type[VarstructError] = VarstructError) -> int:
    """A seed: an integer in [0, 2^63)."""
    return check_int(name, value, 0, SEED_MAX - 1, error=error)


def check_choice(name: str, value, choices: Iterable, error: type[VarstructError] = VarstructError):
    """``value`` if it is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise error(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_choices(name: str, values: Sequence | str, choices: Iterable,
                  error: type[VarstructError] = VarstructError) -> list:
    """A list (or comma-separated string) of distinct members of ``choices``."""
    choices = list(choices)
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    values = list(values)
    unknown = [v for v in values if v not in choices]
    if unknown:
        raise error(f"{name}: unknown {', '.join(map(str, unknown))} (known: {', '.join(map(str, choices))})")
    if len(set(values)) != len(values):
        raise error(f"{name}: repeated entries in {', '.join(map(str, values))}")
    if not values:
        raise error(f"{name}: give at least one of {', '.join(map(str, choices))}")
    return values
