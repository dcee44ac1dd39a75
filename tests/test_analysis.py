"""The figure scripts of analysis/: the cheap directly computed parts against closed forms, and
the zoo-based figures on tiny synthetic collected Datasets (no training, a few seconds)."""
import json

import numpy as np
import pytest
import xarray as xr

import varstruct
from analysis import __main__ as analysis_main
from analysis import _common, _profiles, fig_h1, fig_pca_finite_sample
from analysis.fig_colour_size import cell_means


def test_misalignment_equals_the_pca_of_the_images():
    ds = varstruct.datasets.get("toy_linear", amplitudes=(2.0 * np.sqrt(1.3), 2.0), sizes=(16, 16), side=16)
    idx = ds.sample_factors(40, np.random.default_rng(3))
    x = ds.render(idx).reshape(len(idx), -1).astype(np.float64)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    proj = ds.basis @ vt[0]                      # top principal direction in the factor basis
    theta = np.degrees(np.arctan2(abs(proj[1]), abs(proj[0])))
    want = min(theta, 90 - theta)
    got = fig_pca_finite_sample.misalignment(ds.coefficients(idx)[None])[0]
    assert got == pytest.approx(want, abs=1e-4)


def test_misalignment_closed_forms():
    # uncorrelated coefficients: the top direction is a factor axis
    c = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, -1.0], [0.0, 1.0]])[None]
    assert fig_pca_finite_sample.misalignment(c)[0] == pytest.approx(0.0)
    # points on the diagonal: 45 degrees from both axes
    d = np.array([[-1.0, -1.0], [1.0, 1.0], [2.0, 2.0]])[None]
    assert fig_pca_finite_sample.misalignment(d)[0] == pytest.approx(45.0)


def test_finite_sample_pca_large_gap_aligns_and_plots():
    ang = fig_pca_finite_sample.simulate(ratios=(1.0, 4.0), sizes=(16, 1024), repeats=30)
    assert ang.shape == (2, 2, 30)
    assert (ang[1, 1] < 10).all()                # ratio 4, n = 1024: always aligned
    assert (ang[0, 1] >= 10).mean() > 0.5        # no gap: mostly not
    fig = fig_pca_finite_sample.plot(ang, ratios=(1.0, 4.0), sizes=(16, 1024))
    assert len(fig.axes) == 2


def test_bootstrap_ci():
    assert _common.bootstrap_ci([0.3]) == (0.3, 0.3, 0.3)
    est, lo, hi = _common.bootstrap_ci([1.0, 1.0, 1.0, np.nan])
    assert (est, lo, hi) == (1.0, 1.0, 1.0)
    est, lo, hi = _common.bootstrap_ci([0, 0, 1, 1], seed=1)
    assert est == 0.5 and 0 <= lo < 0.5 < hi <= 1
    assert np.isnan(_common.bootstrap_ci([np.nan])[0])


def _study(n_seeds=4):
    """A tiny synthetic collected Dataset: toy_blobs profiles x (beta_vae, ada_gvae) x seeds."""
    rows = [(p, m, s) for p in ("none", "noflip", "flip") for m in ("beta_vae", "ada_gvae") for s in range(n_seeds)]
    n = len(rows)
    prof = np.array([r[0] for r in rows])
    amig = np.where(prof == "flip", 0.1, 0.9) + 0.01 * np.arange(n) % 3
    theta = np.radians(np.where(prof == "flip", 30.0, 10.0))
    # pure rotation of the factor axes by theta in latents (0, 1); latent 2 unused
    J = np.zeros((n, 2, 3))
    J[:, 0, 0], J[:, 0, 1] = np.cos(theta), np.sin(theta)
    J[:, 1, 0], J[:, 1, 1] = np.sin(theta), np.cos(theta)
    coords = {"model": [f"toy_profiles/{p}/{m}/seed{s}" for p, m, s in rows], "factor": ["A", "B"],
              "latent": [0, 1, 2], "method": ("model", [r[1] for r in rows]), "data_profile": ("model", prof),
              "seed": ("model", [r[2] for r in rows]), "data_r": ("model", np.where(prof == "flip", 1.0, 2.0)),
              "data_spread": ("model", np.where(prof == "flip", 2.0, np.nan)), "steps": ("model", np.full(n, 10)),
              "data_amplitude": ("model", np.full(n, 0.4)), "dataset": ("model", ["toy_blobs"] * n),
              "dataset_config": ("model", [json.dumps({"dataset": "toy_blobs", "params": {"profile": str(p)}})
                                           for p in prof])}
    return xr.Dataset({"mig": ("model", amig - 0.2), "active_mig": ("model", amig),
                       "encoding_inconsistency_mean": ("model", np.where(prof == "flip", 0.4, 0.0)),
                       "jacobian_response": (("model", "factor", "latent"), J),
                       "latent_variance": (("model", "latent"), np.tile([1.0, 1.0, 1e-6], (n, 1))),
                       "latent_kl": (("model", "latent"), np.tile([2.0, 1.5, 0.001], (n, 1)))}, coords=coords)


