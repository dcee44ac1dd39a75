"""Shared helpers of the figure scripts: the zoo (collected once, lazily), figure saving,
bootstrap confidence intervals, and :class:`Missing` for a figure whose data is absent."""
from __future__ import annotations

import json
import logging
from functools import cached_property
from pathlib import Path

import numpy as np

from varstruct.io import atomic_path
from varstruct.measures.rotation import MIN_KL, rotation_angle as measures_rotation_angle


class Missing(Exception):
    """The data a figure needs is not there: the figure is skipped with this one-line message."""


def new_figure(figsize=(6.0, 4.0), layout="constrained"):
    """A pyplot-free Figure (no global figure registry)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def save(fig, out: Path, name: str, dpi: int = 130) -> list[Path]:
    """Write ``fig`` as out/name.png and out/name.pdf (atomically); return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = out / f"{name}.{ext}"
        with atomic_path(p) as tmp:
            # metadata without dates so that a rerun on the same data writes the same PDF
            fig.savefig(tmp, format=ext, dpi=dpi, metadata={"CreationDate": None} if ext == "pdf" else None)
        paths.append(p)
    return paths


def bootstrap_ci(values, stat=np.mean, n_resamples: int = 2000, level: float = 0.95, seed: int = 0):
    """(estimate, low, high): ``stat`` of the finite ``values`` and its percentile bootstrap CI
    over resamples of the values (e.g. seeds) with replacement. NaNs if there are no values;
    low = high = estimate for a single value."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    est = float(stat(v))
    if len(v) == 1:
        return est, est, est
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_resamples, len(v)))
    boots = np.apply_along_axis(stat, 1, v[idx]) if stat not in (np.mean, np.median) else stat(v[idx], axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return est, float(lo), float(hi)


class Zoo:
    """A models dir (e.g. ``pretrained/``): ``study`` is ``varstruct.collect`` of it, computed on
    first use; ``group`` (a coordinate added on ``model``) is the first path component of each
    run dir (``toy_ratios``, ``toy_profiles``, ``mask``, ...)."""

    def __init__(self, path):
        self.path = Path(path)

    @cached_property
    def study(self):
        import varstruct

        if not self.path.is_dir():
            raise Missing(f"no zoo at {self.path}")
        logging.getLogger("varstruct.collect").setLevel(logging.ERROR)  # skipped runs: one line each is too much here
        try:
            s = varstruct.collect(self.path)
        except ValueError as e:
            raise Missing(f"no finished run in {self.path} ({e})") from None
        groups = [m.split("/")[0] if "/" in m else "" for m in s["model"].values]
        return s.assign_coords(group=("model", np.array(groups, dtype=str)))

    def select(self, group=None, **coords):
        """The models of ``group`` whose coordinates equal ``coords`` (a value or a list of values;
        a coordinate the study lacks matches nothing). Raises Missing if none is left."""
        s = self.study
        keep = np.ones(s.sizes["model"], dtype=bool)
        if group is not None:
            keep &= s["group"].values == group
        for k, v in coords.items():
            if k not in s.coords:
                raise Missing(f"the zoo has no coordinate {k!r} (wanted {k}={v!r})")
            vals = v if isinstance(v, (list, tuple)) else [v]
            keep &= np.isin(s[k].values, vals)
        if not keep.any():
            what = ", ".join([f"group={group}"] * (group is not None) + [f"{k}={v}" for k, v in coords.items()])
            raise Missing(f"no run with {what} in {self.path}")
        return s.isel(model=np.flatnonzero(keep))

    def run(self, model: str):
        """The :class:`varstruct.runs.layout.RunDir` of a model (a path relative to the zoo): the one
        reader of a run's files."""
        from varstruct.runs.layout import RunDir

        return RunDir(self.path / model)

    def config(self, model: str) -> dict:
        """The run's config (``RunDir.read_config``)."""
        return self.run(model).read_config()

    def measures(self, model: str):
        """The run's measures.nc (per anchor)."""
        rd = self.run(model)
        if not rd.has_measures:
            raise Missing(f"{rd.measures_path} is missing")
        return rd.read_measures()

    def load_model(self, model: str):
        from varstruct.models.load import load_model

        rd = self.run(model)
        if not rd.weights_path.is_file():
            raise Missing(f"no weights in {rd.path}")
        return load_model(rd)


