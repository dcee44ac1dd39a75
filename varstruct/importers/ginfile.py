"""gin config files read as text: ``scope/configurable.parameter = value`` bindings.

Nothing is executed: values are parsed with :func:`ast.literal_eval` (numbers, strings, True /
False / None, lists, tuples, dicts); references (``@name``, ``@name()``, ``@scope/name``) and
macros (``%NAME``) are kept as their text. Comments (``#``) and blank lines are skipped,
``import`` / ``include`` lines ignored, and a value continues over the following lines while its
brackets are open. A later binding of the same key replaces an earlier one (as gin does).
"""
from __future__ import annotations

import ast
import re

from ..errors import VarstructError

_KEY = re.compile(r"^[A-Za-z_][\w./]*$")


class GinError(VarstructError):
    """A gin file that cannot be read as bindings."""


def _strip_comment(line: str) -> str:
    out, quote = [], None
    for ch in line:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out).rstrip()


def _depth(text: str) -> int:
    d, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            d += 1
        elif ch in ")]}":
            d -= 1
    return d


def parse_value(text: str):
    """The Python value of one binding's right-hand side (references and macros as text)."""
    text = text.strip()
    if text.startswith(("@", "%")):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text  # not a literal (e.g. a list of references): kept as text


def parse_gin(text: str, what: str = "gin file") -> dict:
    """{"scope/configurable.parameter": value} of a gin file's bindings."""
    out: dict = {}
    pending = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if pending is not None:
            pending[1] += "\n" + line
            if _depth(pending[1]) <= 0:
                out[pending[0]] = parse_value(pending[1])
                pending = None
            continue
        if not line.strip() or line.lstrip().startswith(("import ", "include ", "from ")):
            continue
        if "=" not in line:
            raise GinError(f"{what}: line {n} is not a binding ({raw.strip()[:60]!r})")
        key, value = (s.strip() for s in line.split("=", 1))
        if not _KEY.match(key):
            raise GinError(f"{what}: line {n} binds a malformed name {key[:60]!r}")
        if _depth(value) > 0:
            pending = [key, value]
            continue
        out[key] = parse_value(value)
    if pending is not None:
        raise GinError(f"{what}: unclosed bracket in the value of {pending[0]}")
    return out
