"""Training length: do the toy zoo's scores change when its runs train four times longer?

Data: the run dirs under ``benchmarks/results/training_length/toy_longer``
(``studies/zoo_toy_h1_longer*.toml``, ``studies/zoo_toy_context_longer.toml``; kept out of
``pretrained/``, whose runs meet the convergence criterion, since these fixed-budget runs need not):
toy runs of the H1 and H2/H3 zoos (``toy_h1``,
``toy_context``) trained again with the same config and seed for a fixed 20,000 steps instead of
until the convergence criterion held. Every batch is a pure function of (seed, step), so a
longer run replays its twin's steps bit for bit and then goes on: each pair is one model seen at
its stopping step T0 and at 20,000 (``replayed``: how many longer logs equal their twin's rows).
Pairs: H1's r = 1 and 1.25 cells (all 20 seeds; the cells whose failure rates carry H1's trend),
its r = 1.5, 2, 3 cells (the seeds ``studies/zoo_toy_h1_longer_b.toml`` names) and every toy_context
cell (all 10 seeds: 0-4 trained at stop 28, 5-9 at stop 29).

Per pair:
- *reconstruction gained after the stop*: (R(T0) − R(20,000)) / R(T0), with R the mean recon of
  the log rows in the 1,000 steps up to the step (20 rows: batch noise ≈ 1%);
- the convergence verdict at T0 (the twin's) and at 20,000 (the longer run's own), with the
  improvement's standard error (``varstruct.training.convergence``);
- the change of active MIG (and, on toy_context, of factor A's active MIG, H2/H3's outcome; each
  cell's plain MIG and DCI disentanglement at both lengths, ``mig_at_stop`` …), of the learning
  stage (latents with mean KL >= 0.05) and, on H1, of failure (active MIG < 0.6).

Panels: (a) reconstruction gained after the stop, per run, by cell; (b) active MIG at T0 against
at 20,000 steps, per run (the diagonal: no change); (c) where there are 40,000-step runs, each
one's active MIG at T0, 20,000 and 40,000 steps. Tests (numbers.json ``cells``): per cell the
mean paired change of active MIG (and of A's) with a sign-flip permutation p and a bootstrap CI
(``varstruct.study.contrasts.paired``), Holm over all cells' changes (active MIG and A's) as one
family; H1 failures before and after by the exact McNemar test. ``h1_at_20000``: H1's failures
and collapses per r at the stop and at 20,000 steps on the same seeds, with the Cochran–Armitage
trends (all r, and from r = 1.25 on). ``contrasts_at_20000`` / ``contrasts_at_stop_same_seeds``:
H2's contrasts and H3's interaction on the toy_context pairs at each length, with the oracle
readout's ceilings and H2's noflip − flip relative to them (Holm over the tests of each length;
``contrasts_at_40000`` the same on the 40,000-step runs, once they cover every cell).
``at_40000``: where ``training_length/`` has the group ``toy_longer_40k``
(``studies/zoo_toy_context_40k*.toml``: seeds 0-4 of every toy_context cell), each such run's
scores at T0, 20,000 and 40,000 steps; ``settled_20000_to_40000``: per cell, whether active MIG and
A's settled, a paired TOST that the mean change lies within ±MARGIN (0.05;
``contrasts.equivalence``), from 20,000 to 40,000 steps and, for contrast, from T0 to 20,000.
``bc_mixed``: each toy_context β-VAE seed's per-factor active MIG at both lengths, and how many
mix B and C (B's or C's active MIG < MIXED, 0.3), with Fisher's exact test of flip against each
control (panel (d) shows the per-factor scores at 20,000 steps against the oracle's ceilings).
"""
from __future__ import annotations

import numpy as np

from pathlib import Path

from ._common import Missing, Zoo, active_latents, new_figure, save, values, with_factor_scores
from ._length_tests import FAIL, bc_mixed, ceilings_of, h1_trend, profile_contrasts

LONGER = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "training_length"

