"""The ground-truth-factor dataset interface shared by every dataset.

A :class:`FactorDataset` has K factors (``factor_names``, ``factor_sizes``, ``factor_types``
with types ``ordinal``, ``circular`` or ``categorical``) and renders any batch of integer factor
indices ``idx`` [B, K] to float32 images [B, H, W, C] in [0, 1].

Per-image randomness that is not a factor (a sprite colour, a noise background) is a
*nuisance*. ``sample_nuisance(n, rng)`` draws n of them; ``render(idx, nuisance=...)`` reuses
given ones (nuisances frozen per anchor: docs/measures.md#conventions), ``render(idx, rng=...)`` draws fresh
ones. Datasets without nuisances ignore both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FACTOR_TYPES = ("ordinal", "circular", "categorical")


from ..errors import DatasetError  # noqa: E402,F401  (re-exported: the dataset error of varstruct)


@dataclass(frozen=True)
class Factor:
    name: str
    size: int
    type: str = "ordinal"
    values: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.type not in FACTOR_TYPES:
            raise DatasetError(f"factor {self.name!r}: type must be one of {FACTOR_TYPES}, got {self.type!r}")
        if int(self.size) < 1:
            raise DatasetError(f"factor {self.name!r}: size must be >= 1, got {self.size}")
        if self.values is None:
            object.__setattr__(self, "values", np.arange(self.size, dtype=np.float64))
        elif len(self.values) != self.size:
            raise DatasetError(f"factor {self.name!r}: {len(self.values)} values for size {self.size}")


class FactorDataset:
    """Base class. Subclasses set ``name``, ``factors``, ``image_shape`` and implement ``_render``.

    Factors of size 1 are dropped (docs/measures.md#conventions) by the constructor of each subclass.
    """

    name: str = "dataset"
    factors: tuple[Factor, ...] = ()
    image_shape: tuple[int, int, int] = (0, 0, 0)
    params: dict[str, Any] = {}
    has_nuisance: bool = False

    # ---- description -------------------------------------------------------------------
    @property
    def factor_names(self) -> list[str]:
        return [f.name for f in self.factors]

    @property
    def factor_sizes(self) -> np.ndarray:
        return np.array([f.size for f in self.factors], dtype=np.int64)

    @property
    def factor_types(self) -> list[str]:
        return [f.type for f in self.factors]

    @property
    def factor_values(self) -> list[np.ndarray]:
        return [f.values for f in self.factors]

    @property
    def num_factors(self) -> int:
        return len(self.factors)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.factor_sizes))

    @property
    def n_pixels(self) -> int:
        return int(np.prod(self.image_shape))

    def factor_index(self, name: str) -> int:
        try:
            return self.factor_names.index(name)
        except ValueError:
            raise DatasetError(f"{self.name}: no factor {name!r} (factors: {', '.join(self.factor_names)})") from None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "image_shape": list(self.image_shape),
                "factors": [{"name": f.name, "size": f.size, "type": f.type} for f in self.factors]}

    def __repr__(self) -> str:
        fs = ", ".join(f"{f.name}={f.size}" for f in self.factors)
        return f"<{type(self).__name__} {self.name!r} [{fs}] image {self.image_shape}>"

    # ---- sampling ----------------------------------------------------------------------
    def sample_factors(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """n factor index vectors drawn uniformly from the grid, int64 [n, K]."""
        rng = np.random.default_rng(rng)
        return rng.integers(0, self.factor_sizes, size=(int(n), self.num_factors), dtype=np.int64)

    def sample_nuisance(self, n: int, rng: np.random.Generator | int | None = None):
        """n nuisance draws (an array with leading dim n), or None for nuisance-free datasets."""
        return None

    def sample(self, n: int, rng: np.random.Generator | int | None = None):
        """(factors [n, K], images [n, H, W, C]) with fresh nuisances."""
        rng = np.random.default_rng(rng)
        idx = self.sample_factors(n, rng)
        return idx, self.render(idx, rng=rng)

    # ---- rendering ---------------------------------------------------------------------
    def validate_indices(self, idx) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.ndim == 1:
            idx = idx[None]
        if idx.ndim != 2 or idx.shape[1] != self.num_factors:
            raise DatasetError(f"{self.name}: factor indices must have shape [B, {self.num_factors}], got {idx.shape}")
        if not np.issubdtype(idx.dtype, np.integer):
            if not np.all(np.equal(np.mod(idx, 1), 0)):
                raise DatasetError(f"{self.name}: factor indices must be integers")
            idx = idx.astype(np.int64)
        if idx.size and (np.any(idx < 0) or np.any(idx >= self.factor_sizes)):
            raise DatasetError(f"{self.name}: factor index out of range (sizes {self.factor_sizes.tolist()})")
        return idx.astype(np.int64, copy=False)

    def render(self, idx, rng: np.random.Generator | int | None = None, nuisance=None) -> np.ndarray:
        """Images float32 [B, H, W, C] in [0, 1] for factor indices idx [B, K].

        nuisance: per-image nuisance draws (leading dim B) to reuse; else drawn from rng
        (an int seed or Generator; None means seed 0, so rendering is always reproducible).
        """
        idx = self.validate_indices(idx)
        if self.has_nuisance and nuisance is None:
            nuisance = self.sample_nuisance(len(idx), np.random.default_rng(0 if rng is None else rng))
        return self._render(idx, nuisance)

    def _render(self, idx: np.ndarray, nuisance) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- weak supervision --------------------------------------------------------------
    def sample_pairs(self, n, rng=None, k=1, changeable=None, return_mask=False):
        """Pairs for weak supervision; see :func:`varstruct.data.pairs.sample_pairs`."""
        from .pairs import sample_pairs
        return sample_pairs(self, n, rng=rng, k=k, changeable=changeable, return_mask=return_mask)


def drop_unit_factors(factors) -> tuple[Factor, ...]:
    return tuple(f for f in factors if f.size > 1)
