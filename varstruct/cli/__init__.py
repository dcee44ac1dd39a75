"""The `varstruct` command line: a thin typer shell over the library.

Each command lives in a small module of this package and registers itself on ``app`` (or a
sub-app). Errors a user can cause are reported by :func:`main` as one line on stderr with
exit code 2, never a traceback.
"""
from __future__ import annotations

import sys

import typer

from .common import UserError, app, measure_app  # noqa: F401

# Command modules register themselves on import.
from . import data_cmd  # noqa: E402,F401
from . import train_cmd  # noqa: E402,F401
from . import evaluate_cmd  # noqa: E402,F401
from . import measure_dataset_cmd  # noqa: E402,F401
from . import measure_model_cmd  # noqa: E402,F401
from . import sweep_cmd  # noqa: E402,F401
from . import collect_cmd  # noqa: E402,F401
from . import correlate_cmd  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    from ..data.base import DatasetError
    from ..io import OutputError
    from ..models.errors import ConfigError, ModelDirError

    try:
        rv = app(args=argv, prog_name="varstruct", standalone_mode=False)
        return int(rv or 0) if isinstance(rv, int) else 0
    except typer.Exit as e:  # --help, explicit exits
        return e.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as e:  # usage errors: bad option, missing argument
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        if msg.strip():
            print(f"error: {msg}", file=sys.stderr)
        return e.exit_code if isinstance(getattr(e, "exit_code", None), int) else 2
    except (UserError, DatasetError, OutputError, ConfigError, ModelDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
