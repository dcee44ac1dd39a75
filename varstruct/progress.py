"""Optional rich progress bars for long library work (on in the CLI, off by default in the API)."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def progress_bars(enabled: bool, totals: dict[str, int], transient: bool = False):
    """One bar per task in ``totals`` (name -> total), on stderr.

    Yields ``advance(task, n=1, description=None)``; a no-op when not ``enabled``."""
    if not enabled:
        yield lambda task, n=1, description=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=transient) as bar:
        ids = {k: bar.add_task(k, total=v) for k, v in totals.items()}

        def advance(task, n=1, description=None):
            bar.update(ids[task], advance=n, **({"description": description} if description else {}))
        yield advance


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, description: str, transient: bool = True):
    """A single bar; yields ``advance(n=1, text=None)`` (text replaces the description)."""
    with progress_bars(enabled, {description: total}, transient) as adv:
        yield lambda n=1, text=None: adv(description, n, text)
