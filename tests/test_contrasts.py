"""The controlled experiments' tests against textbook values, exact enumerations and simulation."""
import numpy as np
import pytest

from varstruct.study.contrasts import contrast, equivalence, holm, interaction, mcnemar, paired, trend_test, with_holm


def test_cochran_armitage_on_agresti_s_malformation_table():
    """Agresti (2002), Table 2.7 / §3.4.6: infant malformation by maternal alcohol consumption,
    scores (0, 0.5, 1.5, 4, 7): M² = (N − 1) r² = 6.57 (P = 0.01); Cochran–Armitage z² = N r²."""
    k = [48, 38, 5, 1, 1]
    n = [17066 + 48, 14464 + 38, 788 + 5, 126 + 1, 37 + 1]
    v = trend_test(k, n, [0, 0.5, 1.5, 4, 7])
    N = sum(n)
    assert v["z"] ** 2 * (N - 1) / N == pytest.approx(6.57, abs=0.005)
    assert v["p"] == pytest.approx(0.0104, abs=0.0005) and v["z"] > 0


def test_cochran_armitage_by_hand_and_its_edge_cases():
    # k = (0, 2, 4), n = 4 each, t = (0, 1, 2): p̄ = 0.5, T = 0·(−2) + 1·0 + 2·2 = 4,
    # Var = 0.25 · (4·5 − 12²/12) = 0.25 · 8 = 2, z = 4/√2
    v = trend_test([0, 2, 4], [4, 4, 4], [0, 1, 2])
    assert v["z"] == pytest.approx(4 / np.sqrt(2)) and v["slope"] == pytest.approx(0.5)
    assert np.isnan(trend_test([0, 0], [5, 5], [0, 1])["z"])  # no success at all
    assert np.isnan(trend_test([1, 2], [5, 5], [1, 1])["z"])  # one score
    with pytest.raises(ValueError):
        trend_test([6], [5], [0])


def test_cochran_armitage_is_calibrated_under_no_trend():
    rng = np.random.default_rng(0)
    n = np.full(5, 20)
    ps = [trend_test(rng.binomial(20, 0.4, 5), n, np.arange(5))["p"] for _ in range(2000)]
    assert 0.035 <= np.mean(np.array(ps) < 0.05) <= 0.065


def test_contrast_exact_permutation_p_of_separated_cells():
    # two cells of 3, completely separated: of the C(6,3) = 20 relabellings, 2 are as extreme
    v = contrast([1.0, 2.0, 3.0], [10.0, 11.0, 12.0], n_resamples=9999)
    assert v["diff"] == pytest.approx(-9.0) and v["p"] == pytest.approx(2 / 20)
    assert v["ci_low"] <= -9.0 <= v["ci_high"] < 0
    assert np.isnan(contrast([1.0], [2.0, 3.0])["p"])


def test_contrast_is_seeded_and_drops_nan():
    a, b = [0.1, 0.4, np.nan, 0.3, 0.2], [0.5, 0.6, 0.7, 0.55]
    assert contrast(a, b, seed=3) == contrast(a, b, seed=3)
    assert contrast(a, b)["n_a"] == 4


def test_interaction_ci_covers_the_true_difference_of_drops():
    """Four normal cells with a known difference of drops (0.3 − 0.1 = 0.2): the 95% percentile
    bootstrap CI covers it in about 95% of 300 simulated studies (10 seeds a cell)."""
    rng = np.random.default_rng(1)
    hits, rejects_null = 0, 0
    for i in range(300):
        cells = [rng.normal(m, 0.1, 10) for m in (0.8, 0.5, 0.7, 0.6)]
        v = interaction(*cells, n_resamples=2000, seed=i)
        hits += v["ci_low"] <= 0.2 <= v["ci_high"]
        rejects_null += v["p"] < 0.05
    assert 0.88 <= hits / 300 <= 0.98  # percentile bootstrap at n = 10 runs a little narrow
    # the planted interaction is found: SE = 0.1·√(4/10) = 0.063, z = 3.16, normal power ≈ 0.89
    assert 0.8 <= rejects_null / 300 <= 0.97


def test_interaction_by_hand():
    v = interaction([1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.5, 0.5])
    assert v["drop_a"] == 1.0 and v["drop_b"] == 0.5 and v["diff"] == 0.5
    assert v["ci_low"] == v["ci_high"] == 0.5 and v["p"] == 0.0


def test_holm_by_hand():
    """p = (0.01, 0.04, 0.03, 0.005), m = 4: sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06,
    0.04·1 = 0.04 → running max 0.06; returned in the input's order. NaN is no test."""
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.01])  # m = 2: 0.01·2 = 0.02, 0.2·1 = 0.2
    np.testing.assert_allclose(out[[0, 2]], [0.2, 0.02])
    assert np.isnan(out[1])
    np.testing.assert_allclose(holm([0.6, 0.5]), [1.0, 1.0])  # capped at 1, monotone
    assert holm([]).shape == (0,) and np.isnan(holm([np.nan])).all()