TWINS = ("toy_h1", "toy_context")
WINDOW = 1000  # steps of log rows averaged for R(T)
# "Settled" from 20,000 to 40,000 steps: a cell's mean paired change of active MIG (and of A's) lies
# within ±MARGIN by a paired TOST at α = 0.05 (contrasts.equivalence). Fixed before the 40,000-step
# runs of seeds 1-4 were scored: a quarter of the smallest effect section 5 reads (0.19), and under
# a third of the smallest change the criterion's stop left (0.16, β-VAE flip).
MARGIN = 0.05


def _pairs(zoo, runs):
    """(longer study, twin study) aligned model by model: the runs' group ``toy_longer`` against
    the zoo's groups ``toy_h1`` and ``toy_context`` (the same path under each group)."""
    longer = with_factor_scores(runs.select("toy_longer"))
    names = [m.split("/", 1)[1] for m in longer["model"].values.astype(str)]
    twins = with_factor_scores(zoo.study.isel(model=np.flatnonzero(np.isin(zoo.study["group"].values, TWINS))))
    index = {m.split("/", 1)[1]: i for i, m in enumerate(twins["model"].values.astype(str))}
    keep = [i for i, n in enumerate(names) if n in index]
    if not keep:
        raise Missing("no toy_longer run with a twin in toy_h1 or toy_context")
    return longer.isel(model=keep), twins.isel(model=[index[names[i]] for i in keep])


def _recon_at(log, step: float) -> float:
    s, r = log["step"].to_numpy(float), log["recon"].to_numpy(float)
    m = (s > step - WINDOW) & (s <= step)
    return float(np.mean(r[m])) if m.any() else float("nan")


def _replays(longer, shorter) -> bool:
    """Whether a longer run's recon rows [R] begin with its shorter twin's rows, bit for bit."""
    return bool(len(longer) >= len(shorter) and np.array_equal(longer[:len(shorter)], shorter))


def _logs(zoo, runs, longer, twins) -> dict:
    """Per pair: T0, the reconstruction gained from T0 to the longer run's end, whether the longer
    log replays the twin's rows, and the longer log's recon rows (for its 40,000-step twin)."""
    t0, gain, replay, recon = [], [], [], []
    for a, b in zip(longer["model"].values.astype(str), twins["model"].values.astype(str)):
        la, lb = runs.run(a).read_log(), zoo.run(b).read_log()
        T0, T = float(lb["step"].iloc[-1]), float(la["step"].iloc[-1])
        r0, r1 = _recon_at(la, T0), _recon_at(la, T)
        t0.append(T0)
        gain.append((r0 - r1) / r0)
        recon.append(la["recon"].to_numpy())
        replay.append(_replays(recon[-1], lb["recon"].to_numpy()))
    return {"t0": np.array(t0), "gain": np.array(gain), "replay": np.array(replay), "recon": recon}


def _cells(study) -> np.ndarray:
    ds, meth = study["dataset"].values.astype(str), study["method"].values.astype(str)
    r, prof = values(study, "data_r"), study["data_profile"].values.astype(str)
    return np.array([f"H1 r = {rv:g}" if d == "toy_blobs" else f"{m} {p}" for d, m, rv, p in zip(ds, meth, r, prof)])