def values(study, name: str) -> np.ndarray:
    """study[name] as a float array (NaN if the variable is absent)."""
    if name not in study:
        return np.full(study.sizes["model"], np.nan)
    return np.asarray(study[name].values, dtype=float)


def fmt_ci(est, lo, hi, digits: int = 2) -> str:
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def script_main(module_name: str, argv=None) -> int:
    """``python -m analysis.<fig> [--zoo pretrained/] [--out figures/]``: run one figure script."""
    import argparse
    import importlib
    import sys

    mod = importlib.import_module(module_name)
    p = argparse.ArgumentParser(prog=f"python -m {module_name}", description=mod.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zoo", default="pretrained/")
    p.add_argument("--out", default="figures/")
    a = p.parse_args(argv)
    try:
        numbers = mod.make(Zoo(a.zoo), Path(a.out))
    except Missing as e:
        print(f"{module_name}: skipped, missing {e}", file=sys.stderr)
        return 0
    print(json.dumps(numbers, indent=1, default=str))
    return 0


def rotation_angle(study, min_kl: float = MIN_KL) -> np.ndarray:
    """Rotation angle of each model's learned code, degrees [model] in [0, 45]:
    :func:`varstruct.measures.rotation.rotation_angle` (the definition) of the study's
    ``jacobian_response`` (model, factor, latent), ``latent_variance`` and ``latent_kl``;
    all NaN if the study lacks one of them."""
    n = study.sizes["model"]
    if not {"jacobian_response", "latent_variance", "latent_kl"} <= set(study.data_vars):
        return np.full(n, np.nan)
    return measures_rotation_angle(study["jacobian_response"].transpose("model", "factor", "latent").values,
                                   study["latent_variance"].transpose("model", "latent").values,
                                   study["latent_kl"].transpose("model", "latent").values, min_kl)


TOY_DATASETS = ("toy_blobs", "toy_context")


def toy_variance(study) -> dict:
    """Closed-form variance report (``ds.variance()``) of each distinct toy_blobs or toy_context
    configuration in ``study``, keyed by its dataset_config JSON."""
    import varstruct

    out = {}
    for key in np.unique(study["dataset_config"].values):
        cfg = json.loads(key)
        if cfg["dataset"] in TOY_DATASETS:
            v = varstruct.datasets.get(cfg["dataset"], **cfg["params"]).variance()
            out[key] = {k: round(float(x), 6) for k, x in v.items()}
    return out


def active_latents(study, min_kl: float = MIN_KL) -> np.ndarray:
    """Per model the number of latents with mean KL >= ``min_kl`` (``latent_kl``; NaN if absent)."""
    if "latent_kl" not in study:
        return np.full(study.sizes["model"], np.nan)
    return (study["latent_kl"].transpose("model", "latent").values >= min_kl).sum(1).astype(float)


def with_factor_scores(study, var: str = "active_mig_per_factor", prefix: str = "active_mig_"):
    """``study`` with one model-dim variable per factor, ``<prefix><factor>`` = ``var`` of that
    factor (e.g. ``active_mig_A``), NaN where a model's dataset lacks the factor."""
    if var not in study or "factor" not in study[var].dims:
        return study
    return study.assign({f"{prefix}{f}": study[var].sel(factor=f).drop_vars("factor")
                         for f in study["factor"].values.astype(str)})


def training_summary(study) -> dict:
    """How long the study's runs trained and how many meet the convergence criterion (collect's
    ``trained_steps`` and ``converged`` coordinates, judged from each run's own train_log.csv)."""
    steps = values(study, "trained_steps") if "trained_steps" in study.coords else np.full(study.sizes["model"], np.nan)
    conv = values(study, "converged") if "converged" in study.coords else np.full(study.sizes["model"], np.nan)
    fin = steps[np.isfinite(steps)]
    return {"n_runs": int(study.sizes["model"]), "converged": int(np.nansum(conv == 1)),
            "with_verdict": int(np.isfinite(conv).sum()),
            "trained_steps_min_median_max": [float(fin.min()), float(np.median(fin)), float(fin.max())]
            if len(fin) else None,
            "budget_steps": np.unique(values(study, "steps")).tolist()}


def group_or(zoo, groups, **coords):
    """``zoo.select(group, **coords)`` of the first of ``groups`` the zoo has (Missing if none)."""
    last = None
    for g in groups:
        try:
            return zoo.select(g, **coords)
        except Missing as e:
            last = e
    raise last


BASELINE_SCORES = ("mig", "active_mig", "dci_disentanglement", "active_mig_A", "active_mig_B", "active_mig_C")


def toy_baselines(zoo, study, by: str, scores=BASELINE_SCORES) -> dict:
    """The ceiling and floors of each cell's dataset configuration, from the zoo group
    ``toy_baselines`` (``studies/zoo_toy_baselines.toml``, ``zoo_toy_untrained.toml``):
    {label: {kind: {score: mean over that kind's runs}}} for kind in oracle (the ceiling), pca,
    fastica and untrained, with ``label`` the value of coordinate ``by`` (``data_profile`` or
    ``data_r``) of the study's models of that configuration. {} when the group is absent."""
    try:
        b = with_factor_scores(zoo.select("toy_baselines"))
    except Missing:
        return {}
    bkeys, kinds = b["dataset_config"].values.astype(str), b["baseline"].values.astype(str)
    out = {}
    for key in np.unique(study["dataset_config"].values.astype(str)):
        label = study[by].values[study["dataset_config"].values.astype(str) == key][0]
        label = f"{label:g}" if isinstance(label, (float, np.floating)) else str(label)
        m = bkeys == key
        out[label] = {}
        for k in sorted(set(kinds[m])):
            cells = {s: values(b, s)[m & (kinds == k)] for s in scores if s in b}
            out[label][k] = {s: round(float(np.mean(v[np.isfinite(v)])), 4) for s, v in cells.items()
                             if np.isfinite(v).any()}
    return out


def normalised_by_oracle(means: dict, baselines: dict, score: str = "active_mig") -> dict:
    """{cell: mean score / the oracle's score on the cell's configuration}; ``means`` maps a cell
    name to (its configuration's label, its mean score)."""
    out = {}
    for cell, (label, mean) in means.items():
        oracle = baselines.get(label, {}).get("oracle", {}).get(score)
        if oracle:
            out[cell] = round(float(mean) / oracle, 4)
    return out


BASELINE_STYLE = {"oracle": ("k", "--", "oracle readout (ceiling)"), "pca": ("C3", ":", "PCA"),
                  "fastica": ("C4", ":", "FastICA"), "untrained": ("0.5", "-.", "untrained network")}


def draw_baselines(ax, baselines: dict, labels, score: str, positions=None, width: float = 0.4) -> None:
    """Short horizontal lines at each baseline's ``score`` over each group's x position
    (``positions``: the x of each label; default 0, 1, ...), one legend entry per kind."""
    seen = set()
    for i, label in enumerate(labels):
        x = i if positions is None else positions[i]
        for kind, (colour, ls, name) in BASELINE_STYLE.items():
            v = baselines.get(label, {}).get(kind, {}).get(score)
            if v is None or not np.isfinite(v):
                continue
            lo, hi = (x - width, x + width) if positions is None else (x / (1 + width / 2), x * (1 + width / 2))
            ax.hlines(v, lo, hi, colors=colour, linestyles=ls, lw=1.2, label=None if kind in seen else name)
            seen.add(kind)
