"""Shared pieces of the CLI: the typer apps, the one-line error type, output helpers."""
from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="varstruct: the structure of variance in data and what VAEs learn from it.")
measure_app = typer.Typer(no_args_is_help=True, help="Measure the variance structure of a dataset or a model.")
app.add_typer(measure_app, name="measure")

console = Console()


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def parse_params(items: list[str] | None) -> dict:
    """``["r=3", "profile=flip", "sizes=[5,5]"]`` -> {"r": 3, "profile": "flip", "sizes": [5, 5]}.

    Values are read as JSON where they parse (numbers, lists, true/false), else kept as strings."""
    import json

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"parameter {item!r} is not KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out