def summarise(zoo, runs=None) -> dict:
    """``zoo``: the twins' zoo (pretrained/); ``runs``: where the longer runs are (default
    :data:`LONGER`)."""
    from varstruct.study.contrasts import mcnemar, paired, with_holm

    runs = runs if runs is not None else Zoo(LONGER)
    longer, twins = _pairs(zoo, runs)
    logs = _logs(zoo, runs, longer, twins)
    cells = _cells(twins)
    a0, a1 = values(twins, "active_mig"), values(longer, "active_mig")
    A0, A1 = values(twins, "active_mig_A"), values(longer, "active_mig_A")
    s0, s1 = active_latents(twins), active_latents(longer)
    plain = {k: (values(twins, k), values(longer, k)) for k in ("mig", "dci_disentanglement")}  # the scores without "active"
    c0, c1 = values(twins, "converged"), values(longer, "converged")
    se0, se1 = values(twins, "recon_improvement_se"), values(longer, "recon_improvement_se")
    out = {"n_pairs": int(len(cells)), "replayed": int(logs["replay"].sum()),
           "converged_at_stop": int(np.nansum(c0 == 1)), "converged_at_20000": int(np.nansum(c1 == 1)),
           "improvement_se_at_stop_median": float(np.nanmedian(se0)),
           "improvement_se_at_20000_median": float(np.nanmedian(se1)),
           "recon_gain_median": float(np.median(logs["gain"])), "recon_improved": int(np.sum(logs["gain"] > 0)),
           "recon_gain_quartiles": np.quantile(logs["gain"], [0.25, 0.75]).round(4).tolist(),
           "stage_changed": int(np.sum(s0 != s1)), "stage_up": int(np.sum(s1 > s0)), "stage_down": int(np.sum(s1 < s0))}
    tests = {}
    for c in dict.fromkeys(cells):
        m = cells == c
        row = {"n": int(m.sum()), "stop_steps": np.unique(logs["t0"][m]).astype(int).tolist(),
               "converged_at_stop": int(np.nansum(c0[m] == 1)), "converged_at_20000": int(np.nansum(c1[m] == 1)),
               "recon_gain_median": round(float(np.median(logs["gain"][m])), 4),
               "active_mig_at_stop": round(float(np.mean(a0[m])), 3), "active_mig_at_20000": round(float(np.mean(a1[m])), 3),
               **{f"{k}_at_{w}": round(float(np.mean(v[m])), 3) for k, vs in plain.items()
                  for w, v in zip(("stop", "20000"), vs) if np.isfinite(v[m]).all()},
               "stages_at_stop": s0[m].astype(int).tolist(), "stages_at_20000": s1[m].astype(int).tolist()}
        tests[c] = {"change_active_mig": paired(a1[m], a0[m], seed=0)}
        if np.isfinite(A0[m]).all() and not c.startswith("H1"):
            tests[c]["change_active_mig_A"] = paired(A1[m], A0[m], seed=1)
        if c.startswith("H1"):
            row["failures_at_stop"], row["failures_at_20000"] = int(np.sum(a0[m] < FAIL)), int(np.sum(a1[m] < FAIL))
            row["failure_mcnemar"] = mcnemar(a0[m] < FAIL, a1[m] < FAIL)
        out.setdefault("cells", {})[c] = row
    tests = with_holm(tests)
    for c, t in tests.items():
        out["cells"][c].update(t)
    ceilings = ceilings_of(zoo, twins)
    out["contrasts_at_20000"] = profile_contrasts(longer, cells, ceilings)
    out["contrasts_at_stop_same_seeds"] = profile_contrasts(twins, cells, ceilings)
    out["h1_at_20000"] = h1_trend(cells, a0, a1, s0, s1)
    out["at_40000"], out["settled_20000_to_40000"], (far, far_cells) = _at_40000(runs, longer, twins, cells, logs["recon"])
    out["contrasts_at_40000"] = profile_contrasts(far, far_cells, ceilings) if far is not None else {}
    factors = {sc: values(longer, sc) for sc in ("active_mig_A", "active_mig_B", "active_mig_C")}
    out["bc_mixed"] = bc_mixed(cells, twins, longer)
    return out, (cells, logs, a0, a1, c1, factors)


