"""The `varstruct` application: every command registered on ``app``, and :func:`main`, which runs it.

Each command lives in a small module of this package and registers itself on ``app`` (or a
sub-app, both defined in :mod:`.common`) when imported; this module imports them all. Every
problem a user can cause (a :class:`varstruct.errors.VarstructError`, an OS-level failure such as
a full disk, a request that does not fit in memory) is reported by :func:`main` as one line on
stderr with exit code 2, never a traceback; an interrupted training run prints how to resume it
and exits with 130. Importing this module does not import torch.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import types

import typer

from .common import app, measure_app  # noqa: F401

# Command modules register themselves on import (the order is the order of `varstruct --help`).
from . import data_cmd  # noqa: E402,F401
from . import train_cmd  # noqa: E402,F401
from . import evaluate_cmd  # noqa: E402,F401
from . import measure_dataset_cmd  # noqa: E402,F401
from . import measure_model_cmd  # noqa: E402,F401
from . import sweep_cmd  # noqa: E402,F401
from . import collect_cmd  # noqa: E402,F401
from . import correlate_cmd  # noqa: E402,F401
from . import import_cmd  # noqa: E402,F401

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def os_error_line(e: OSError) -> str:
    """``cannot write FILE: No space left on device`` and the like."""
    from ..errors import first_line

    what = getattr(e, "filename", None)
    reason = e.strerror or first_line(e)
    return f"{what}: {reason}" if what else reason


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    with _sigint_noted() as sigint:
        try:
            rv = app(args=argv, prog_name="varstruct", standalone_mode=False)
            rv = int(rv or 0) if isinstance(rv, int) else 0
        except typer.Exit as e:  # --help, explicit exits
            rv = e.exit_code
        except BaseException as e:
            return _report(e)
    if rv == EXIT_INTERRUPTED and sigint.seen:  # typer turns Ctrl-C into a silent 130
        print("error: interrupted", file=sys.stderr)
    return rv


@contextlib.contextmanager
def _sigint_noted():
    """Note whether SIGINT arrived (it still raises KeyboardInterrupt); main thread only."""
    flag = types.SimpleNamespace(seen=False)
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return

    def handler(signum, frame):
        flag.seen = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _report(e: BaseException) -> int:
    """One line on stderr for a failure; the exit code."""
    from ..errors import VarstructError, first_line

    try:
        raise e
    except typer.Abort:  # end of input at a prompt
        print("error: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except typer.TyperException as e:  # usage errors: bad option, missing argument, bad choice
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        if msg.strip():
            print(f"error: {' '.join(msg.split())}", file=sys.stderr)
        return e.exit_code if isinstance(getattr(e, "exit_code", None), int) else EXIT_USAGE
    except VarstructError as e:
        print(f"error: {first_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("error: out of memory; use smaller sizes (--anchors, --batch-size, points, -p)", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # full disk, read-only or vanished folder, ...
        print(f"error: {os_error_line(e)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
