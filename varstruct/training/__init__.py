"""Training: ``train(config) -> model dir`` (seeded, resumable) and its ``TrainConfig``.

The objectives (:mod:`varstruct.models.objectives`) compute the losses; this package owns
every optimiser and the step (:mod:`.optim`), the precision (:mod:`.precision`: fp32, bf16
autocast, auto), checkpoints (:mod:`.checkpoint`) and the loop (:mod:`.loop`). See
docs/training.md. Importing the package (or :mod:`.config`) does not import torch: ``train`` is
loaded on first use.
"""
from .config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name):
    if name == "train":
        from .loop import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
