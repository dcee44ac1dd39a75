"""The one error family of varstruct (torch-free, so the CLI imports it cheaply).

Every problem a user can cause raises a :class:`VarstructError` (a ``ValueError``) whose
message is one line naming the problem; the CLI prints it as ``error: ...`` with exit code 2.
Subclasses exist only where a caller needs to tell the cases apart.
"""
from __future__ import annotations


class VarstructError(ValueError):
    """Bad input or state a user can fix: one line, exit code 2 in the CLI.

    ``param``: the input entry at fault where there is one, in library spelling
    (``"latent_dim"``, ``"hparams.beta"``, ``"mask.l1"``); the message then starts with the
    entry's name. The CLI maps it to its option name (one table, ``varstruct/cli/common.py``
    ``FLAGS``), so library messages never name CLI flags. Kept through pickling."""

    def __init__(self, *args, param: str | None = None):
        super().__init__(*args)
        self.param = param


class DatasetError(VarstructError):
    """Bad dataset name, parameter or data file."""


class ConfigError(VarstructError):
    """A bad training configuration: unknown method, bad hyper-parameter, ... (``param``: the
    entry at fault, as :meth:`varstruct.training.TrainConfig.validate` names it)."""


class RunDirError(VarstructError):
    """A run (model) dir is missing, incomplete, corrupt or in use."""


class RunDirLocked(RunDirError):
    """Another process holds the run dir's writer lock."""


class OutputError(VarstructError):
    """An output path cannot be written (missing, read-only or special target, full disk)."""


class ResourceError(VarstructError):
    """A request needs more memory (or another resource) than the machine has."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__
