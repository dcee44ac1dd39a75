"""disentanglement_lib's released models (``unsupervised_study_v1/<n>.zip``) as varstruct run dirs.

A source is a model zip, its unpacked folder (the one holding ``model/tfhub``), or a folder of
those. Each model becomes ``OUT/dlib_<n>`` (n: the study's model number, from the training gin
config; else the source's name) holding (docs/importing.md):

- ``config.json``: method and hyper-parameters, latent dim, dataset, seed, steps, batch size,
  learning rate, mapped from ``model/results/gin/train.gin`` (parsed as text,
  :mod:`varstruct.importers.ginfile`);
- ``model.safetensors``: the TF-Hub module's variables (``model/tfhub/variables/``, read by
  :mod:`varstruct.importers.tfbundle`, CRC-checked) as the state dict of varstruct's conv VAE;
- ``reference_scores.nc``: disentanglement_lib's recorded scores, one variable
  ``<metric>.<score>`` (dlib's metric folder and result key, e.g. ``dci.disentanglement``) over
  dim ``representation`` (dlib's postprocessing: ``mean``, ``sampled``);
- ``import.json`` (where it came from, a fingerprint, every gin binding) and ``status.json``
  (state ``imported``).

Weight mapping (TF layout -> PyTorch): conv kernels [kh, kw, in, out] -> [out, in, kh, kw];
transposed-conv kernels [kh, kw, out, in] -> [in, out, kh, kw] (both ``permute(3, 2, 0, 1)``;
TF's conv2d_transpose and PyTorch's conv_transpose2d are the same adjoint, no kernel flip);
dense kernels [in, out] -> [out, in]. TF flattens the encoder's last conv output and reshapes
the decoder's second dense output in HWC order, PyTorch in CHW: the encoder's e5 kernel rows
and the decoder's dense_1 kernel columns and bias are permuted from (h, w, c) to (c, h, w).

Safety: nothing from a source is unpickled or executed (gin as text, JSON, raw tensors); a zip
with a member named with ``..``, an absolute or drive path, or a symlink member is refused as a
whole, members are read in memory (never extracted) with a size cap (:mod:`.sources`), and only files under the
output folder are written, each run dir built in a hidden temporary folder and renamed into
place (an interrupted import leaves no half run dir).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import VarstructError, first_line
from .ginfile import parse_gin
from .sources import HUB, ImportError_, Source, expand_sources, open_source
from .tfbundle import read_bundle, shard_name

TRAIN_GIN = "model/results/gin/train.gin"
METRIC_RE = re.compile(r"^metrics/([^/]+)/([^/]+)/results/json/evaluation_results\.json$")
IMPORT_FILE = "import.json"
REFERENCE_FILE = "reference_scores.nc"
STATUS = "imported"

# dlib dataset name -> (varstruct dataset, channels)
DATASETS = {
    "dsprites_full": ("dsprites", 1), "dsprites_noshape": None, "color_dsprites": ("color_dsprites", 3),
    "noisy_dsprites": ("noisy_dsprites", 3), "scream_dsprites": None, "smallnorb": ("smallnorb", 1),
    "cars3d": ("cars3d", 3), "shapes3d": ("shapes3d", 3), "mpi3d_toy": ("mpi3d", 3),
    "mpi3d_realistic": ("mpi3d", 3), "mpi3d_real": ("mpi3d", 3),
}

# dlib variable -> (varstruct state-dict key, kind)
CONV, DENSE, FLAT_IN, FLAT_OUT = "conv", "dense", "flatten_in", "reshape_out"
LAYERS = {
    "encoder/e1": ("encoder.convs.0", CONV), "encoder/e2": ("encoder.convs.2", CONV),
    "encoder/e3": ("encoder.convs.4", CONV), "encoder/e4": ("encoder.convs.6", CONV),
    "encoder/e5": ("encoder.convs.9", FLAT_IN), "encoder/means": ("encoder.mean", DENSE),
    "encoder/log_var": ("encoder.logvar", DENSE), "decoder/dense": ("decoder.net.0", DENSE),
    "decoder/dense_1": ("decoder.net.2", FLAT_OUT), "decoder/conv2d_transpose": ("decoder.net.5", CONV),
    "decoder/conv2d_transpose_1": ("decoder.net.7", CONV), "decoder/conv2d_transpose_2": ("decoder.net.9", CONV),
    "decoder/conv2d_transpose_3": ("decoder.net.11", CONV),
}
HWC = (4, 4, 64)  # the conv stack's output / the decoder's reshape, TF order


# ---------------------------------------------------------------- config
def _num(bindings: dict, key: str, what: str, default=None):
    v = bindings.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if v is None:
            raise ImportError_(f"{what}: the training gin config has no {key}")
        raise ImportError_(f"{what}: {key} = {v!r} is not a number")
    return v


def _ref(value) -> str:
    """``@name()`` / ``@scope/name`` -> ``name``."""
    s = str(value).strip()
    return s.lstrip("@").split("/")[-1].rstrip("()") if s.startswith("@") else s


def method_of(b: dict, what: str) -> tuple[str, dict]:
    """(varstruct method, hyper-parameters) of dlib's ``model.model`` binding."""
    model = _ref(b.get("model.model", ""))
    if model == "vae":
        return "beta_vae", {"beta": float(_num(b, "vae.beta", what))}
    if model == "beta_tc_vae":
        return "beta_tcvae", {"beta": float(_num(b, "beta_tc_vae.beta", what))}
    if model == "factor_vae":
        return "factor_vae", {"gamma": float(_num(b, "factor_vae.gamma", what))}
    if model == "annealed_vae":
        return "annealed_vae", {"c_max": float(_num(b, "annealed_vae.c_max", what)),
                                "gamma": float(_num(b, "annealed_vae.gamma", what)),
                                "iteration_threshold": int(_num(b, "annealed_vae.iteration_threshold", what))}
    if model == "dip_vae":
        kind = str(b.get("dip_vae.dip_type", "i")).lower()
        if kind not in ("i", "ii"):
            raise ImportError_(f"{what}: unknown dip_vae.dip_type {kind!r}")
        od = float(_num(b, "dip_vae.lambda_od", what))
        return f"dip_vae_{kind}", {"lambda_od": od, "lambda_d": float(_num(b, "dip_vae.lambda_d_factor", what)) * od}
    raise ImportError_(f"{what}: model.model = {b.get('model.model')!r} has no varstruct counterpart "
                       f"(known: @vae, @beta_tc_vae, @factor_vae, @dip_vae, @annealed_vae)")


