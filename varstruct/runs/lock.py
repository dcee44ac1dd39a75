"""A run dir's writer lock: an exclusive file lock (``filelock``) on ``DIR/.lock``, held by one
process at a time and re-entrant within it (a sweep holding it may call ``train``), with the
holder's PID in ``DIR/.lock.pid`` for the messages. :meth:`varstruct.runs.layout.RunDir.lock`
and :meth:`~varstruct.runs.layout.RunDir.busy` are the interface; this module holds the mechanism.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import OutputError, RunDirLocked, first_line

_HELD: dict[str, int] = {}  # lock files this process holds -> nesting depth


@contextlib.contextmanager
def hold(lock_path: Path, pid_path: Path, label):
    """Hold the lock on ``lock_path`` (its folder must exist). RunDirLocked("LABEL is in use by
    process PID") at once if another process holds it; OutputError if it cannot be taken."""
    from filelock import FileLock, Timeout

    key = os.path.realpath(lock_path)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    fl = FileLock(str(lock_path), timeout=0, thread_local=False)
    try:
        fl.acquire()
    except Timeout:
        raise RunDirLocked(f"{label} is in use by process {holder(pid_path)}; wait for it to finish") from None
    except OSError as e:
        raise OutputError(f"cannot lock {label}: {e.strerror or first_line(e)}") from None
    _HELD[key] = 1
    try:
        with contextlib.suppress(OSError):
            pid_path.write_text(f"{os.getpid()}\n")
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            pid_path.unlink()
        fl.release()


def probe(lock_path: Path, pid_path: Path) -> str | None:
    """"process PID" when another process holds the lock; None when it is free or cannot be
    probed (no lock file, a read-only folder)."""
    from filelock import FileLock, Timeout

    if not lock_path.is_file():
        return None
    fl = FileLock(str(lock_path), timeout=0, thread_local=False)
    try:
        fl.acquire()
    except Timeout:
        return f"process {holder(pid_path)}"
    except OSError:
        return None
    fl.release()
    return None


def holder(pid_path: Path) -> str:
    """The PID recorded by the holder, or "(unknown PID)"."""
    try:
        pid = pid_path.read_text().strip()
    except OSError:
        pid = ""
    return pid if pid.isdigit() else "(unknown PID)"