def _at_40000(runs, longer, twins, cells, recon20) -> tuple[dict, dict, tuple]:
    """The runs of the optional group ``toy_longer_40k`` (the same runs trained to 40,000 steps).

    ``recon20``: the 20,000-step runs' recon rows, aligned with ``longer``. Returns (per run: its
    cell, its scores at T0, 20,000 and 40,000 steps, the reconstruction gained from 20,000 to the
    end (the same windowed means) and whether its log's rows up to 20,000 steps equal its
    20,000-step twin's (``replays_20000``); per cell with ≥ 2 such runs: whether active MIG and A's
    settled from 20,000 to 40,000 (``equivalence`` within ±MARGIN, the paired TOST), next to the
    same test from T0 to 20,000; (the 40,000-step runs that have a pair, their cells) for H2/H3's
    contrasts at that length). Empty (and (None, None)) without the group."""
    from varstruct.study.contrasts import equivalence

    try:
        far = with_factor_scores(runs.select("toy_longer_40k"))
    except Missing:
        return {}, {}, (None, None)
    rel = {m.split("/", 1)[1]: i for i, m in enumerate(longer["model"].values.astype(str))}
    studies = (twins, longer, far)
    scores = {sc: [values(st, sc) for st in studies] for sc in ("active_mig", "active_mig_A", "active_mig_B", "active_mig_C")}
    stages, converged = [active_latents(st) for st in studies], values(far, "converged")
    out, by_cell, kept, far_cells = {}, {}, [], []
    for j, m in enumerate(far["model"].values.astype(str)):
        key = m.split("/", 1)[1]
        if key not in rel:
            continue
        cell = cells[rel[key]]
        kept.append(j)
        far_cells.append(cell)
        at = (rel[key], rel[key], j)  # the run's index in twins, longer, far
        log = runs.run(m).read_log()
        T = float(log["step"].iloc[-1])
        row = {"cell": str(cell),
               "recon_gain_20000_to_end": round((_recon_at(log, 20000) - _recon_at(log, T)) / _recon_at(log, 20000), 4),
               "steps": int(T), "converged": bool(converged[j] == 1),
               "replays_20000": _replays(log["recon"].to_numpy(), recon20[rel[key]])}
        for sc, cols in scores.items():
            v = [col[k] for col, k in zip(cols, at)]
            if np.isfinite(v).all():
                row[sc] = [round(float(x), 3) for x in v]
        row["stages"] = [int(col[k]) for col, k in zip(stages, at)]
        out[key] = row
        by_cell.setdefault(cell, []).append(at)
    settled = {}
    for c, ats in by_cell.items():
        if len(ats) < 2:
            continue
        row = {"n": len(ats)}
        for sc in ("active_mig", "active_mig_A"):
            t0, t1, t2 = (np.array([scores[sc][i][a[i]] for a in ats]) for i in range(3))
            if np.isfinite(np.r_[t0, t1, t2]).all():
                row[sc] = {"20000_to_40000": equivalence(t2, t1, MARGIN), "stop_to_20000": equivalence(t1, t0, MARGIN)}
        settled[c] = row
    return out, settled, (far.isel(model=kept), np.array(far_cells))


def make(zoo, out, runs=None) -> dict:
    numbers, (cells, logs, a0, a1, c1, factors) = summarise(zoo, runs)
    curves = numbers["at_40000"]  # each 40,000-step run's cell and active MIG at T0, 20,000, 40,000
    prof = {"none": 0, "noflip": 1, "flip": 2}
    order = sorted(dict.fromkeys(cells), key=lambda c: (0, float(c.split()[-1]), "") if c.startswith("H1")
                   else (1, prof.get(c.split()[1], 3), c.split()[0]))
    h2 = numbers["contrasts_at_20000"]
    wide = bool(curves or h2)
    fig = new_figure(figsize=(12.0, 8.4) if wide else (11.0, 4.2))
    axes = fig.subplots(2, 2, width_ratios=[1.4, 1]).ravel() if wide else fig.subplots(1, 2, width_ratios=[1.6, 1])
    ax1, ax2 = axes[0], axes[1]
    rng = np.random.default_rng(0)
    for i, c in enumerate(order):
        m = cells == c
        x = i + rng.uniform(-0.15, 0.15, m.sum())
        g = 100 * logs["gain"][m]
        ax1.scatter(x[c1[m] == 1], g[c1[m] == 1], s=14, color="C0", label="converged at 20,000" if i == 0 else None)
        ax1.scatter(x[c1[m] != 1], g[c1[m] != 1], s=18, marker="x", color="C3",
                    label="not converged at 20,000" if i == 0 else None)
    ax1.axhline(0, color="0.5", lw=0.8)
    names = {"beta_vae": "β-VAE", "ordered_ae": "ordered AE"}
    ax1.set_xticks(range(len(order)), [c.replace("H1 ", "H1\n") if c.startswith("H1")
                                       else f"{names.get(c.split()[0], c.split()[0])}\n{c.split()[1]}" for c in order], fontsize=7)
    ax1.set_ylabel("reconstruction gained after the stop, % of R(T0)")
    ax1.set_title("(a) what 20,000 steps add to the criterion's stop", fontsize=9)
    ax1.legend(fontsize=7)
    h1 = np.char.startswith(cells.astype(str), "H1")
    for sel, lab, col in ((h1, "H1 (toy_blobs, β-VAE)", "C0"),
                          (~h1 & np.char.startswith(cells.astype(str), "beta"), "toy_context β-VAE", "C1"),
                          (np.char.startswith(cells.astype(str), "ordered"), "toy_context ordered AE", "C2")):
        ax2.scatter(a0[sel], a1[sel], s=14, color=col, label=lab, alpha=0.8)
    ax2.plot([0, 1], [0, 1], color="0.5", lw=0.8)
    ax2.set_xlim(-0.02, 1.0)
    ax2.set_ylim(-0.02, 1.0)
    ax2.set_xlabel("active MIG at the criterion's stop (T0)")
    ax2.set_ylabel("active MIG at 20,000 steps")
    ax2.set_title("(b) the same runs, trained on", fontsize=9)
    ax2.legend(fontsize=7)
    if curves:
        ax3, styles = axes[2], {"beta_vae": ("C1", "-"), "ordered_ae": ("C2", "--")}
        seen = set()
        for key, run in sorted(curves.items()):
            meth, prof, v = run["cell"].split()[0], run["cell"].split()[-1], run["active_mig"]
            col, ls = styles.get(meth, ("C0", ":"))
            lab = f"{names.get(meth, meth)}" if meth not in seen else None
            seen.add(meth)
            ax3.plot([0, 1, 2], v, color=col, ls=ls, marker={"none": "o", "noflip": "s", "flip": "^"}.get(prof, "."),
                     ms=4, lw=0.9, alpha=0.8, label=lab)
        ax3.set_xticks([0, 1, 2], ["stop (T0)", "20,000", "40,000"])
        ax3.set_ylim(-0.02, 1.0)
        ax3.set_xlabel("training length (steps); markers: none ○, noflip □, flip △")
        ax3.set_ylabel("active MIG")
        ax3.set_title(f"(c) runs trained on to 40,000 steps ({len(curves)})", fontsize=9)
        ax3.legend(fontsize=7)
    elif wide:
        axes[2].set_axis_off()
    if h2:
        _draw_factors(axes[3], cells, factors, h2, names)
    elif wide:
        axes[3].set_axis_off()
    fig.suptitle(f"Training length: {numbers['n_pairs']} toy runs at their stop and at 20,000 steps", fontsize=10)
    save(fig, out, "training_length")
    return numbers


