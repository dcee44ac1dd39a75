"""The score registry's two types: how a metric declares its output variables and computes them.

Each metric module (mig, dci, sap, modularity, irs, unsupervised, sampling) exports
``SCORERS``: a tuple of :class:`Scorer`, one per metric name of :data:`evaluate.METRICS`.
A scorer declares every variable it writes (:class:`Variable`: dims, long_name, units; the
docs anchor is the scorer's ``anchor``, its metric family's heading in docs/measures.md#scores)
and ``score(ctx: ScoreContext) -> {variable: values}``, values shaped as the declared dims
(``factor`` = K, ``latent`` = L, ``()`` a scalar). :func:`varstruct.metrics.evaluate.evaluate`
draws the points the chosen scorers need (``needs``) once, calls each scorer in turn and
assembles the Dataset from the declarations; nothing else names a score variable.

Which points a metric scores is the catalog's (torch-free, so that a sweep's dry run knows it):
``catalog.METRICS_ON_CODES`` score the train codes, ``catalog.METRICS_WITH_TEST`` the test codes
too, the others draw their own points (n_test of them for evaluation). A scorer declares only
what it needs besides (``kl``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

from .. import catalog

CODES, TEST_CODES, KL, TEST_POINTS = "codes", "test_codes", "kl", "test_points"
NEEDS = (CODES, TEST_CODES, KL, TEST_POINTS)


class Variable(NamedTuple):
    """One output variable: ``dims`` (a tuple of ``"factor"`` / ``"latent"``), CF ``long_name``
    and ``units`` (None: no units attr)."""
    dims: tuple
    long_name: str
    units: str | None = "1"


@dataclasses.dataclass(frozen=True)
class ScoreContext:
    """What a scorer may read. ``codes`` float64 [n_train, L] and ``factors`` int64
    [n_train, K] (None unless a chosen scorer needs ``codes``); ``codes_test`` / ``factors_test``
    the same for the n_test test points (None unless needed); ``kl``: mean KL of each latent's
    posterior to the prior over the train points, float64 [L] (None unless needed); ``ds`` the
    dataset, ``encode(images) -> codes`` the representation (for the scores that draw their
    own points); ``seed``, ``n_train``, ``n_test``, ``n_jobs`` (metric thread pools) and
    ``active_threshold`` as given to evaluate."""
    ds: Any
    encode: Callable
    seed: int
    n_train: int
    n_test: int
    n_jobs: int | None = None
    active_threshold: float = 0.05
    codes: Any = None
    factors: Any = None
    codes_test: Any = None
    factors_test: Any = None
    kl: Any = None


@dataclasses.dataclass(frozen=True)
class Scorer:
    """One metric: ``name`` (a METRICS entry), its ``variables`` (name -> :class:`Variable`, in
    output order), ``score(ctx) -> {name: values}`` returning exactly those names, and
    ``needs``: the inputs of :data:`NEEDS` evaluate must prepare (``codes``: train codes;
    ``test_codes``: test codes; ``kl``: the latents' KL, which needs a model with
    ``encode(x) -> (mean, logvar)``; ``test_points``: n_test >= 1 without test codes). The
    catalog's needs of the metric (:func:`catalog_needs`) are added to the declared ones."""
    name: str
    variables: dict
    score: Callable
    needs: frozenset = frozenset()
    anchor: str = ""

    def __post_init__(self):
        if not set(self.needs) <= set(NEEDS):
            raise ValueError(f"{self.name}: unknown needs {sorted(set(self.needs) - set(NEEDS))}")
        if not self.anchor:
            object.__setattr__(self, "anchor", self.name)
        object.__setattr__(self, "needs", frozenset(self.needs) | catalog_needs(self.name))


def catalog_needs(metric: str) -> frozenset:
    """The points a metric of the catalog scores: {codes, test_codes}, {codes}, or {test_points}
    (it draws its own); nothing for a name outside the catalog."""
    if metric in catalog.METRICS_WITH_TEST:
        return frozenset({CODES, TEST_CODES})
    if metric in catalog.METRICS_ON_CODES:
        return frozenset({CODES})
    return frozenset({TEST_POINTS}) if metric in catalog.METRICS else frozenset()
