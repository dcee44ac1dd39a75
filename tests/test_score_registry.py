"""The score registry: one declaration per metric (varstruct.metrics.registry) drives evaluate()."""
import importlib

import numpy as np
import pytest

import varstruct
from varstruct.errors import VarstructError
E = importlib.import_module("varstruct.metrics.evaluate")  # (varstruct.metrics.evaluate is also the function)
from varstruct.metrics.registry import NEEDS, Scorer, Variable


def test_registry_covers_metrics_once():
    assert tuple(E.REGISTRY) == E.METRICS
    names = [k for s in E.REGISTRY.values() for k in s.variables]
    assert len(names) == len(set(names))  # no variable declared by two metrics
    for s in E.REGISTRY.values():
        assert s.needs <= set(NEEDS) and s.variables
        for v in s.variables.values():
            assert set(v.dims) <= {"factor", "latent"} and v.long_name


def test_the_points_a_metric_scores_are_the_catalogs():
    from varstruct import catalog

    for name, s in E.REGISTRY.items():
        assert ("codes" in s.needs) == (name in catalog.METRICS_ON_CODES)
        assert ("test_codes" in s.needs) == (name in catalog.METRICS_WITH_TEST)
        assert ("test_points" in s.needs) == (name not in catalog.METRICS_ON_CODES)
    assert {n for n, s in E.REGISTRY.items() if "kl" in s.needs} == {"active_mig"}


def test_scorer_rejects_unknown_needs():
    with pytest.raises(ValueError, match="unknown needs"):
        Scorer("x", {"x": Variable((), "x")}, lambda ctx: {"x": 0.0}, frozenset({"pixels"}))


@pytest.fixture()
def ds():
    return varstruct.datasets.get("toy_linear", sizes=[3, 2, 2], side=9)


def _readout(ds):
    return lambda images: (images.reshape(len(images), -1).astype(np.float64) - 0.5) @ ds.basis.T


def test_scorer_output_must_match_its_declaration(ds, monkeypatch):
    bad = Scorer("mig", {"mig": Variable((), "m")}, lambda ctx: {"mig": 1.0, "extra": 2.0}, frozenset({"codes"}))
    monkeypatch.setitem(E.REGISTRY, "mig", bad)
    with pytest.raises(RuntimeError, match="declared"):
        varstruct.evaluate(_readout(ds), ds, metrics=["mig"], n_train=20)


def test_a_scorer_gets_only_what_it_needs(ds, monkeypatch):
    seen = {}

    def score(ctx):
        seen.update(codes=ctx.codes, test=ctx.codes_test, kl=ctx.kl, n_test=ctx.n_test)
        return {"mig": 0.5}
    monkeypatch.setitem(E.REGISTRY, "mig", Scorer("mig", {"mig": Variable((), "m", None)}, score,
                                                  frozenset({"codes"})))
    res = varstruct.evaluate(_readout(ds), ds, metrics=["mig"], n_train=20, n_test=0)
    assert seen["codes"].shape == (20, 3) and seen["test"] is None and seen["kl"] is None
    assert float(res["mig"]) == 0.5 and "units" not in res["mig"].attrs
    assert res["mig"].attrs["definition"].endswith("#mig")


def test_kl_scorers_need_an_encoder_module(ds):
    with pytest.raises(VarstructError, match="active_mig needs a model with encode"):
        varstruct.evaluate(_readout(ds), ds, metrics=["active_mig"], n_train=20)
    res = varstruct.evaluate(_readout(ds), ds, metrics=None, n_train=60, n_test=60)
    assert "active_mig" not in res.attrs["metrics"].split(",") and "active_threshold" not in res.attrs