def config_from_gin(b: dict, what: str, data_files: dict | None = None) -> tuple[dict, int | None]:
    """(config.json dict, model number or None) from the training gin bindings."""
    from .. import __version__

    for key, want in (("encoder.encoder_fn", "conv_encoder"), ("decoder.decoder_fn", "deconv_decoder")):
        got = _ref(b.get(key, ""))
        if got != want:
            raise ImportError_(f"{what}: {key} = {b.get(key)!r}; only @{want} (varstruct's conv network) is supported")
    loss = _ref(b.get("reconstruction_loss.loss_fn", "@bernoulli_loss"))
    if loss != "bernoulli_loss":
        raise ImportError_(f"{what}: reconstruction_loss.loss_fn = @{loss}; only @bernoulli_loss is supported")
    name = str(b.get("dataset.name", ""))
    if name not in DATASETS:
        raise ImportError_(f"{what}: unknown dataset.name {name!r}")
    if DATASETS[name] is None:
        raise ImportError_(f"{what}: dataset {name} has no varstruct counterpart")
    dataset, channels = DATASETS[name]
    method, hparams = method_of(b, what)
    latents = int(_num(b, "encoder.num_latent", what))
    num = b.get("model.model_num")
    lr = b.get("vae/AdamOptimizer.learning_rate", b.get("AdamOptimizer.learning_rate", 1e-4))
    cfg = {
        "dataset": dataset, "dataset_params": {}, "data_file": (data_files or {}).get(dataset),
        "method": method, "hparams": hparams, "seed": int(_num(b, "model.random_seed", what, 0)),
        "steps": int(_num(b, "model.training_steps", what)), "batch_size": int(_num(b, "model.batch_size", what)),
        "arch": "conv", "hidden": None, "latent_dim": latents, "image_shape": [64, 64, channels],
        "lr": float(lr) if isinstance(lr, (int, float)) else 1e-4, "recon": "bernoulli", "recon_var": 0.02,
        "mask": None, "precision": "fp32", "log_every": 10, "checkpoint_every": 500, "version": __version__,
    }
    return cfg, (int(num) if isinstance(num, int) and not isinstance(num, bool) else None)