def test_rotation_angle_of_a_rotated_code():
    s = _study(1)
    got = _common.rotation_angle(s)
    want = np.where(s["data_profile"].values == "flip", 30.0, 10.0)
    np.testing.assert_allclose(got, want, atol=1e-9)
    # fewer than two latents above the KL threshold: undefined
    s["latent_kl"][:] = [[2.0, 0.01, 0.0]] * s.sizes["model"]
    assert np.isnan(_common.rotation_angle(s)).all()


def test_h1_summary_counts_failures():
    s = _study(4).isel(model=slice(None, 8))     # none: beta_vae and ada_gvae, 4 seeds each
    s["active_mig"][:] = [0.9, 0.5, 0.9, 0.9, 0.1, 0.2, 0.9, 0.9]
    s = s.assign_coords(data_r=("model", [1.0] * 4 + [2.0] * 4))
    summ = fig_h1.summarise(s)
    assert summ["1"]["failures"] == 1 and summ["1"]["n_seeds"] == 4 and summ["1"]["failure_rate"][0] == 0.25
    assert summ["2"]["failures"] == 2 and summ["2"]["rotation_median"][0] == pytest.approx(10.0)
    fig = fig_h1.plot(s, summ)
    assert len(fig.axes) == 3
    # learning stages: every seed has two latents of KL >= 0.05 here, so mixing = failures
    assert summ["1"]["stage"] == {"collapsed_0": 0, "partial_1": 0, "learned_2plus": 4}
    assert summ["1"]["mixing"] == 1 and summ["1"]["mixing_rate"][0] == 0.25
    s["latent_kl"][:2] = [[2.0, 0.01, 0.0], [0.0, 0.01, 0.02]]   # one partial, one collapsed seed at r = 1
    summ = fig_h1.summarise(s)
    assert summ["1"]["stage"] == {"collapsed_0": 1, "partial_1": 1, "learned_2plus": 2}
    assert summ["1"]["mixing"] == 0 and summ["1"]["failures"] == 1   # the failing seed (0.5) is the partial one
    tr = fig_h1.trend(summ)
    assert tr["failure, all r"]["n_per_r"] == [4, 4] and tr["mixing among learned, all r"]["n_per_r"] == [2, 4]


