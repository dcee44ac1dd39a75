"""Imported first by the sweep's fork server (:data:`varstruct.study.executors.PRELOAD`); never
import it elsewhere. It makes a Ctrl-C during a sweep's start-up end with one line, not
tracebacks from other processes:

- the server ignores SIGINT while it imports torch and the trainer (pool workers forked from it
  restore the default handler: :func:`varstruct.study.executors.worker_init`);
- a worker forked for a pool that is already gone (the sweep stopped while the server was still
  importing) fails to unpickle the pool's semaphores or pipes; the server reports that through
  ``sys.excepthook``, which here stays silent for exactly those errors (others are printed as
  usual);
- a server started from the sweep's main thread dies with the sweep, also while it is still
  importing (``PR_SET_PDEATHSIG``: :func:`varstruct.study.executors._start_forkserver`); the
  variable that asks for it is removed, so processes forked from the server do not see it.
"""
import os
import signal
import sys

signal.signal(signal.SIGINT, signal.SIG_IGN)

_parent = os.environ.pop("VARSTRUCT_FORKSERVER_DIE_WITH", None)  # executors.DIE_WITH_ENV
if _parent:
    from varstruct.study.executors import die_with_parent

    die_with_parent(int(_parent))

_GONE = (FileNotFoundError, EOFError, BrokenPipeError, ConnectionError)


def _excepthook(kind, value, tb):
    if issubclass(kind, _GONE):
        return
    sys.__excepthook__(kind, value, tb)


sys.excepthook = _excepthook