# ---------------------------------------------------------------- weights
def convert_weights(tf_vars: dict[str, np.ndarray], channels: int, latent_dim: int, what: str) -> dict:
    """dlib's variables -> varstruct's state dict (float32 numpy arrays), shapes checked."""
    out = {}
    for layer, (key, kind) in LAYERS.items():
        for part in ("kernel", "bias"):
            name = f"{layer}/{part}"
            if name not in tf_vars:
                raise ImportError_(f"{what}: the checkpoint has no variable {name}")
            a = np.asarray(tf_vars[name], dtype=np.float32)
            if part == "bias":
                if kind == FLAT_OUT:
                    a = a.reshape(HWC).transpose(2, 0, 1).reshape(-1)
                out[f"{key}.bias"] = a
                continue
            if kind == CONV:
                if a.ndim != 4:
                    raise ImportError_(f"{what}: {name} has shape {list(a.shape)}, not a conv kernel")
                a = a.transpose(3, 2, 0, 1)
            elif a.ndim != 2:
                raise ImportError_(f"{what}: {name} has shape {list(a.shape)}, not a dense kernel")
            elif kind == FLAT_IN:  # rows in (h, w, c) order -> (c, h, w)
                if a.shape[0] != int(np.prod(HWC)):
                    raise ImportError_(f"{what}: {name} has shape {list(a.shape)}, expected [1024, n]")
                a = a.reshape(*HWC, -1).transpose(3, 2, 0, 1).reshape(a.shape[1], -1)
            elif kind == FLAT_OUT:  # columns in (h, w, c) order -> (c, h, w)
                if a.shape[1] != int(np.prod(HWC)):
                    raise ImportError_(f"{what}: {name} has shape {list(a.shape)}, expected [n, 1024]")
                a = a.reshape(a.shape[0], *HWC).transpose(3, 1, 2, 0).reshape(-1, a.shape[0])
            else:
                a = a.T
            out[f"{key}.weight"] = np.ascontiguousarray(a)
    got_c, got_l = out["encoder.convs.0.weight"].shape[1], out["encoder.mean.weight"].shape[0]
    if (got_c, got_l) != (channels, latent_dim):
        raise ImportError_(f"{what}: the checkpoint has {got_c} channel(s) and {got_l} latents; its gin config "
                           f"says {channels} and {latent_dim}")
    return out


# ---------------------------------------------------------------- reference scores
def reference_scores(src: Source, what: str) -> dict[str, dict[str, float]]:
    """{representation: {"<metric>.<key>": value}} of the recorded metric results (numbers only)."""
    out: dict[str, dict[str, float]] = {}
    for rel in sorted(src.members()):
        m = METRIC_RE.match(rel)
        if not m:
            continue
        rep, metric = m.groups()
        try:
            res = json.loads(src.read(rel))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ImportError_(f"{what}: {rel} is not valid JSON ({first_line(e)})") from None
        if not isinstance(res, dict):
            raise ImportError_(f"{what}: {rel} is not a JSON object")
        for k, v in res.items():
            if k in ("elapsed_time", "uuid") or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            out.setdefault(rep, {})[f"{metric}.{k}"] = float(v)
    return out


def scores_dataset(scores: dict, dataset: str, source: str):
    import xarray as xr

    from ..schema import provenance

    reps = sorted(scores)
    names = sorted({k for d in scores.values() for k in d})
    data = {n: (("representation",), np.array([scores[r].get(n, np.nan) for r in reps], np.float64),
                {"long_name": f"disentanglement_lib's recorded {n}", "units": "1",
                 "definition": "docs/importing.md#reference-scores"}) for n in names}
    ds = xr.Dataset(data, coords={"representation": reps})
    return provenance(ds, title="disentanglement_lib's recorded scores", dataset=dataset,
                      command=f"varstruct.importers.dlib.import_model({source!r})", source_model=source)


# ---------------------------------------------------------------- one model
@dataclasses.dataclass
class Result:
    source: str
    state: str  # imported | skipped | failed
    run_dir: str | None = None
    message: str | None = None


def run_dir_name(model_num: int | None, source: Path) -> str:
    if model_num is not None:
        return f"dlib_{model_num:05d}"
    stem = source.name[:-4] if source.name.endswith(".zip") else source.name
    return "dlib_" + re.sub(r"[^\w.-]", "_", stem)


