"""Training: ``train(config) -> model dir`` (seeded, resumable) and its ``TrainConfig``."""
from .config import TrainConfig
from .loop import train

__all__ = ["TrainConfig", "train"]
