"""Error types of the models and the trainer (torch-free, so the CLI can import them cheaply)."""
from __future__ import annotations


class ModelDirError(ValueError):
    """A model dir is missing, incomplete or corrupt (one-line message; exit code 2 in the CLI)."""


class ConfigError(ValueError):
    """A bad training configuration: unknown method, bad hyper-parameter, bad output dir, ..."""
