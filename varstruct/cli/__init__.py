"""The `varstruct` command line: a thin typer shell over the library (manual: docs/cli.md).

The application, its error reporting and :func:`~.app.main` (the console script's entry point,
``varstruct.cli.app:main``) live in :mod:`.app`, the shared options in :mod:`.common`, each
command in a ``*_cmd`` module. This ``__init__`` imports nothing, so the command modules'
``from . import common`` makes no circle through it. Nothing in varstruct imports the CLI.
"""
