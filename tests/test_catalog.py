"""The catalog (varstruct/catalog.py): the one home of every name table, torch-free; and the one
validation path (TrainConfig.validate, validate_record, the CLI's option table)."""
from __future__ import annotations

import math
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from varstruct import catalog
from varstruct.errors import ConfigError
from varstruct.training.config import TrainConfig, resolve_record, validate_record

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


# ---- the catalog against the published settings (Locatello et al. 2019; 2020 for Ada-GVAE) -------
def test_methods_and_their_published_defaults():
    expected = {
        "ae": {}, "beta_vae": {"beta": 4.0},
        "annealed_vae": {"c_max": 25.0, "gamma": 1000.0, "iteration_threshold": 100000},
        "beta_tcvae": {"beta": 6.0}, "factor_vae": {"gamma": 30.0},
        "dip_vae_i": {"lambda_od": 10.0, "lambda_d": 100.0}, "dip_vae_ii": {"lambda_od": 10.0, "lambda_d": 10.0},
        "ada_gvae": {"beta": 1.0, "k": 1}, "ordered_ae": {"p": 0.1},
    }
    assert list(catalog.METHODS) == list(expected)
    for name, hp in expected.items():
        got = catalog.check_hparams(name, {})
        assert got == hp and [type(v) for v in got.values()] == [type(v) for v in hp.values()], name
    assert {m for m, e in catalog.METHODS.items() if e.deterministic} == {"ae", "ordered_ae"}
    assert {m for m, e in catalog.METHODS.items() if e.pairs} == {"ada_gvae"}
    assert {m for m, e in catalog.METHODS.items() if e.discriminator} == {"factor_vae"}


def test_the_objectives_are_the_catalogs_methods():
    from varstruct.models.grids import grid
    from varstruct.models.objectives import METHODS

    assert list(METHODS) == list(catalog.METHODS)
    for name, cls in METHODS.items():
        entry = catalog.METHODS[name]
        assert (cls.name, cls.deterministic, cls.pairs) == (name, entry.deterministic, entry.pairs)
        assert cls.defaults == entry.defaults()
        for hp in grid(name):  # every published setting is a valid one
            assert catalog.check_hparams(name, hp) == {**catalog.check_hparams(name, {}), **hp}
    assert grid("dip_vae_i")[2] == {"lambda_od": 5.0, "lambda_d": 50.0}
    assert [h["beta"] for h in grid("beta_vae")] == [1.0, 2.0, 4.0, 6.0, 8.0, 16.0]


def test_the_name_tables():
    assert catalog.METRICS == ("mig", "active_mig", "dci", "sap", "modularity_explicitness", "irs", "unsupervised",
                               "beta_vae", "factor_vae")
    assert set(catalog.METRICS_WITH_TEST) <= set(catalog.METRICS_ON_CODES) < set(catalog.METRICS)
    assert catalog.PRECISIONS == ("fp32", "bf16", "fp64", "auto")
    assert set(catalog.RESOLVED_PRECISIONS) == set(catalog.PRECISIONS) - {"auto"}
    assert catalog.ARCHS == ("conv", "mlp", "linear") and catalog.RECONS == ("bernoulli", "gaussian")
    assert catalog.MASK_MODES == ("continuous", "ste", "hard_concrete")
    assert catalog.RESPONSES == ("traversal", "jacobian")
    assert catalog.default_arch([64, 64, 1]) == "conv" and catalog.default_arch([32, 32, 3]) == "mlp"


def test_the_implementations_read_the_catalog():
    """Each module that implements a table holds the catalog's object, not a copy."""
    import importlib

    evaluate, model, masked, nets, precision, tensors = (importlib.import_module(f"varstruct.{m}") for m in (
        "metrics.evaluate", "measures.model", "models.masked", "models.nets", "training.precision", "tensors"))

    assert evaluate.METRICS is catalog.METRICS and precision.PRECISIONS is catalog.PRECISIONS
    assert nets.ARCHS is catalog.ARCHS and masked.MASK_MODES is catalog.MASK_MODES
    assert model.RESPONSES is catalog.RESPONSES and tensors.PRECISIONS is catalog.ENCODE_PRECISIONS


_TABLES = {"method": list(catalog.METHODS), "metric": list(catalog.METRICS), "precision": list(catalog.PRECISIONS),
           "arch": list(catalog.ARCHS), "mask mode": list(catalog.MASK_MODES), "response": list(catalog.RESPONSES),
           "recon": list(catalog.RECONS)}


