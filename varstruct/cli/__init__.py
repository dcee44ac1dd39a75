"""The `varstruct` command line: a thin typer shell over the library (manual: docs/cli.md).

The application and its error reporting live in :mod:`.app`, the shared options in
:mod:`.common`, each command in a ``*_cmd`` module. This ``__init__`` imports none of them at
load time (so a command module importing :mod:`.common` makes no circle through it); :func:`main`,
the console script's entry point, loads :mod:`.app` on first call. Nothing in varstruct imports
the CLI.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script (``varstruct``): :func:`varstruct.cli.app.main`."""
    from .app import main as run

    return run(argv)
