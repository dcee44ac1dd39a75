"""The dSprites-family zoo's scores against its baselines: MIG, DCI disentanglement and DCI
informativeness of every converged run, beside the untrained network and PCA (and FastICA where
its runs exist: none at present, it did not converge on these data; pretrained/README.md).

Data: the zoo's groups ``dsprites`` (models trained until the convergence criterion held,
``studies/zoo_dsprites_*.toml``, ``studies/zoo_shapes3d.toml``) and ``dsprites_baselines``
(``studies/zoo_dsprites_baselines.toml``: the same network with ``steps = 0``, its seeded
initial weights; ``studies/zoo_dsprites_pca.toml``: 10 whitened principal components of
10,000 images), read with ``varstruct.collect``. Only runs that meet the
convergence criterion (``converged`` = 1, judged from each run's own train_log.csv) are drawn;
the unconverged ones are counted in the numbers. Scores on 4,000 / 2,000 uniform grid points
(seed 0), as ``varstruct evaluate``.

One column per dataset; in each, one x position per training setting (method and
hyper-parameters), dots for seeds and a bar for their median; the untrained network's seeds (grey
band: their range, line: median), PCA (dashed) and, where present, FastICA (dotted) across the
panel. Compared
panels share their y-axis (0-1).
"""
from __future__ import annotations

import numpy as np

from ._common import Missing, new_figure, save, values

SCORES = (("mig", "MIG"), ("dci_disentanglement", "DCI disentanglement"),
          ("dci_informativeness_test", "DCI informativeness (test)"))
DATASETS = ("dsprites", "color_dsprites", "noisy_dsprites", "shapes3d")


def setting(study) -> np.ndarray:
    """A label per model: its method and hyper-parameters (``beta_vae β=4``)."""
    hp = [str(c) for c in study.coords if str(c).startswith("hp_")]
    names = {"hp_beta": "β", "hp_gamma": "γ"}
    out = []
    for i in range(study.sizes["model"]):
        parts = []
        for h in hp:
            v = study[h].values[i]
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue  # absent for this method ('' or None)
            if np.isfinite(v):
                parts.append(f"{names.get(h, h[3:])}={v:g}")
        out.append(" ".join([str(study["method"].values[i])] + parts))
    return np.array(out)


def _natural(label: str):
    """Sort key: text parts as text, numbers as numbers (β=4 before β=16)."""
    import re

    return [float(t) if re.fullmatch(r"[0-9.]+", t) else t for t in re.split(r"([0-9.]+)", label) if t]


def _text(study, name: str) -> np.ndarray:
    return np.asarray(study[name].values).astype(str) if name in study.coords else np.full(study.sizes["model"], "")


def summarise(trained, baselines) -> dict:
    conv = values(trained, "converged")
    res = {}
    for ds in DATASETS:
        on = _text(trained, "dataset") == ds
        if not on.any():
            continue
        entry = {"converged": int(np.sum(conv[on] == 1)), "runs": int(on.sum()), "settings": {}, "baselines": {}}
        keep = on & (conv == 1)
        labels = setting(trained)
        for lab in sorted(set(labels[keep]), key=_natural):
            m = keep & (labels == lab)
            entry["settings"][lab] = {
                s: {"median": float(np.median(values(trained, s)[m])), "min": float(values(trained, s)[m].min()),
                    "max": float(values(trained, s)[m].max()), "values": values(trained, s)[m].round(4).tolist()}
                for s, _ in SCORES} | {"seeds": int(m.sum()),
                                       "trained_steps": values(trained, "trained_steps")[m].astype(int).tolist()}
        if baselines is not None:
            b_on = _text(baselines, "dataset") == ds
            kinds = _text(baselines, "baseline")
            for kind in ("untrained", "pca", "fastica"):
                m = b_on & (kinds == kind)
                if m.any():
                    entry["baselines"][kind] = {s: {"median": float(np.median(values(baselines, s)[m])),
                                                    "min": float(values(baselines, s)[m].min()),
                                                    "max": float(values(baselines, s)[m].max()),
                                                    "n": int(m.sum())} for s, _ in SCORES}
        res[ds] = entry
    return res


def make(zoo, out) -> dict:
    trained = zoo.select("dsprites")
    try:
        baselines = zoo.select("dsprites_baselines")
    except Missing:
        baselines = None
    if not np.any(values(trained, "converged") == 1):
        raise Missing("converged runs in the group dsprites (none meets the convergence criterion)")
    numbers = summarise(trained, baselines)
    present = [d for d in DATASETS if d in numbers and numbers[d]["settings"]]
    fig = new_figure(figsize=(max(4.2 * len(present), 7.5), 3.0 * len(SCORES)))
    axes = np.atleast_2d(fig.subplots(len(SCORES), len(present), sharey=True, squeeze=False))
    for j, ds in enumerate(present):
        entry = numbers[ds]
        labels = list(entry["settings"])
        for i, (s, name) in enumerate(SCORES):
            ax = axes[i, j]
            for x, lab in enumerate(labels):
                v = entry["settings"][lab][s]["values"]
                ax.scatter(np.full(len(v), x) + np.linspace(-0.12, 0.12, len(v)), v, s=16, color="C0", zorder=3)
                ax.hlines(entry["settings"][lab][s]["median"], x - 0.25, x + 0.25, color="C0", lw=2)
            b = entry["baselines"]
            if "untrained" in b:
                ax.axhspan(b["untrained"][s]["min"], b["untrained"][s]["max"], color="0.85", zorder=0,
                           label=f"untrained network (n={b['untrained'][s]['n']})")
                ax.axhline(b["untrained"][s]["median"], color="0.5", lw=1)
            for kind, style in (("pca", "--"), ("fastica", ":")):
                if kind in b:
                    ax.axhline(b[kind][s]["median"], color="C3", ls=style, lw=1.2, label={"pca": "PCA", "fastica": "FastICA"}[kind])
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels if i == len(SCORES) - 1 else [""] * len(labels), rotation=30, ha="right",
                               fontsize=7)
            ax.set_ylim(0, 1)
            ax.set_xlim(-0.6, len(labels) - 0.4)
            if j == 0:
                ax.set_ylabel(name)
            if i == 0:
                ax.set_title(f"{ds}: {entry['converged']} of {entry['runs']} runs converged", fontsize=9)
            if i == 0 and j == 0 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper right")
    linear = " / ".join(name for kind, name in (("pca", "PCA"), ("fastica", "FastICA"))
                        if any(kind in numbers[d]["baselines"] for d in present))
    fig.suptitle("dSprites family: converged models (dots: seeds, bar: median)\nvs the untrained network (band: range)"
                 + (f" and {linear}" if linear else ""), fontsize=10)
    save(fig, out, "dsprites_scores")
    return numbers


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