def test_no_copied_name_table_in_the_package():
    """No tuple, list, set or dict literal of the package outside the catalog is made of two or
    more names of one catalog table and nothing else (a copy of it; the docs aside). Literals
    that mix in other strings (score variables, ``__all__``) are other tables."""
    import ast

    found = []
    for p in sorted((REPO / "varstruct").rglob("*.py")):
        if p.name == "catalog.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                items = node.elts
            elif isinstance(node, ast.Dict):
                items = [k for k in node.keys if k is not None]
            else:
                continue
            strings = {e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            for kind, names in _TABLES.items():
                if len(strings) >= 2 and strings <= set(names):
                    found.append(f"{p.relative_to(REPO)}:{node.lineno} [{kind}] {sorted(strings & set(names))}")
    assert not found, "\n".join(found)


def test_the_catalog_imports_nothing_heavy():
    script = textwrap.dedent("""
        import sys
        import varstruct.catalog, varstruct.training.config
        heavy = [m for m in ("torch", "numpy", "xarray", "scipy", "sklearn", "pandas") if m in sys.modules]
        assert not heavy, heavy
    """)
    p = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


# ---- TrainConfig.validate: hand-written cases ------------------------------------------------------
GOOD = {"dataset": "toy_blobs", "method": "beta_vae"}


def _bad(param, words, **fields):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{**GOOD, **fields}).validate()
    assert e.value.param == param, (e.value.param, str(e.value))
    msg = str(e.value)
    assert "\n" not in msg and "--" not in msg  # one line, no CLI flag
    for w in words:
        assert w in msg, msg
    return msg


def test_validate_normalises():
    cfg = TrainConfig(**GOOD, steps=10.0, seed=np.int64(3), lr=1, hparams={"beta": 2}, hidden=(8, 4.0),
                      mask={"mode": "ste"}, data_file=pathlib.Path("/x/y.npz")).validate()
    assert cfg.steps == 10 and type(cfg.steps) is int and cfg.seed == 3 and type(cfg.seed) is int
    assert cfg.lr == 1.0 and type(cfg.lr) is float
    assert cfg.hparams == {"beta": 2.0} and type(cfg.hparams["beta"]) is float
    assert cfg.hidden == [8, 4] and cfg.mask == {"mode": "ste", "l1": 0.0} and cfg.data_file == "/x/y.npz"
    assert TrainConfig(**GOOD, mask={}).validate().mask is None
    assert TrainConfig(**GOOD).validate() == TrainConfig(**GOOD, hparams={"beta": 4.0}).validate()
    ada = TrainConfig("toy_blobs", "ada_gvae", hparams={"k": "random", "changeable": ("a", "b")}).validate()
    assert ada.hparams == {"beta": 1.0, "k": "random", "changeable": ["a", "b"]}
    assert TrainConfig("toy_blobs", "ada_gvae", hparams={"k": 2.0}).validate().hparams == {"beta": 1.0, "k": 2}
    dip = TrainConfig("toy_blobs", "dip_vae_ii", hparams={"lambda_od": 3}).validate().hparams
    assert dip == {"lambda_od": 3.0, "lambda_d": 3.0}
    assert TrainConfig("toy_blobs", "dip_vae_i", hparams={"lambda_od": 3}).validate().hparams["lambda_d"] == 30.0


@pytest.mark.parametrize("field,value", [
    ("seed", True), ("seed", "3"), ("seed", -1), ("seed", 2 ** 63), ("seed", 1.5), ("seed", math.nan),
    ("steps", -1), ("steps", -5), ("steps", True), ("steps", "10"), ("steps", math.inf), ("steps", 2.5),
    ("batch_size", 1), ("batch_size", "32"), ("batch_size", None),
    ("latent_dim", 0), ("latent_dim", False), ("latent_dim", "three"),
    ("lr", 0), ("lr", -1e-3), ("lr", math.nan), ("lr", math.inf), ("lr", "1e-3"), ("lr", True),
    ("recon_var", 0.0), ("recon_var", -math.inf), ("recon", "l2"), ("recon", None),
    ("arch", "resnet"), ("precision", "fp16"), ("precision", None),
    ("hidden", []), ("hidden", [0]), ("hidden", [True]), ("hidden", "8"), ("hidden", [8.5]),
    ("log_every", 0), ("checkpoint_every", -1), ("dataset", "nope"), ("dataset", 3), ("method", "vae2"),
    ("method", None), ("hparams", [1]), ("dataset_params", "r=2"), ("mask", "ste"), ("mask", True),
    ("data_file", ""), ("data_file", 3),
])
def test_validate_refuses_bad_fields(field, value):
    msg = _bad(field, [field, repr(value) if not isinstance(value, float) else "got"], **{field: value})
    assert msg.startswith(f"{field} must be ")


