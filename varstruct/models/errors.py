"""Error types of the models and the trainer: aliases into :mod:`varstruct.errors`."""
from __future__ import annotations

from ..errors import ConfigError, RunDirError

ModelDirError = RunDirError  # the older name

__all__ = ["ConfigError", "ModelDirError", "RunDirError"]
