"""H1, the variance gap: the share of seeds that fail to disentangle, and the rotation of the
learned code, against the amplitude ratio r of the two toy_blobs factors.

Data: the zoo's group ``toy_h1`` (β-VAEs on ``toy_blobs``, profile ``none``, one fixed
amplitude of A, B's amplitude r times A's, so the variance ratio of B to A is r²; 20 seeds per r,
trained until converged; the older ``toy_ratios`` group if ``toy_h1`` is absent), read with
``varstruct.collect``. Per seed:
- *learning stage*: the number of latents with mean KL >= 0.05: 0 *collapsed* (nothing
  learned), 1 *partial* (one latent: a factor dropped, or both on one latent), >= 2 *learned*;
- *failure*: active MIG (MIG with latents of mean KL < 0.05 held constant) below 0.6, over all
  seeds; *mixing*: failure among the learned seeds only (the failure H1 is about: both factors
  encoded, but not one per latent);
- *rotation angle of the learned code* (degrees, 0–45): take the two latents with the largest
  mean KL (l1, l2) and each factor j's response M[j, l] = mean over anchors of
  |J_μ(x) · d_j(x)|_l (``jacobian_response``, the encoder mean's Jacobian applied to the factor's
  pixel direction) divided by √Var μ_l (``latent_variance``). The factor's response direction in
  the (l1, l2) plane makes the angle φ_j = atan2(M[j, l2], M[j, l1]) with l1's axis; the
  rotation angle is the mean over the two factors of min(φ_j, 90° − φ_j), its distance to the
  nearest latent axis. 0° means each factor moves one latent only (axis-aligned code), 45° a code
  rotated halfway between the factor axes. Undefined (left out, counted as "collapsed") for a
  model with fewer than two latents of mean KL >= 0.05. A model that puts both factors on one
  latent and keeps a second, weakly used one scores near 0°, so read it with the failure rate.
Panels: failure rate, mixing rate, and the collapsed and partial shares, each with its exact 95%
Clopper-Pearson interval
(``varstruct.study.stats.proportion_ci``); rotation angle per seed
(dots) and the median with its bootstrap CI; active MIG and standard MIG per seed with the mean
and its bootstrap CI. Test (numbers.json ``trend``): the Cochran–Armitage trend test of the
failure, mixing (among learned seeds), collapse and partial rates over r (scores r), over all
ratios and from r >= 1.25 on.
"""
from __future__ import annotations

import numpy as np

from varstruct.study.stats import proportion_ci

from ._common import (Missing, active_latents, bootstrap_ci, draw_baselines, group_or, new_figure,
                      normalised_by_oracle, rotation_angle, save, toy_baselines, toy_variance, training_summary,
                      values)

THRESHOLD = 0.6


def select(zoo):
    try:
        return group_or(zoo, ("toy_h1", "toy_ratios"), method="beta_vae")
    except Missing:
        return zoo.select(None, dataset="toy_blobs", data_profile="none", method="beta_vae")


def summarise(study) -> dict:
    """Per r: the numbers behind the figure (failure rate, rotation angle, MIGs with CIs)."""
    r = values(study, "data_r")
    amig, mig, rot = values(study, "active_mig"), values(study, "mig"), rotation_angle(study)
    n_act = active_latents(study)
    res = {}
    for i, rv in enumerate(np.unique(r[np.isfinite(r)])):
        m = r == rv
        fail = (amig[m] < THRESHOLD).astype(float)
        learned = n_act[m] >= 2
        mixing = int(((amig[m] < THRESHOLD) & learned).sum())
        stage = {"collapsed_0": int((n_act[m] == 0).sum()), "partial_1": int((n_act[m] == 1).sum()),
                 "learned_2plus": int(learned.sum())}
        res[f"{rv:g}"] = {"n_seeds": int(m.sum()), "failures": int(fail.sum()),
                          "failure_rate": proportion_ci(int(fail.sum()), int(m.sum())),
                          "stage": stage, "mixing": mixing,
                          "mixing_rate": proportion_ci(mixing, int(learned.sum())) if learned.any()
                          else (np.nan, np.nan, np.nan),
                          "no_latent_rate": proportion_ci(stage["collapsed_0"], int(m.sum())),
                          "partial_rate": proportion_ci(stage["partial_1"], int(m.sum())),
                          "active_latents": n_act[m].tolist(),
                          "rotation_median": bootstrap_ci(rot[m], np.median, seed=i),
                          "active_mig_mean": bootstrap_ci(amig[m], np.mean, seed=i),
                          "mig_mean": bootstrap_ci(mig[m], np.mean, seed=i),
                          "collapsed": int((~np.isfinite(rot[m])).sum()),
                          "collapsed_rate": proportion_ci(int((~np.isfinite(rot[m])).sum()), int(m.sum())),
                          "rotation": rot[m].round(1).tolist(), "active_mig": amig[m].round(3).tolist()}
    return res


