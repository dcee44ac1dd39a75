"""Facts about the training methods that the networks need, without importing the objectives.

DETERMINISTIC: the autoencoders (no posterior variance: ``encode`` returns logvar = 0).
"""
from __future__ import annotations

DETERMINISTIC = frozenset({"ae", "ordered_ae"})


def is_deterministic(method: str) -> bool:
    return method in DETERMINISTIC