@pytest.mark.parametrize("method,hparams,param,words", [
    ("beta_vae", {"gamma": 4}, "hparams.gamma", ["gamma is not a hyper-parameter of beta_vae", "beta"]),
    ("ada_gvae", {"k": 0}, "hparams.k", ["k must be an integer >= 1 or 'random'"]),
    ("ada_gvae", {"k": "3"}, "hparams.k", ["got '3'"]),
    ("ada_gvae", {"k": True}, "hparams.k", ["got True"]),
    ("ada_gvae", {"k": 1.5}, "hparams.k", ["got 1.5"]),
    ("ada_gvae", {"changeable": []}, "hparams.changeable", ["distinct names"]),
    ("ada_gvae", {"changeable": ["a", "a"]}, "hparams.changeable", ["distinct names"]),
    ("ada_gvae", {"changeable": "a"}, "hparams.changeable", ["got 'a'"]),
    ("factor_vae", {"k": 1}, "hparams.k", ["not a hyper-parameter of factor_vae"]),
    ("beta_vae", {"beta": True}, "hparams.beta", ["beta must be a finite number >= 0"]),
    ("beta_vae", {"beta": "4"}, "hparams.beta", ["got '4'"]),
    ("beta_vae", {"beta": math.nan}, "hparams.beta", ["got nan"]),
    ("beta_vae", {"beta": math.inf}, "hparams.beta", ["got inf"]),
    ("beta_vae", {"beta": -1}, "hparams.beta", ["got -1"]),
    ("ordered_ae", {"p": 0}, "hparams.p", ["p must be a finite number in (0.0, 1.0]"]),
    ("ordered_ae", {"p": 1.5}, "hparams.p", ["got 1.5"]),
    ("annealed_vae", {"iteration_threshold": 0}, "hparams.iteration_threshold", ["an integer >= 1"]),
    ("annealed_vae", {"iteration_threshold": 2.5}, "hparams.iteration_threshold", ["got 2.5"]),
    ("dip_vae_i", {"lambda_d": -1}, "hparams.lambda_d", ["or None"]),
    ("ae", {"beta": 1}, "hparams.beta", ["its hyper-parameters: none"]),
])
def test_validate_refuses_bad_hyper_parameters(method, hparams, param, words):
    _bad(param, words, method=method, hparams=hparams)


@pytest.mark.parametrize("mask,param,words", [
    ({"mode": "bogus"}, "mask.mode", ["mask.mode must be one of continuous, ste, hard_concrete"]),
    ({"mode": "ste", "l1": -1}, "mask.l1", ["mask.l1 must be a finite number >= 0"]),
    ({"l1": math.nan}, "mask.l1", ["got nan"]),
    ({"l1": "0.1"}, "mask.l1", ["got '0.1'"]),
    ({"foo": 1}, "mask.foo", ["unknown entry mask.foo", "mask.mode, mask.l1"]),
])
def test_validate_refuses_bad_masks(mask, param, words):
    _bad(param, words, mask=mask)


def test_unknown_and_missing_fields():
    with pytest.raises(ConfigError, match="unknown config field") as e:
        TrainConfig.from_dict({**GOOD, "bogus": 1})
    assert e.value.param == "bogus"
    with pytest.raises(ConfigError, match="needs a 'method'") as e:
        TrainConfig.from_dict({"dataset": "toy_blobs"})
    assert e.value.param == "method"


def test_the_parameter_is_kept_through_pickling():
    import pickle

    e = pickle.loads(pickle.dumps(ConfigError("latent_dim must be ...", param="latent_dim")))
    assert e.param == "latent_dim" and str(e) == "latent_dim must be ..."


# ---- config.json: validate_record ------------------------------------------------------------------
@pytest.fixture(scope="module")
def record():
    _, rec = resolve_record(TrainConfig("toy_blobs", "ada_gvae", latent_dim=2, hidden=[8], steps=3),
                            resolve_auto=False)
    return {**rec, "precision": "fp32"}