def plot(study, summary, fig=None, baselines=None):
    fig = fig or new_figure(figsize=(13.0, 4.4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    rs = np.array([float(k) for k in summary])
    r = values(study, "data_r")
    rot, amig, mig = rotation_angle(study), values(study, "active_mig"), values(study, "mig")
    jit = np.random.default_rng(0).uniform(-0.025, 0.025, len(r))

    def line(ax, key, colour, label, marker="o"):
        est = np.array([summary[k][key] for k in summary])
        ax.errorbar(rs, est[:, 0], yerr=[est[:, 0] - est[:, 1], est[:, 2] - est[:, 0]], fmt=marker + "-",
                    color=colour, capsize=3, label=label, ms=4)

    line(ax1, "failure_rate", "C3", f"failure: active MIG < {THRESHOLD} (all seeds)")
    line(ax1, "mixing_rate", "C0", "mixing: failure among seeds with ≥ 2 latents", marker="D")
    line(ax1, "no_latent_rate", "C7", "collapsed: no latent of KL ≥ 0.05", marker="s")
    line(ax1, "partial_rate", "C5", "partial: one latent of KL ≥ 0.05", marker="v")
    for k in summary:
        ax1.annotate(f"{summary[k]['failures']}/{summary[k]['n_seeds']}", (float(k), summary[k]["failure_rate"][0]),
                     textcoords="offset points", xytext=(4, 5), fontsize=7)
    ax1.set_ylim(-0.05, 1.12)
    ax1.set_ylabel("share of seeds")
    ax2.scatter(r * (1 + jit), rot, s=10, color="C0", alpha=0.5, edgecolors="none", label="seeds")
    line(ax2, "rotation_median", "black", "median (95% CI)")
    ax2.set_ylim(-1, 46)
    ax2.set_ylabel("rotation angle of the code (°)")
    n_def = sum(summary[k]["n_seeds"] - summary[k]["collapsed"] for k in summary)
    ax2.set_title(f"seeds with ≥ 2 latents of KL ≥ 0.05 only ({n_def} of {len(r)})", fontsize=8)
    ax3.scatter(r * (1 + jit), amig, s=10, color="C2", alpha=0.5, edgecolors="none")
    ax3.scatter(r * (1 - jit), mig, s=10, color="C1", alpha=0.5, edgecolors="none", marker="s")
    line(ax3, "active_mig_mean", "C2", "active MIG (mean, 95% CI)")
    line(ax3, "mig_mean", "C1", "MIG (mean, 95% CI)", marker="s")
    ax3.axhline(THRESHOLD, ls=":", color="gray")
    if baselines:
        draw_baselines(ax3, baselines, [f"{v:g}" for v in rs], "active_mig", positions=list(rs), width=0.12)
    ax3.set_ylim(-0.02, 1.02)
    ax3.set_ylabel("score")
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log")
        ax.set_xticks(rs, [f"{v:g}" for v in rs])
        ax.minorticks_off()
        ax.set_xlabel("amplitude ratio r (variance ratio r²)")
        ax.legend(fontsize=7, frameon=False)
    ax1.legend(fontsize=6.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    amp = np.unique(values(study, "data_amplitude"))
    fig.suptitle(f"H1: β-VAE on toy_blobs (profile none, amplitude {', '.join(f'{a:g}' for a in amp)}), "
                 f"bootstrap CIs over seeds", fontsize=10)
    return fig


def make(zoo, out) -> dict:
    study = select(zoo)
    summary = summarise(study)
    if not summary:
        raise Missing("toy_blobs runs with a ratio r")
    save(plot(study, summary, baselines=toy_baselines(zoo, study, "data_r")), out, "h1_variance_gap")
    return {"per_r": summary, "dataset_variance": toy_variance(study),
            "training": training_summary(study), "trend": trend(summary),
            "baselines": (base := toy_baselines(zoo, study, "data_r")),
            "active_mig_over_oracle": normalised_by_oracle(
                {r: (r, v["active_mig_mean"][0]) for r, v in summary.items()}, base)}


def trend(summary: dict) -> dict:
    """H1's test: the Cochran–Armitage trend of the failure rate (and of the collapse rate) over r,
    scores r itself, all ratios and from r >= 1.25 on (``varstruct.study.contrasts.trend_test``);
    the tests are one family for Holm's adjustment (``p_holm``)."""
    from varstruct.study.contrasts import trend_test, with_holm

    rs = sorted(summary, key=float)
    out = {}
    counts = {"failure": lambda s: (s["failures"], s["n_seeds"]),
              "mixing among learned": lambda s: (s["mixing"], s["stage"]["learned_2plus"]),
              "collapse (no latent)": lambda s: (s["stage"]["collapsed_0"], s["n_seeds"]),
              "partial (one latent)": lambda s: (s["stage"]["partial_1"], s["n_seeds"])}
    for what, kn in counts.items():
        for name, keep in (("all r", rs), ("r >= 1.25", [r for r in rs if float(r) >= 1.25])):
            keep = [r for r in keep if kn(summary[r])[1] > 0]
            if len(keep) < 2:
                continue
            k = [kn(summary[r])[0] for r in keep]
            n = [kn(summary[r])[1] for r in keep]
            out[f"{what}, {name}"] = {**trend_test(k, n, [float(r) for r in keep]),
                                      "r": [float(r) for r in keep], "k_per_r": k, "n_per_r": n}
    return with_holm(out)


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
