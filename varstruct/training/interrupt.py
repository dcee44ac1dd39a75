"""SIGINT/SIGTERM during training: finish the step, checkpoint, raise :class:`TrainingInterrupted`."""
from __future__ import annotations

import contextlib
import signal
import threading
import types


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT/SIGTERM after ``step`` steps; a checkpoint in ``out`` has them."""

    def __init__(self, step: int, out):
        self.step, self.out = int(step), out
        super().__init__(f"interrupted at step {self.step}; `varstruct train --resume --out {out}` finishes it")

    def __str__(self) -> str:
        return self.args[0]


@contextlib.contextmanager
def stop_requests():
    """Yield a flag whose ``signum`` is set (instead of raising) when SIGINT or SIGTERM arrives;
    the previous handlers are restored on exit. Outside the main thread nothing is installed."""
    flag = types.SimpleNamespace(signum=None)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.signum = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
