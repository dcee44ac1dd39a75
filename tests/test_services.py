"""Shared services: the one Progress callback type and the one thread limiter."""
import sys

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import varstruct
from varstruct.errors import VarstructError
from varstruct.progress import no_progress, progress_bar
from varstruct.threads import limit_threads


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, n=1, text=None):
        self.calls.append((n, text))

    @property
    def done(self):
        return sum(n for n, _ in self.calls)

    @property
    def texts(self):
        return [t for _, t in self.calls if t is not None]


def test_progress_bar_passes_a_callback_through_and_is_silent_when_off():
    rec = Recorder()
    with progress_bar(rec, 10, "x") as advance:
        assert advance is rec
    for off in (False, None):
        with progress_bar(off, 10, "x") as advance:
            assert advance is no_progress
            advance(3, "ignored")


def test_progress_bar_draws_on_stderr(capsys):
    with progress_bar(True, 4, "work", transient=False) as advance:
        advance(1, "first")
        advance(3)
    err = capsys.readouterr().err
    assert "4/4" in err and "first" in err
    with progress_bar(True, 10, "resumed", transient=False, completed=6) as advance:
        advance(4)
    assert "10/10" in capsys.readouterr().err


def test_evaluate_reports_one_unit_per_metric_and_encoding():
    ds = varstruct.datasets.get("toy_linear", sizes=[3, 3, 2], side=9)
    rec = Recorder()
    encode = lambda x: (x.reshape(len(x), -1).astype(np.float64) - 0.5) @ ds.basis.T  # noqa: E731
    varstruct.evaluate(encode, ds, metrics=["mig", "irs"], n_train=40, n_test=0, progress=rec)
    assert rec.done == 2 + 2
    assert rec.texts == ["encoding train points", "encoding test points", "mig", "irs"]


def test_measure_dataset_reports_every_unit():
    ds = varstruct.datasets.get("toy_linear", sizes=[3, 4], amplitudes=[1.0, 0.5], side=8)
    rec = Recorder()
    varstruct.measure_dataset(ds, n_anchors=5, n_pca_anchors=2, progress=rec)
    assert rec.done == 5 * 2 + 5 + 2            # traversals (anchor x factor), anchors, PCA anchors
    assert rec.texts == ["factor directions", "local PCA"]


def _blas_threads():
    return sorted({d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"})


def test_limit_threads_limits_and_restores_torch_and_blas():
    before_torch, before_blas = torch.get_num_threads(), _blas_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1 and _blas_threads() in ([1], [])
    assert torch.get_num_threads() == before_torch and _blas_threads() == before_blas
    with limit_threads(1, blas_only=True):
        assert torch.get_num_threads() == before_torch and _blas_threads() in ([1], [])
    with limit_threads(None):
        assert torch.get_num_threads() == before_torch
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(VarstructError, match="threads"):
            with limit_threads(bad):
                pass


def test_limit_threads_does_not_import_torch():
    import subprocess

    code = ("import sys; from varstruct.threads import limit_threads\n"
            "with limit_threads(1): pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_metric_pools_use_the_one_cpu_count(monkeypatch):
    from varstruct.metrics import _parallel
    from varstruct.resources import cpu_count

    assert _parallel.n_workers(None, 10 ** 6) == cpu_count() == _parallel.n_workers(-1, 10 ** 6)
    monkeypatch.setattr(_parallel, "cpu_count", lambda: 3)
    assert _parallel.n_workers(None, 10) == 3 and _parallel.n_workers(None, 2) == 2 and _parallel.n_workers(5, 10) == 5
