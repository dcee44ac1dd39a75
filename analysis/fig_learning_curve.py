"""Learning curves of the dSprites β-VAE: how long training must run before the scores mean something.

Data: ``benchmarks/results/learning_curve.csv``, written by ``benchmarks/learning_curve.py`` (β ∈
{4, 16} × lr ∈ {1e-4, 5e-4} × 2 seeds, batch 64, scored at milestones from the checkpoint
weights; a model at milestone m is exactly an m-step run). Panels against training steps (log
scale): reconstruction (nats per image), KL, MIG, DCI disentanglement and active latents, one
line per seed, one colour per (β, lr). A marker is filled where the run meets the convergence
criterion at that milestone (``varstruct.training.convergence``: the reconstruction's trend over
the last quarter of an m-step run improves by < 2%), hollow where it does not. The chosen
schedule is the cheapest milestone at which every run of a setting is converged and its
MIG changed by at most ±0.02 since the previous milestone; ``numbers.json`` holds the table.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Missing, new_figure, save

TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "learning_curve.csv"
PANELS = (("recon", "reconstruction (nats)"), ("kl", "KL (nats)"), ("mig", "MIG"),
          ("dci_disentanglement", "DCI disentanglement"), ("active_latents", "active latents (KL ≥ 0.05)"))


def load(path=TABLE):
    import pandas as pd

    if not Path(path).is_file():
        raise Missing(f"the learning-curve table {path} (run benchmarks/learning_curve.py)")
    df = pd.read_csv(path)
    if df.empty:
        raise Missing(f"rows in {path}")
    if "converged" not in df:
        df["converged"] = np.nan
    df["converged"] = df["converged"].map(lambda v: v if isinstance(v, bool) else
                                          {"True": True, "False": False}.get(str(v), np.nan))
    return df


def schedule(df) -> dict:
    """Per (β, lr, batch): the milestones, whether every seed is converged there, the largest
    |ΔMIG| since the previous milestone, and the cheapest milestone meeting both rules."""
    out = {}
    for (beta, lr, batch), g in df.groupby(["beta", "lr", "batch_size"]):
        steps = sorted(g["step"].unique())
        rows, chosen, prev = [], None, None
        for m in steps:
            at = g[g["step"] == m].set_index("seed")
            conv = bool(at["converged"].eq(True).all()) if at["converged"].notna().all() else None
            dmig = None
            if prev is not None:
                common = at.index.intersection(prev.index)
                dmig = float(np.max(np.abs(at.loc[common, "mig"] - prev.loc[common, "mig"]))) if len(common) else None
            rows.append({"step": int(m), "seeds": int(len(at)), "all_converged": conv,
                         "max_abs_dmig": None if dmig is None else round(dmig, 4),
                         "mig_mean": round(float(at["mig"].mean()), 4),
                         "recon_mean": round(float(at["recon"].mean()), 2)})
            if chosen is None and conv and dmig is not None and dmig <= 0.02:
                chosen = int(m)
            prev = at
        out[f"beta{beta:g}-lr{lr:g}-b{int(batch)}"] = {"milestones": rows, "chosen_steps": chosen}
    return out


def make(zoo, out) -> dict:
    df = load()
    fig = new_figure(figsize=(20.0, 4.2))
    axes = fig.subplots(1, len(PANELS))
    groups = list(df.groupby(["beta", "lr", "batch_size"]))
    for k, ((beta, lr, batch), g) in enumerate(groups):
        colour = f"C{k % 10}"
        for s, (seed, gs) in enumerate(g.groupby("seed")):
            gs = gs.sort_values("step")
            for ax, (col, label) in zip(axes, PANELS):
                ax.plot(gs["step"], gs[col], "-", color=colour, lw=1, alpha=0.8,
                        label=f"β={beta:g}, lr={lr:g}, b={int(batch)}" if s == 0 else None)
                conv = gs["converged"].eq(True).to_numpy()
                ax.scatter(gs["step"][conv], gs[col][conv], color=colour, s=18, zorder=3)
                ax.scatter(gs["step"][~conv], gs[col][~conv], facecolors="none", edgecolors=colour, s=18, zorder=3)
    for ax, (col, label) in zip(axes, PANELS):
        ax.set_xscale("log")
        ax.set_xlabel("training steps (batch 64)")
        ax.set_ylabel(label)
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle("dSprites β-VAE learning curves (filled: converged at that milestone; hollow: reconstruction "
                 "still improving ≥ 2% over the last quarter)", fontsize=10)
    save(fig, out, "learning_curve")
    return {"table": str(TABLE.relative_to(TABLE.parents[2])), "n_rows": int(len(df)),
            "max_step": int(df["step"].max()), "schedule": schedule(df)}


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