def test_with_holm_adjusts_every_test_of_a_nested_family_as_one():
    tests = {"a": {"x": {"p": 0.01, "diff": 1.0}, "y": {"p": 0.04}}, "b": {"p": 0.03}, "c": {"p": 0.005},
             "note": "not a test"}
    out = with_holm(tests)
    assert (out["a"]["x"]["p_holm"], out["a"]["y"]["p_holm"], out["b"]["p_holm"], out["c"]["p_holm"]) == \
        pytest.approx((0.03, 0.06, 0.06, 0.02))
    assert out["a"]["x"]["diff"] == 1.0 and out["note"] == "not a test" and "p_holm" not in tests["b"]


def test_paired_exact_sign_flip_p():
    # 5 positive differences: of the 2^5 sign patterns only all-plus and all-minus are as extreme
    v = paired([3.0, 4.0, 5.0, 6.0, 7.5], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert v["diff"] == pytest.approx(4.1) and v["n"] == 5
    assert v["p"] == pytest.approx(2 / 32)
    assert 2.0 <= v["ci_low"] < 4.1 < v["ci_high"] <= 6.5
    # differences 1, -1, 2: enumerate the 8 sign patterns by hand
    d = np.array([1.0, -1.0, 2.0])
    signs = np.array([[i >> k & 1 for k in range(3)] for i in range(8)]) * 2 - 1
    want = np.mean(np.abs((signs * d).mean(axis=1)) >= abs(d.mean()) - 1e-12)
    assert paired(d, np.zeros(3))["p"] == pytest.approx(want)


def test_paired_drops_nan_pairs_and_handles_no_change():
    v = paired([1.0, np.nan, 2.0, 3.0], [1.0, 5.0, 2.0, 3.0])
    assert v["n"] == 3 and v["diff"] == 0 and v["p"] == 1.0
    assert np.isnan(paired([1.0], [0.0])["p"])
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])


def _t2_cdf(t):
    # Student's t with 2 degrees of freedom in closed form: F(t) = 1/2 + t / (2 sqrt(2 + t^2))
    return 0.5 + t / (2 * np.sqrt(2 + t * t))


def test_equivalence_tost_closed_form_on_two_degrees_of_freedom():
    # differences -1, 0, 1: mean 0, s = 1, se = 1/sqrt(3); margin 2: both one-sided t = 2 sqrt(3)
    v = equivalence(np.array([4.0, 5.0, 6.0]), np.full(3, 5.0), margin=2.0)
    assert v["diff"] == pytest.approx(0.0, abs=1e-15) and v["n"] == 3
    assert v["p"] == pytest.approx(1 - _t2_cdf(np.sqrt(12)), rel=1e-12) and v["equivalent"] is True
    # 90% t interval on 2 df: t_0.95 = 0.9 / sqrt(2 * 0.95 * 0.05)
    half = 0.9 / np.sqrt(0.095) / np.sqrt(3)
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((-half, half), rel=1e-9)
    # differences 0, 1, 2 (mean 1): the upper test decides, t = (1 - 2) sqrt(3)
    w = equivalence([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], margin=2.0)
    assert w["p"] == pytest.approx(_t2_cdf(-np.sqrt(3)), rel=1e-12) and w["equivalent"] is False
    assert w["ci_high"] == pytest.approx(1 + half, rel=1e-9) and w["ci_high"] > 2  # the interval leaves the margin


def test_equivalence_edge_cases():
    assert equivalence([0.51, 0.52], [0.50, 0.51], margin=0.05)["p"] == 0.0  # no spread, inside
    assert equivalence([0.6, 0.7], [0.5, 0.6], margin=0.05)["equivalent"] is False  # no spread, outside
    v = equivalence([1.0, np.nan], [0.5, 0.5], margin=0.05)
    assert v["n"] == 1 and np.isnan(v["p"]) and v["equivalent"] is None
    with pytest.raises(ValueError):
        equivalence([1.0, 2.0], [1.0, 2.0], margin=0.0)
    with pytest.raises(ValueError):
        equivalence([1.0, 2.0], [1.0], margin=0.1)


def test_mcnemar_exact_binomial():
    # 6 switch 0 -> 1, 1 switches 1 -> 0: p = 2 * P[Bin(7, 1/2) <= 1] = 2 * 8/128
    before = [0] * 6 + [1] + [1] * 3 + [0] * 2
    after = [1] * 6 + [0] + [1] * 3 + [0] * 2
    v = mcnemar(before, after)
    assert (v["b"], v["c"], v["n"]) == (6, 1, 12)
    assert v["p"] == pytest.approx(16 / 128)
    assert mcnemar([0, 1, 1], [0, 1, 1])["p"] == 1.0
    assert mcnemar([0, 1], [1, 0])["p"] == 1.0  # one each way: 2 * P[Bin(2, 1/2) <= 1] capped at 1