def test_profiles_figure_on_a_synthetic_study(monkeypatch):
    s = _study(3)
    summ = _profiles.summarise(s, ("beta_vae", "ada_gvae"))
    assert summ["beta_vae/flip"]["n_seeds"] == 3
    assert summ["beta_vae/flip"]["encoding_inconsistency_mean"][0] == pytest.approx(0.4)
    assert summ["ada_gvae/none"]["active_mig"][0] > summ["ada_gvae/flip"]["active_mig"][0]
    fig = _profiles.plot(s, ("beta_vae", "ada_gvae", "ordered_ae"), "t")
    assert len(fig.axes) == 4   # MIG, active MIG, A's active MIG, encoding inconsistency
    assert "flip\nr = 1, spread 2" in _profiles.labels(s).values()
    # A's active MIG: the per-factor score of factor A, as its own variable
    s["active_mig_per_factor"] = (("model", "factor"), np.c_[np.arange(s.sizes["model"]) / 100, np.ones(s.sizes["model"])])
    a = _common.with_factor_scores(s)
    np.testing.assert_allclose(a["active_mig_A"].values, np.arange(s.sizes["model"]) / 100)
    assert (a["active_mig_B"].values == 1).all()
    summ = _profiles.summarise(a, ("beta_vae",))
    assert summ["beta_vae/none"]["active_mig_A"][0] == pytest.approx(np.mean(a["active_mig_A"].values[
        (a["method"].values == "beta_vae") & (a["data_profile"].values == "none")]))
    with pytest.raises(_common.Missing):
        _profiles.plot(s, ("ordered_ae",), "t")
    # the figure's profile contrasts are one family: p_holm is Holm over all of them
    from varstruct.study.contrasts import holm

    monkeypatch.setattr(_profiles, "toy_variance", lambda study: {})  # the synthetic study's
    monkeypatch.setattr(_profiles, "training_summary", lambda study: {})  # configs are not real datasets
    nums = _profiles.numbers(a, ("beta_vae",))
    tests = [t for k in ("contrasts_active_mig", "contrasts_active_mig_learned_all", "contrasts_active_mig_A")
             for t in nums[k].values()]
    assert len(tests) == 9
    np.testing.assert_allclose([t["p_holm"] for t in tests], holm([t["p"] for t in tests]))


def test_cell_means_by_hand():
    m = xr.Dataset({"traversal_variance": (("anchor", "factor"), [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])},
                   coords={"factor": ["a", "b"], "anchor_factors": (("anchor", "factor"), [[0, 1], [0, 1], [1, 0]])})
    c = cell_means(m, 0, 1)
    assert c.shape == (2, 2, 2)
    assert c[0, 0, 1] == 2.0 and c[1, 0, 1] == 3.0 and c[0, 1, 0] == 5.0
    assert np.isnan(c[0, 0, 0]) and np.isnan(c[0, 1, 1])


