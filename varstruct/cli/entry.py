"""The console script and ``python -m varstruct``: import the CLI, then run it.

Ctrl-C while the CLI's modules are still being imported (a loaded machine can take seconds) ends
the command like a Ctrl-C during the work: one line, exit code 130, no traceback."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    try:
        from .app import main as run
    except KeyboardInterrupt:
        print("error: interrupted while starting", file=sys.stderr)
        return 130
    return run(argv)
