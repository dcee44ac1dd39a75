"""Training: ``train(config) -> model dir`` (seeded, resumable) and its ``TrainConfig``.

The objectives (:mod:`varstruct.models.objectives`) compute the losses; this package owns
every optimiser and the step (:mod:`.optim`), the precision (:mod:`.precision`: fp32, bf16
autocast, auto), checkpoints (:mod:`.checkpoint`) and the loop (:mod:`.loop`). See
docs/training.md.
"""
from .config import TrainConfig
from .loop import train

__all__ = ["TrainConfig", "train"]
