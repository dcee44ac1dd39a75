"""The one progress-callback type of long library work, and its rich bar (on in the CLI, off
by default in the API).

A :class:`Progress` is any callable ``advance(n=1, text=None)``: ``n`` more units of the work
are done (0: none, only the text changes) and ``text``, if given, names what runs now. Every
long library call (evaluate, measure_dataset, measure_model, the sampling scores, the sweep's
orchestration) takes ``progress``: False/None (silent), True (a rich bar on stderr, see
:func:`progress_bar`) or a Progress of the caller's, called as the work advances. The work's
total is the callee's: a caller's own callback sees the counts, not the total.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Protocol, Union


class Progress(Protocol):
    def __call__(self, n: int = 1, text: str | None = None) -> None:
        """``n`` more units done; ``text`` (if not None) describes the work now under way."""


ProgressArg = Union[bool, None, Progress]


def no_progress(n: int = 1, text: str | None = None) -> None:
    """The silent :class:`Progress`."""


@contextlib.contextmanager
def progress_bar(progress: ProgressArg, total: int, description: str, transient: bool = True,
                 completed: int = 0) -> Iterator[Progress]:
    """Yields the :class:`Progress` of one piece of work of ``total`` units, ``completed`` of
    them done already (a resumed run): with ``progress`` True a rich bar on stderr (described by
    ``description``, then by each ``text``; removed at the end if ``transient``), a callable
    ``progress`` itself, else :func:`no_progress`."""
    if callable(progress) and not isinstance(progress, bool):
        yield progress
        return
    if not progress:
        yield no_progress
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    with Bar(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
             TimeRemainingColumn(),
             console=Console(stderr=True), transient=transient) as bar:
        task = bar.add_task(description, total=total, completed=completed)

        def advance(n: int = 1, text: str | None = None) -> None:
            bar.update(task, advance=n, **({"description": text} if text else {}))
        yield advance