def test_main_skips_missing_zoo(tmp_path, capsys):
    rc = analysis_main.main(["--zoo", str(tmp_path / "nozoo"), "--out", str(tmp_path / "figs"),
                             "--only", "fig_h1", "fig_h2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "fig_h1: skipped, missing no zoo at" in out and "fig_h2: skipped" in out
    assert json.loads((tmp_path / "figs" / "numbers.json").read_text()) == {}


def test_plot_functions_take_given_axes():
    from matplotlib.figure import Figure

    from varstruct.plots import plot_encoding_map, plot_factor_bars, plot_groups

    s = _study(2)
    ax = Figure().add_subplot()
    assert plot_groups(s, "mig", "data_profile", hue="method", ax=ax) is ax
    m = xr.Dataset({"variance_share": ("factor", [0.25, 0.75])}, coords={"factor": ["A", "B"]})
    ax = Figure().add_subplot()
    assert plot_factor_bars({"d1": m, "d2": m}, "variance_share", ax=ax) is ax
    meas = xr.Dataset({"encoding_dim": (("anchor", "factor"), [[0, 1], [1, -1]])},
                      coords={"factor": ["A", "B"], "anchor_factors": (("anchor", "factor"), [[0, 1], [2, 3]])})
    ax = Figure().add_subplot()
    assert plot_encoding_map(meas, "B", ax=ax) is ax


def test_learning_curve_schedule_picks_the_cheapest_converged_stable_milestone():
    import pandas as pd

    from analysis.fig_learning_curve import schedule

    rows = []
    for seed, migs, conv in ((0, [0.05, 0.20, 0.21, 0.22], [False, False, True, True]),
                             (1, [0.04, 0.15, 0.19, 0.20], [False, True, True, True])):
        for m, mig, c in zip([5000, 10000, 20000, 40000], migs, conv):
            rows.append({"beta": 4.0, "lr": 1e-4, "batch_size": 64, "seed": seed, "step": m, "mig": mig,
                         "recon": 100.0, "converged": c})
    s = schedule(pd.DataFrame(rows))["beta4-lr0.0001-b64"]
    # 10000: seed 0 unconverged; 20000: both converged but seed 1's MIG moved 0.04; 40000: both, |ΔMIG| 0.01
    assert [r["all_converged"] for r in s["milestones"]] == [False, False, True, True]
    assert s["milestones"][2]["max_abs_dmig"] == pytest.approx(0.04)
    assert s["chosen_steps"] == 40000


def test_longitudinal_arms_from_method_and_changeable():
    from analysis.fig_longitudinal import arms

    s = xr.Dataset(coords={"model": ["a", "b", "c", "d"],
                           "method": ("model", ["ada_gvae", "ada_gvae", "beta_vae", "factor_vae"]),
                           "hp_changeable": ("model", ['["posX", "posY", "scale"]', "", "", ""])})
    assert arms(s).tolist() == ["restricted", "any", "beta", ""]
    assert arms(s.drop_vars("hp_changeable")).tolist() == ["any", "any", "beta", ""]


def _training_length_zoo(far: bool = False):
    """Two H1 seeds (r = 1) and two toy_context β-VAE flip seeds, each at its stop (toy_h1,
    toy_context) and trained on (toy_longer), with hand-made logs; with ``far`` the two
    toy_context seeds also trained to 40,000 steps (toy_longer_40k)."""
    import pandas as pd
    from types import SimpleNamespace

    from analysis import fig_training_length

    cells = [("toy_blobs", "toy_h1", "none", "r1", s) for s in (0, 1)] + [("toy_context", "toy_context", "flip", "c", s) for s in (0, 1)]
    models, coords = [], {k: [] for k in ("dataset", "method", "data_r", "data_profile", "converged", "recon_improvement_se", "group")}
    amig = {"toy_h1": [0.1, 0.7, 0.3, 0.5], "toy_context": [0.1, 0.7, 0.3, 0.5], "toy_longer": [0.8, 0.75, 0.6, 0.7],
            "toy_longer_40k": [None, None, 0.62, 0.69]}
    kl, a = [], []
    for group in ("toy_h1", "toy_context", "toy_longer") + (("toy_longer_40k",) if far else ()):
        for i, (ds, twin, prof, cell, seed) in enumerate(cells):
            if group not in ("toy_longer", "toy_longer_40k", twin) or amig[group][i] is None:
                continue
            models.append(f"{group}/{ds}-{cell}/m/seed{seed}")
            for k, v in zip(coords, (ds, "beta_vae", 1.0 if ds == "toy_blobs" else 1.5, prof,
                                     0.0 if group.startswith("toy_longer") else 1.0, 0.01, group)):
                coords[k].append(v)
            kl.append([1.0, 1.0 if group.startswith("toy_longer") or seed == 1 else 0.0, 0.0])
            a.append(amig[group][i])
    a = np.array(a)
    study = xr.Dataset({"active_mig": ("model", a), "latent_kl": (("model", "latent"), np.array(kl)),
                        "active_mig_per_factor": (("model", "factor"), np.c_[a / 2, a])},
                       coords={"model": models, "factor": ["A", "B"], **{k: ("model", v) for k, v in coords.items()}})
    steps = np.arange(50, 40001, 50)
    twin_log = pd.DataFrame({"step": steps[steps <= 5000], "recon": 2.0})
    longer = pd.DataFrame({"step": steps[steps <= 20000], "recon": np.where(steps <= 5000, 2.0, np.where(steps <= 19000, 1.8, 1.5))[steps <= 20000]})
    farlog = pd.DataFrame({"step": steps, "recon": np.where(steps <= 19000, 1.8, np.where(steps <= 39000, 1.5, 1.2))})
    logs = {m: (farlog if m.startswith("toy_longer_40k") else longer if m.startswith("toy_longer") else twin_log) for m in models}
    logs["toy_longer/toy_context-c/m/seed1"] = longer.assign(recon=longer["recon"].where(longer["step"] != 100, 2.5))
    if far:  # seed 0's 40,000-step log goes on from its 20,000-step twin's rows; seed 1's does not
        logs["toy_longer_40k/toy_context-c/m/seed0"] = pd.concat([longer, farlog[farlog["step"] > 20000]], ignore_index=True)

    class FakeZoo(_common.Zoo):
        def __init__(self):
            self.path = None
            self.__dict__["study"] = study

        def run(self, model):
            return SimpleNamespace(read_log=lambda: logs[model])

    return fig_training_length, FakeZoo()


def test_training_length_pairs_each_run_with_its_twin(tmp_path):
    mod, zoo = _training_length_zoo()
    nums, (cells, logs, a0, a1, c1, factors) = mod.summarise(zoo, zoo)  # the fake zoo holds twins and longer runs
    assert nums["n_pairs"] == 4
    assert nums["replayed"] == 3                                  # one longer log differs from its twin at step 100
    np.testing.assert_allclose(logs["gain"], 0.25)               # R(5000) = 2.0 (rows 4050-5000), R(20000) = 1.5
    np.testing.assert_allclose(a0, [0.1, 0.7, 0.3, 0.5])
    np.testing.assert_allclose(a1, [0.8, 0.75, 0.6, 0.7])
    h1 = nums["cells"]["H1 r = 1"]
    assert (h1["failures_at_stop"], h1["failures_at_20000"]) == (1, 0)
    assert h1["failure_mcnemar"]["b"] == 0 and h1["failure_mcnemar"]["c"] == 1
    assert h1["change_active_mig"]["diff"] == pytest.approx((0.7 + 0.05) / 2)
    assert h1["stages_at_stop"] == [1, 2] and h1["stages_at_20000"] == [2, 2]
    ctx = nums["cells"]["beta_vae flip"]
    assert ctx["change_active_mig_A"]["diff"] == pytest.approx((0.15 + 0.1) / 2)
    assert (nums["converged_at_stop"], nums["converged_at_20000"]) == (4, 0)
    from varstruct.study.contrasts import holm

    ps = [h1["change_active_mig"]["p"], ctx["change_active_mig"]["p"], ctx["change_active_mig_A"]["p"]]
    np.testing.assert_allclose([h1["change_active_mig"]["p_holm"], ctx["change_active_mig"]["p_holm"],
                                ctx["change_active_mig_A"]["p_holm"]], holm(ps))
    out = mod.make(zoo, tmp_path, zoo)
    assert out["n_pairs"] == 4 and (tmp_path / "training_length.png").is_file()
    assert out["at_40000"] == {} and out["settled_20000_to_40000"] == {} and out["h1_at_20000"] == {}


def test_training_length_40000_steps_settled_by_tost(tmp_path):
    mod, zoo = _training_length_zoo(far=True)
    nums, _ = mod.summarise(zoo, zoo)
    curves = {k: (r["cell"], r["active_mig"]) for k, r in nums["at_40000"].items()}
    assert nums["n_pairs"] == 4  # the 40,000-step runs are not pairs of their own
    run = nums["at_40000"]["toy_context-c/m/seed0"]
    assert run["active_mig"] == [0.3, 0.6, 0.62] and run["steps"] == 40000
    assert run["recon_gain_20000_to_end"] == pytest.approx(0.2)  # R(20,000) = 1.5, R(40,000) = 1.2
    assert run["replays_20000"] is True and nums["at_40000"]["toy_context-c/m/seed1"]["replays_20000"] is False
    assert curves["toy_context-c/m/seed1"] == ("beta_vae flip", pytest.approx([0.5, 0.7, 0.69]))
    st = nums["settled_20000_to_40000"]["beta_vae flip"]["active_mig"]["20000_to_40000"]
    # changes 0.02 and -0.01: mean 0.005, se = s / sqrt(2) = 0.015; on 1 df (Cauchy) F(t) = 1/2 + atan(t)/pi
    assert st["diff"] == pytest.approx(0.005) and st["n"] == 2
    assert st["p"] == pytest.approx(max(0.5 - np.arctan(0.055 / 0.015) / np.pi, 0.5 - np.arctan(0.045 / 0.015) / np.pi))
    assert st["equivalent"] is False  # two runs cannot show it at this spread
    assert nums["settled_20000_to_40000"]["beta_vae flip"]["active_mig"]["stop_to_20000"]["diff"] == pytest.approx(0.25)
    assert nums["contrasts_at_40000"] == {}  # one cell at 40,000 steps: no contrast
    mod.make(zoo, tmp_path, zoo)
    assert (tmp_path / "training_length.png").is_file()


def test_training_length_h1_trend_counts():
    from analysis._length_tests import h1_trend
    from varstruct.study.contrasts import trend_test

    cells = np.array(["H1 r = 1"] * 3 + ["H1 r = 1.25"] * 2 + ["H1 r = 2"] * 3 + ["beta_vae flip"])
    a0 = np.array([0.1, 0.2, 0.9, 0.1, 0.8, 0.9, 0.9, 0.9, 0.1])
    a1 = np.array([0.1, 0.8, 0.9, 0.1, 0.8, 0.9, 0.9, 0.9, 0.1])
    s0 = np.array([0, 2, 2, 0, 2, 2, 2, 2, 0])
    out = h1_trend(cells, a0, a1, s0, s0)
    assert out["r"] == [1.0, 1.25, 2.0]
    assert out["at_stop"]["n"] == [3, 2, 3] and out["at_stop"]["failures"] == [2, 1, 0]
    assert out["at_20000"]["failures"] == [1, 1, 0] and out["at_20000"]["collapses"] == [1, 1, 0]
    assert out["at_stop"]["failure_trend"] == trend_test([2, 1, 0], [3, 2, 3], [1.0, 1.25, 2.0])
    assert out["at_stop"]["failure_trend_from_1.25"]["n"] == 5
    assert h1_trend(cells[:3], a0[:3], a1[:3], s0[:3], s0[:3]) == {}


def test_training_length_h2_relative_to_the_ceiling():
    from analysis._length_tests import profile_contrasts

    cells = np.array([f"{m} {p}" for m in ("beta_vae", "ordered_ae") for p in ("none", "noflip", "flip") for _ in range(3)])
    v = np.r_[[0.8, 0.8, 0.8], [0.6, 0.7, 0.8], [0.2, 0.3, 0.4], [0.5] * 9]
    study = xr.Dataset({"active_mig": ("model", v)}, coords={"model": np.arange(18)})
    ceil = {"none": {"active_mig": 0.9}, "noflip": {"active_mig": 0.8}, "flip": {"active_mig": 0.4}}
    out = profile_contrasts(study, cells, ceil)["active_mig"]
    assert out["h2_noflip_minus_flip"]["diff"] == pytest.approx(0.4)
    assert out["ceiling_change_noflip_minus_flip"] == pytest.approx(0.4)
    # relative to the ceiling: noflip 0.7 / 0.8 = 0.875, flip 0.3 / 0.4 = 0.75
    assert out["h2_noflip_minus_flip_over_oracle"]["diff"] == pytest.approx(0.125)
    assert out["h3_interaction"]["diff"] == pytest.approx((0.8 - 0.3) - 0.0)
    assert "p_holm" in out["h2_noflip_minus_flip_over_oracle"]
    assert "h2_noflip_minus_flip_over_oracle" not in profile_contrasts(study, cells)["active_mig"]


def test_training_length_bc_mixed_counts_and_fisher():
    from analysis._length_tests import bc_mixed

    cells = np.array([f"beta_vae {p}" for p in ("none", "noflip", "flip") for _ in range(4)])
    b = np.array([0.8] * 8 + [0.1, 0.05, 0.7, 0.6])
    c = np.array([0.8] * 7 + [0.2] + [0.7, 0.1, 0.7, 0.6])
    study = xr.Dataset({"active_mig_A": ("model", np.full(12, 0.8)), "active_mig_B": ("model", b),
                        "active_mig_C": ("model", c)}, coords={"model": np.arange(12)})
    out = bc_mixed(cells, study, study)["at_20000"]
    assert (out["beta_vae none"]["mixed"], out["beta_vae noflip"]["mixed"], out["beta_vae flip"]["mixed"]) == (0, 1, 2)
    assert out["beta_vae flip"]["B"] == [0.1, 0.05, 0.7, 0.6]
    # Fisher's exact, flip 2/4 against none 0/4 (2 mixed of 8): P(X = k) = C(4,k) C(4,2-k) / C(8,2) = 6, 16, 6 / 28;
    # the tables as or less likely than the observed X = 2 are X = 0 and X = 2
    assert out["fisher_flip_vs_none"] == pytest.approx(12 / 28)
    assert bc_mixed(cells[:8], study.isel(model=slice(0, 8)), study.isel(model=slice(0, 8))) == {}