def test_validate_record_round_trip(record):
    assert validate_record(record) == record
    old = {k: v for k, v in record.items() if k != "precision"}  # written before the field existed
    assert validate_record(old)["precision"] == "fp32"


@pytest.mark.parametrize("change,param,words", [
    ({"latent_dim": "three"}, "latent_dim", ["latent_dim must be an integer >= 1, got 'three'"]),
    ({"steps": -5}, "steps", ["got -5"]),
    ({"precision": "auto"}, "precision", ["one of fp32, bf16, fp64"]),
    ({"image_shape": [64, 64]}, "image_shape", ["[height, width, channels]"]),
    ({"image_shape": [64, 64, True]}, "image_shape", ["got [64, 64, True]"]),
    ({"version": 3}, "version", ["version must be"]),
    ({"hparams": {"beta": 1.0, "k": 1, "gamma": 2}}, "hparams.gamma", ["not a hyper-parameter of ada_gvae"]),
    ({"bogus": 1}, "bogus", ["unknown config field"]),
])
def test_validate_record_refuses(record, change, param, words):
    with pytest.raises(ConfigError) as e:
        validate_record({**record, **change}, where="run/config.json")
    assert e.value.param == param and str(e.value).startswith("run/config.json: ")
    for w in words:
        assert w in str(e.value)
    with pytest.raises(ConfigError):
        validate_record([record])


# ---- the CLI: one table of option names -------------------------------------------------------------
def test_every_option_hyper_parameter_has_a_train_option():
    from varstruct.cli import common, train_cmd

    opts = {name: opt for name, opt, _, _ in train_cmd._hparam_options()}
    with_option = {h.name for m in catalog.METHODS.values() for h in m.hparams if h.option}
    assert set(opts) == with_option and opts["p"] == "--nested-p" and opts["c_max"] == "--c-max"
    assert all(common.FLAGS[f"hparams.{n}"] == o for n, o in opts.items())
    no_option = {"hidden"}  # a list: given through a study spec or the library
    assert set(common.FLAGS) >= {f.name for f in __import__("dataclasses").fields(TrainConfig)} - no_option


@pytest.mark.parametrize("param,msg,expected", [
    ("latent_dim", "latent_dim must be an integer >= 1, got 0", "--latents must be an integer >= 1, got 0"),
    ("hparams.p", "p must be a finite number in (0.0, 1.0], got 0", "--nested-p must be a finite number in"),
    ("hparams.gamma", "gamma is not a hyper-parameter of beta_vae", "--gamma is not a hyper-parameter"),
    ("hparams.changeable", "changeable must be a non-empty list", "--hparam changeable must be"),
    ("mask.l1", "mask.l1 must be a finite number >= 0.0, got -1", "--mask-l1 must be a finite number"),
    ("arch", "the conv architecture takes 64x64 images", "--arch: the conv architecture"),
])
def test_cli_maps_parameters_to_options(param, msg, expected):
    from varstruct.cli.common import with_flags

    assert str(with_flags(ConfigError(msg, param=param))).startswith(expected)


def test_cli_leaves_other_errors_alone():
    from varstruct.cli.common import with_flags
    from varstruct.errors import RunDirError

    e = ConfigError("run x: latent_dim must be ...")
    assert with_flags(e) is e
    r = RunDirError("latent_dim")
    assert with_flags(r) is r