def import_model(path, out, data_files: dict | None = None) -> Result:
    """Import one model zip / folder into ``out/<run dir>``; ImportError_ (one line) if it is
    malformed, hostile or unsupported, or its run dir holds another model."""
    from ..runs.layout import RunDir

    path, out = Path(path), Path(out)
    src = open_source(path)
    what = str(path)
    try:
        gin_text = src.read(TRAIN_GIN)
        try:
            bindings = parse_gin(gin_text.decode("utf-8"), f"{what}: {TRAIN_GIN}")
        except UnicodeDecodeError:
            raise ImportError_(f"{what}: {TRAIN_GIN} is not UTF-8 text") from None
        cfg, num = config_from_gin(bindings, what, data_files)
        index = src.read(HUB + ".index")
        fingerprint = hashlib.sha256(index + b"\0" + gin_text).hexdigest()
        final = out / run_dir_name(num, path)
        rd = RunDir(final)
        if final.exists():
            rec = _read_import(final)
            if rec is not None and rec.get("fingerprint") == fingerprint and rd.state == "trained":
                return Result(what, "skipped", str(final), "already imported")
            raise ImportError_(f"{what}: {final} exists and holds another model")

        def shard(sid, n):
            rel = shard_name(HUB, sid, n)
            if not src.exists(rel):
                raise ImportError_(f"{what}: missing data shard {rel}")
            return src.read(rel)

        tf_vars = read_bundle(index, shard, what=f"{what}: checkpoint")
        state = convert_weights(tf_vars, cfg["image_shape"][2], cfg["latent_dim"], what)
        scores = reference_scores(src, what)
    finally:
        src.close()
    _write_run(final, cfg, state, scores, {
        "source": str(path.resolve()), "format": "disentanglement_lib model (TF-Hub module + gin + JSON results)",
        "fingerprint": fingerprint, "model_num": num, "gin_train": {k: _jsonable(v) for k, v in bindings.items()},
        "variables": {k: list(v.shape) for k, v in sorted(tf_vars.items())},
        "reference_scores": REFERENCE_FILE if scores else None,
    })
    return Result(what, "imported", str(final))


def _jsonable(v):
    return v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)


def _read_import(folder: Path) -> dict | None:
    try:
        rec = json.loads((folder / IMPORT_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def _write_run(final: Path, cfg: dict, state: dict, scores: dict, record: dict) -> None:
    """Build the run dir in a hidden temporary folder beside it, check that it loads, rename."""
    import torch

    from ..io import write_json, write_netcdf
    from ..models.load import load_model
    from ..runs.layout import RunDir

    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        rd = RunDir(tmp)
        rd.write_weights({k: torch.from_numpy(v) for k, v in state.items()},
                         metadata={"source": "disentanglement_lib", "fingerprint": record["fingerprint"]})
        rd.write_config(cfg)
        if scores:
            write_netcdf(scores_dataset(scores, cfg["dataset"], record["source"]), tmp / REFERENCE_FILE)
        write_json(tmp / IMPORT_FILE, {**record, "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        rd.write_status(STATUS)
        load_model(rd)  # the weights fit varstruct's network (strict state-dict load)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------- batch
def import_models(sources, out, data_files: dict | None = None, progress: bool = False, on_result=None) -> list[Result]:
    """Import every model the sources name into ``out`` (created if missing). A source that
    fails gets a ``failed`` Result with one line and the others go on; models already imported
    (same fingerprint) are ``skipped``. ``on_result(Result)`` is called after each."""
    from ..errors import OutputError
    from ..progress import progress_bar

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {out}: {e.strerror or first_line(e)}") from None
    items = expand_sources(sources)
    results = []
    with progress_bar(progress, len(items), "importing", transient=False) as advance:
        for path, err in items:
            if err is not None:
                r = Result(str(path), "failed", message=err)
            else:
                try:
                    r = import_model(path, out, data_files)
                except VarstructError as e:
                    r = Result(str(path), "failed", message=first_line(e))
                except OSError as e:
                    r = Result(str(path), "failed", message=f"{path}: {e.strerror or first_line(e)}")
            results.append(r)
            if on_result is not None:
                on_result(r)
            advance(1, f"importing {Path(path).name}"[:22])
    return results