def _draw_factors(ax, cells, factors, h2, names) -> None:
    """(d) each factor's active MIG at 20,000 steps by profile: seeds (dots), means (bars) of both
    methods, and the oracle readout's ceiling (dashed) on each profile."""
    profiles = ("none", "noflip", "flip")
    for f, sc in enumerate(("active_mig_A", "active_mig_B", "active_mig_C")):
        for j, p in enumerate(profiles):
            x = 4 * f + j
            for dx, meth, col in ((-0.17, "beta_vae", "C1"), (0.17, "ordered_ae", "C2")):
                v = factors[sc][cells == f"{meth} {p}"]
                v = v[np.isfinite(v)]
                if not len(v):
                    continue
                ax.scatter(np.full(len(v), x + dx), v, s=8, color=col, alpha=0.6,
                           label=names[meth] if (f, j) == (0, 0) else None)
                ax.hlines(np.mean(v), x + dx - 0.14, x + dx + 0.14, colors=col, lw=2)
            ceil = h2.get(sc, {}).get("ceiling", {}).get(p)
            if ceil is not None:
                ax.hlines(ceil, x - 0.4, x + 0.4, colors="k", linestyles="--", lw=1,
                          label="oracle readout (ceiling)" if (f, j) == (0, 0) else None)
    ax.set_xticks([4 * f + j for f in range(3) for j in range(3)],
                  [f"{p}\n{fac if j == 1 else ''}" for fac in ("A", "B", "C") for j, p in enumerate(profiles)], fontsize=7)
    ax.set_ylim(-0.02, 1.0)
    ax.set_xlabel("profile, by factor (toy_context)")
    ax.set_ylabel("active MIG of the factor at 20,000 steps")
    ax.set_title("(d) H2/H3 per factor at 20,000 steps", fontsize=9)
    ax.legend(fontsize=7)


if __name__ == "__main__":
    from ._common import script_main

    raise SystemExit(script_main(__spec__.name))