@pytest.mark.parametrize("args,match", [
    (["-m", "ada_gvae", "--k", "0"], "--k must be an integer >= 1 or 'random', got 0"),
    (["-m", "ada_gvae", "--k", "abc"], "--k must be an integer >= 1 or 'random', got 'abc'"),
    (["-m", "ordered_ae", "--nested-p", "0"], "--nested-p must be a finite number in (0.0, 1.0]"),
    (["-m", "annealed_vae", "--iteration-threshold", "0"], "--iteration-threshold must be an integer >= 1"),
    (["-m", "ae", "--latents", "0"], "--latents must be an integer >= 1"),
    (["-m", "ae", "--batch-size", "1"], "--batch-size must be an integer >= 2"),
    (["-m", "ae", "--steps", "-1"], "--steps must be an integer >= 0"),
    (["-m", "ae", "--recon", "gaussian", "--recon-var", "0"], "--recon-var must be a finite number > 0"),
    (["-m", "ae", "--mask", "ste", "--mask-l1", "nan"], "--mask-l1 must be a finite number >= 0"),
    (["-m", "ada_gvae", "--hparam", "changeable=[]"], "--hparam changeable must be a non-empty list"),
    (["-m", "beta_vae", "--hparam", "beta=true"], "--beta must be a finite number >= 0"),
])
def test_train_cli_names_the_option(tmp_path, capsys, args, match):
    from varstruct.cli.app import main

    assert main(["train", "toy_blobs", "-o", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and match in err, err
    assert not (tmp_path / "r").exists()


# ---- torch-free and fast: help, a bad spec, a bad [train] key ---------------------------------------
def _cpu_seconds_of(script: str) -> tuple[float, str]:
    """(CPU seconds, stdout) of ``script`` in a fresh interpreter (CPU time: the load of a shared
    machine does not count)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, env=ENV, capture_output=True,
                       text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert p.returncode == 0, p.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), p.stdout


def test_help_is_fast():
    secs, out = _cpu_seconds_of("""
        import contextlib, io, sys
        from varstruct.cli.app import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["--help"]) == 0
        assert "torch" not in sys.modules
    """)
    assert secs < 0.5, secs


SPEC = """
steps = 5
[train]
latent_dim = 2
hidden = [[8]]
{extra}
[[datasets]]
name = "toy_blobs"
[[methods]]
name = "beta_vae"
hparams = {{ beta = [1, 2] }}
"""


@pytest.mark.parametrize("extra,word", [
    ("bogus = 1", "bogus"), ("lr = -1.0", "lr must be a finite number > 0"), ("batch_size = \"32\"", "batch_size"),
    ("mask = { mode = \"nope\" }", "mask.mode"), ("precision = \"fp16\"", "precision"),
])
def test_a_bad_spec_answers_fast_without_torch(tmp_path, extra, word):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(extra=extra))
    secs, out = _cpu_seconds_of(f"""
        import contextlib, io, sys
        from varstruct.cli.app import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(["sweep", {str(spec)!r}, "--out", {str(tmp_path / "o")!r}, "--dry-run"])
        assert rc == 2, (rc, err.getvalue())
        assert "torch" not in sys.modules
        print(err.getvalue())
    """)
    assert word in out and out.startswith("error: ") and out.count("\n") <= 2, out
    assert secs < 1.0, secs
    assert not (tmp_path / "o").exists()


def test_a_good_toy_spec_is_checked_without_torch(tmp_path):
    """The dry run of a toy study needs no torch (validation and the dataset checks are torch-free)."""
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(extra=""))
    _, out = _cpu_seconds_of(f"""
        import sys
        from varstruct.study.sweep import prepare
        p = prepare({str(spec)!r}, {str(tmp_path / "o")!r}, workers=1)
        assert len(p.jobs) == 2 and "torch" not in sys.modules
    """)


def test_a_memory_refusal_names_the_parameter_not_an_option(tmp_path):
    """The memory estimate of a spec's run names the config entry; `train` names its option."""
    from varstruct.errors import ResourceError
    from varstruct.study.spec import runs_from_dict
    from varstruct.study.sweep import prepare

    runs = runs_from_dict({"steps": 5, "train": {"batch_size": 10 ** 12, "hidden": [[8]]},
                           "datasets": [{"name": "toy_blobs"}], "methods": [{"name": "ae"}]})
    with pytest.raises(ConfigError, match=r"batch_size: the request needs about") as e:
        prepare(runs, tmp_path / "o", workers=1)
    assert "--" not in str(e.value)
    from varstruct.cli.common import with_flags

    assert str(with_flags(ResourceError("batch_size: the request needs", param="batch_size"))).startswith(
        "--batch-size: the request needs")


def test_the_docs_table_of_methods_is_the_catalogs():
    rows = {}
    for line in (REPO / "docs" / "training.md").read_text().splitlines():
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            rows[m.group(1)] = line
    assert [m for m in rows if m in catalog.METHODS] == list(catalog.METHODS)
    for name, entry in catalog.METHODS.items():
        cells = [c.strip() for c in rows[name].strip("|").split(" | ")]
        assert cells[-2:] == ["yes" if entry.deterministic else "no", "yes" if entry.pairs else "no"], name
        for h in entry.hparams:
            text = f"`{h.name}` ({h.default_text()}" if not h.derived else f"`{h.name}` ("
            assert text in rows[name], (name, h.name)
