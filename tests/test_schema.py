"""One result schema (docs/results.md), one encoder-batching helper (dtype/device) and no hidden
global state: checked on every producer of results (dataset measures, model measures, scores)."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

import varstruct
from varstruct import metrics as M
from varstruct.errors import VarstructError
from varstruct.io import read_netcdf, write_netcdf
from varstruct.schema import attrs_equal, canonical_attrs, describe, missing_descriptions, provenance
from varstruct.tensors import encode_batches, mean_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny images: one thread is fastest on a shared machine
DOCS = Path(__file__).resolve().parents[1] / "docs" / "measures.md"
PROVENANCE = ("Conventions", "title", "source", "varstruct_version", "created", "command", "history", "dataset",
              "dataset_params", "seed")


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub derives from the headings: lower case, punctuation except - and _ removed,
    spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from varstruct import training

    out = tmp_path_factory.mktemp("schema") / "run"
    return training.train(dict(dataset="toy_linear", method="beta_vae", steps=20, batch_size=32, latent_dim=4),
                          out=out)


@pytest.fixture(scope="module")
def model(run):
    return varstruct.load_model(run)


@pytest.fixture(scope="module")
def results(model):
    ds = varstruct.datasets.get("toy_linear")
    return {
        "dataset": varstruct.measure_dataset(ds, n_anchors=30, seed=1, n_pca_anchors=5),
        "model": varstruct.measure_model(model, ds, n_anchors=20, seed=1, n_variance=200, n_decoder=20),
        "scores": varstruct.evaluate(model, ds, metrics=["mig", "dci", "irs", "unsupervised"], seed=1,
                                     n_train=300, n_test=100),
    }


def test_canonical_attrs_store_only_netcdf_types():
    out = canonical_attrs({"flag": True, "np_flag": np.bool_(False), "none": None, "n": np.int64(3),
                           "x": np.float32(0.5), "shape": (64, 64, 1), "one": [5], "names": ["a", "b"],
                           "params": {"r": 2.0, "profile": "flip"}, "s": "text"})
    assert out["flag"] == 1 and type(out["flag"]) is int and out["np_flag"] == 0 and "none" not in out
    assert type(out["n"]) is int and type(out["x"]) is float
    assert out["shape"].dtype == np.int64 and out["shape"].tolist() == [64, 64, 1]
    assert out["one"] == "[5]" and out["names"] == '["a", "b"]'
    assert out["params"] == '{"profile": "flip", "r": 2.0}' and out["s"] == "text"
    assert canonical_attrs(out).keys() == out.keys() and attrs_equal(canonical_attrs(out), out)  # idempotent


@pytest.mark.parametrize("kind", ["dataset", "model", "scores"])
def test_result_schema_roundtrip(results, tmp_path, kind):
    r = results[kind]
    for key in PROVENANCE:
        assert key in r.attrs, key
    assert r.attrs["Conventions"] == "CF-1.10" and r.attrs["dataset"] == "toy_linear" and r.attrs["seed"] == 1
    assert r.attrs["varstruct_version"] == varstruct.__version__
    created = dt.datetime.strptime(r.attrs["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600
    assert r.attrs["dataset_params"].startswith("{") and "amplitudes" in r.attrs["dataset_params"]
    if kind != "scores":
        assert r.attrs["n_anchors"] in (20, 30)
    back = read_netcdf(write_netcdf(r, tmp_path / "r.nc"))
    assert attrs_equal(r.attrs, back.attrs), (r.attrs, back.attrs)
    for name in r.variables:
        assert attrs_equal(r[name].attrs, back[name].attrs), (name, r[name].attrs, back[name].attrs)
    for value in list(r.attrs.values()) + [v for var in r.variables.values() for v in var.attrs.values()]:
        assert isinstance(value, (str, int, float)) or (isinstance(value, np.ndarray) and value.ndim == 1)


@pytest.mark.parametrize("kind", ["dataset", "model", "scores"])
def test_every_variable_defined_in_docs(results, kind):
    r = results[kind]
    assert missing_descriptions(r) == []
    anchors = github_anchors(DOCS.read_text())
    for name, var in r.data_vars.items():
        path, anchor = var.attrs["definition"].split("#")
        assert path == "docs/measures.md" and anchor in anchors, (name, anchor)
        if "units" in var.attrs:
            assert var.attrs["units"] in ("1", "nat"), (name, var.attrs["units"])
    for coord in r.coords.values():
        assert coord.attrs.get("long_name"), coord.name


def test_docs_headings_named_for_links():
    anchors = github_anchors(DOCS.read_text())
    assert {"conventions", "dataset-measures", "model-measures", "known-answer-fixtures", "statistics"} <= anchors
    from varstruct.measures.dataset import VARIABLES as DV
    from varstruct.measures.model import VARIABLES as MV
    assert {v[2] for v in DV.values()} | {v[2] for v in MV.values()} <= anchors


def test_score_anchors_documented():
    from varstruct.metrics.evaluate import REGISTRY

    anchors = github_anchors(DOCS.read_text())
    assert {s.anchor for s in REGISTRY.values()} <= anchors and "scores" in anchors


def test_describe_and_provenance_for_new_producers():
    import xarray as xr

    ds = xr.Dataset({"rho": ("pair", [0.1, 0.2]), "p": ("pair", [0.5, 0.01])})
    describe(ds, {"rho": ("Spearman correlation", "1", "statistics"), "absent": ("x", None, "x")})
    provenance(ds, title="correlations", dataset="dsprites", dataset_params={"b": 1, "a": [1, 2]}, seed=0,
               command="varstruct.correlate()", n_models=40, bootstrap=None, two_sided=True)
    assert ds["rho"].attrs == {"long_name": "Spearman correlation", "units": "1",
                               "definition": "docs/measures.md#statistics"}
    assert missing_descriptions(ds) == ["p"]
    assert ds.attrs["dataset_params"] == '{"a": [1, 2], "b": 1}' and ds.attrs["n_models"] == 40
    assert "bootstrap" not in ds.attrs and ds.attrs["two_sided"] == 1 and "n_anchors" not in ds.attrs
    assert ds.attrs["command"] == "varstruct.correlate()" and ds.attrs["history"].endswith("varstruct.correlate()")


# ---- no hidden global state ------------------------------------------------------------------
def _thread_state():
    return torch.get_num_threads(), sorted((d["internal_api"], d["num_threads"]) for d in threadpool_info())


@pytest.mark.parametrize("threads", [None, 1, 2])
def test_library_calls_leave_threads_as_found(model, threads):
    ds = varstruct.datasets.get("toy_linear")
    codes = np.random.default_rng(0).normal(size=(200, 3))
    factors = np.random.default_rng(1).integers(0, 3, size=(200, 2))
    before = _thread_state()
    calls = [
        lambda: varstruct.measure_dataset(ds, n_anchors=10, n_pca_anchors=3, threads=threads),
        lambda: varstruct.measure_model(model, ds, n_anchors=10, n_variance=50, n_decoder=5, threads=threads),
        lambda: varstruct.evaluate(model, ds, metrics=["mig", "sap"], n_train=100, n_test=50, threads=threads),
        lambda: M.mig(codes, factors),
        lambda: M.dci(codes[:100], factors[:100], codes[100:], factors[100:], n_jobs=2),
        lambda: M.sap(codes[:100], factors[:100], codes[100:], factors[100:], n_jobs=2),
    ]
    for call in calls:
        call()
        assert _thread_state() == before
    assert not torch.are_deterministic_algorithms_enabled()


def test_threads_validated():
    ds = varstruct.datasets.get("toy_linear")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(VarstructError, match="threads"):
            varstruct.measure_dataset(ds, n_anchors=5, threads=bad)


# ---- one encoder-batching helper: dtype and device -------------------------------------------
def test_float64_model_in_evaluate_and_measure_model(run, model):
    ds = varstruct.datasets.get("toy_linear")
    m64 = varstruct.load_model(run).double()
    images = ds.render(ds.sample_factors(70, 0), rng=0)
    z32, z64 = mean_encoder(model, batch_size=32)(images), mean_encoder(m64, batch_size=32)(images)
    assert z64.dtype == np.float64 and z64.shape == (70, 4)
    np.testing.assert_allclose(z64, z32, rtol=1e-4, atol=1e-5)
    mu, logvar = encode_batches(m64, images, batch_size=16)
    np.testing.assert_array_equal(mu, z64)
    assert logvar.shape == (70, 4)
    s = varstruct.evaluate(m64, ds, metrics=["mig"], n_train=200, n_test=10)
    assert np.isfinite(float(s["mig"]))
    r64 = varstruct.measure_model(m64, ds, n_anchors=10, n_variance=100, n_decoder=10, response="jacobian")
    r32 = varstruct.measure_model(model, ds, n_anchors=10, n_variance=100, n_decoder=10, response="jacobian")
    np.testing.assert_allclose(r64["latent_variance"], r32["latent_variance"], rtol=1e-3)
    np.testing.assert_allclose(r64["jacobian_response"], r32["jacobian_response"], rtol=1e-3, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_in_evaluate_and_measure_model(run):
    ds = varstruct.datasets.get("toy_linear")
    cpu = varstruct.load_model(run)
    gpu = varstruct.load_model(run).cuda()
    images = ds.render(ds.sample_factors(50, 0), rng=0)
    np.testing.assert_allclose(mean_encoder(gpu)(images), mean_encoder(cpu)(images), rtol=1e-3, atol=1e-4)
    assert np.isfinite(float(varstruct.evaluate(gpu, ds, metrics=["mig"], n_train=200, n_test=10)["mig"]))
    r = varstruct.measure_model(gpu, ds, n_anchors=10, n_variance=100, n_decoder=10, response="jacobian")
    assert np.isfinite(r["jacobian_response"].values).all()


def test_bf16_encoding_is_opt_in(model):
    ds = varstruct.datasets.get("toy_linear")
    images = ds.render(ds.sample_factors(40, 0), rng=0)
    fp32, bf16 = encode_batches(model, images)[0], encode_batches(model, images, precision="bf16")[0]
    assert not np.array_equal(fp32, bf16)  # bf16 really ran ...
    np.testing.assert_allclose(bf16, fp32, atol=0.05 * np.abs(fp32).max())  # ... and is only a rounding away
    with pytest.raises(VarstructError, match="precision"):
        mean_encoder(model, precision="fp16")
