"""One set of input validators with one rule set, used by the library and the CLI.

Rules: booleans are never numbers; an integer may be given as an int, a numpy integer or an
integral finite float (``2.0`` -> 2); every number must be finite; bounds are inclusive unless
said otherwise. Each check returns the normalised value or raises :class:`ConfigError`-like
``VarstructError`` (the class is a parameter) with one line naming the argument and the accepted
form. Torch-free.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable, Sequence

from .errors import VarstructError

SEED_MAX = 2 ** 63  # seeds live in [0, 2^63): numpy, torch and netCDF (int64) all take them


def _range_text(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return ""


def check_int(name: str, value, lo: int | None = None, hi: int | None = None,
              error: type[VarstructError] = VarstructError) -> int:
    """``value`` as an int in [lo, hi] (either bound optional)."""
    what = " ".join(["an integer", _range_text(lo, hi)]).strip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be {what}, got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    else:
        f = float(value)
        if not math.isfinite(f) or f != int(f):
            raise error(f"{name} must be {what}, got {value!r}")
        v = int(f)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise error(f"{name} must be {what}, got {value!r}")
    return v


def check_float(name: str, value, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                hi_open: bool = False, error: type[VarstructError] = VarstructError) -> float:
    """``value`` as a finite float in the given range (``lo_open``: strictly above ``lo``)."""
    what = " ".join(["a finite number", _range_text(lo, hi, lo_open, hi_open)]).strip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be {what}, got {value!r}")
    v = float(value)
    bad = not math.isfinite(v)
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v >= hi if hi_open else v > hi
    if bad:
        raise error(f"{name} must be {what}, got {value!r}")
    return v


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
