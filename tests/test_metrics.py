"""Array metrics against answers computed by hand (entropies of small designed cases)."""
import numpy as np
import pytest

from varstruct import metrics as M
from varstruct.metrics._gbt import GradientBoosting

LN2 = np.log(2.0)


def grid(*sizes, reps=1):
    """Every combination of the factor values, each `reps` times: int [prod(sizes) * reps, K]."""
    g = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), axis=-1).reshape(-1, len(sizes))
    return np.tile(g, (reps, 1))


# ---- discretisation and information ---------------------------------------------------------
def test_histogram_discretize_reference_formula_and_constant():
    x = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0], [0.24, 5.0]])
    d = M.histogram_discretize(x, 4)
    assert d[:, 0].tolist() == [1, 3, 4, 1]          # edges 0, .25, .5, .75 (last edge dropped)
    assert len(np.unique(d[:, 1])) == 1                # a constant code falls into one bin


def test_entropy_and_mutual_information_by_hand():
    v = np.repeat([0, 0, 1, 2], 25)[:, None]         # p = (1/2, 1/4, 1/4)
    assert M.discrete_entropy(v)[0] == pytest.approx(1.5 * LN2, abs=1e-12)
    z = (v == 0).astype(int)                           # a function of v: I = H(z) = ln 2
    assert M.discrete_mutual_info(z, v)[0, 0] == pytest.approx(LN2, abs=1e-12)


# ---- MIG ---------------------------------------------------------------------------------------
def test_mig_permutation_of_factors_is_one():
    f = grid(4, 4, 4, reps=3)
    codes = f[:, [2, 0, 1]].astype(float)              # 4 values, 4 bins: one value per bin
    assert M.mig(codes, f, n_bins=4) == pytest.approx(1.0, abs=1e-12)
    assert M.mig_per_factor(codes, f, n_bins=4) == pytest.approx(np.ones(3), abs=1e-12)


def test_mig_hand_computed_and_two_factor_code_scores_lower():
    f = grid(2, 2, reps=10)
    mixed = np.stack([f[:, 0] + 2 * f[:, 1], f[:, 1]], axis=1).astype(float)
    # I(z0; v0) = I(z0; v1) = I(z1; v1) = ln 2, I(z1; v0) = 0, H = ln 2: gaps 1 and 0
    assert M.mig_per_factor(mixed, f, n_bins=4) == pytest.approx([1.0, 0.0], abs=1e-12)
    assert M.mig(mixed, f, n_bins=4) == pytest.approx(0.5, abs=1e-12)
    assert M.mig(f.astype(float), f, n_bins=4) == pytest.approx(1.0, abs=1e-12)


def test_mig_unequal_entropy_and_constant_code():
    v = np.repeat([0, 0, 1, 2], 25)[:, None]
    codes = np.stack([(v[:, 0] == 0) * 1.0, np.full(len(v), 3.0)], axis=1)   # second: constant
    assert M.mig_per_factor(codes, v)[0] == pytest.approx(LN2 / (1.5 * LN2), abs=1e-12)


def test_mig_pure_noise_is_near_zero():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 5, size=(5000, 3))
    assert M.mig(rng.normal(size=(5000, 6)), f) < 0.02


# ---- DCI -----------------------------------------------------------------------------------------
def test_dci_from_hand_made_importance_matrices():
    assert M.disentanglement(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert M.completeness(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert M.disentanglement(np.ones((2, 2))) == pytest.approx(0.0, abs=1e-8)
    r = np.array([[3.0, 1.0], [1.0, 3.0]])
    h = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert M.disentanglement(r) == pytest.approx(1 - h, abs=1e-8)
    assert M.completeness(r) == pytest.approx(1 - h, abs=1e-8)
    # one code carries both factors: D = 0, but each factor is complete (one code each)
    assert M.disentanglement(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.0, abs=1e-8)
    assert M.completeness(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(1.0, abs=1e-8)
    assert M.disentanglement(np.zeros((2, 2))) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("backend", ["fast", "sklearn"])
def test_dci_permutation_is_perfect_and_duplicate_lowers_completeness(backend):
    f = grid(3, 4, reps=8)
    codes = f[:, [1, 0]].astype(float)
    r = M.dci(codes, f, codes, f, backend=backend, n_jobs=2)
    assert r["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert r["completeness"] == pytest.approx(1.0, abs=1e-6)
    assert r["informativeness_train"] == r["informativeness_test"] == 1.0
    assert r["importance_matrix"].shape == (2, 2)
    dup = np.concatenate([codes, codes[:, :1]], axis=1)   # code 0 twice
    rd = M.dci(dup, f, dup, f, backend=backend, n_jobs=2)
    assert rd["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert rd["completeness"] < r["completeness"] - 0.05
    assert rd["completeness_per_factor"][1] < 0.95        # factor 1's importance is shared
    assert rd["completeness_per_factor"][0] == pytest.approx(1.0, abs=1e-6)


def test_dci_code_carrying_two_factors_scores_lower():
    rng = np.random.default_rng(1)
    f = grid(3, 3, reps=15)
    good = f.astype(float) + 0.01 * rng.normal(size=f.shape)
    mixed = np.stack([f[:, 0] + 3 * f[:, 1], rng.normal(size=len(f))], axis=1)
    assert M.dci(mixed, f, mixed, f)["disentanglement"] < M.dci(good, f, good, f)["disentanglement"] - 0.3


def _assert_same_model(X, y, Xt, seed, n_estimators):
    """The fast classifier and scikit-learn's: identical importances, raw predictions, labels."""
    from sklearn.ensemble import GradientBoostingClassifier
    ref = GradientBoostingClassifier(random_state=seed, n_estimators=n_estimators).fit(X, y)
    me = GradientBoosting(random_state=seed, n_estimators=n_estimators).fit(X, y)
    assert np.array_equal(ref.feature_importances_, me.feature_importances_)
    for Z in (X, Xt):
        assert np.array_equal(ref.decision_function(Z).reshape(len(Z), -1), me.decision(Z))
        assert np.array_equal(ref.predict(Z), me.predict(Z))
    assert np.array_equal(ref.predict(X), me.train_predictions_)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_fast_gbt_is_sklearn_on_continuous_codes(n_classes):
    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 300)
    X = rng.normal(size=(300, 4)) + 0.4 * y[:, None] * rng.normal(size=4)
    _assert_same_model(X, y, rng.normal(size=(100, 4)), seed=n_classes, n_estimators=20)


def test_fast_gbt_is_sklearn_with_ties_and_constant_features():
    """Discrete codes (equal values: introsort order), a duplicated column (equal proxies: the
    feature drawn first wins), a constant column (skipped and remembered) and string labels."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    X = np.stack([y, rng.integers(0, 3, 400), y, np.full(400, 2.0), rng.normal(size=400)], axis=1)
    labels = np.array(["a", "b", "c", "d"])[y]
    _assert_same_model(X.astype(float), labels, X[:60] + 0.5, seed=3, n_estimators=15)


def test_fast_gbt_near_tie_chains_equal_sklearn():
    """float32 values one ulp apart are ties for scikit-learn (x <= x_prev + 1e-7f in float32)."""
    rng = np.random.default_rng(0)
    vals = [np.float32(0.75)]
    for _ in range(200):
        vals.append(np.nextafter(vals[-1], np.float32(2)))
    x0 = rng.choice(np.array(vals, dtype=np.float32), 600)
    y = (x0 > vals[100]).astype(int)
    X = np.stack([x0, rng.normal(size=600).astype(np.float32)], axis=1)
    _assert_same_model(X, y, X[::7], seed=0, n_estimators=5)


def test_fast_gbt_threads_and_seeds_do_not_change_the_model():
    from concurrent.futures import ThreadPoolExecutor
    from varstruct.metrics._gbt import tree_seeds
    rng = np.random.default_rng(2)
    y = rng.integers(0, 6, 300)
    X = rng.normal(size=(300, 3)) + 0.3 * y[:, None]
    one = GradientBoosting(random_state=5, n_estimators=10).fit(X, y)
    with ThreadPoolExecutor(3) as pool:
        seeds = tree_seeds(np.random.RandomState(5), 10, 6)
        many = GradientBoosting(random_state=None, n_estimators=10).fit(X, y, pool, 3, seeds=seeds)
    assert np.array_equal(one.feature_importances_, many.feature_importances_)
    assert np.array_equal(one.train_raw_, many.train_raw_)


def test_fast_gbt_is_sklearn_on_mixed_codes():
    """Codes mixing what the fast paths treat differently: distinct values (presorted), a few
    exact float32 collisions (the introsort followed only into the parts holding them), many
    ties (discrete codes), values within 1e-7 of each other and a constant code."""
    for trial in range(3):
        rng = np.random.default_rng(100 + trial)
        n = 700
        y = rng.integers(0, 4, n)
        few_ties = (rng.normal(size=n) + 0.5 * y).astype(np.float32)
        pairs = rng.integers(0, n, (12, 2))
        few_ties[pairs[:, 0]] = few_ties[pairs[:, 1]]
        X = np.stack([rng.normal(size=n) + 0.4 * y, few_ties, y + rng.integers(0, 3, n),
                      np.round(rng.normal(size=n) + y, 1), 1.0 - (y + rng.integers(0, 2, n)) * 2.0 ** -24,
                      np.full(n, 3.0)], axis=1)
        X = X[:, rng.permutation(X.shape[1])]
        _assert_same_model(X, y, X[::5] + 0.01, seed=int(rng.integers(0, 1000)), n_estimators=12)


def test_tie_following_sort_equals_the_full_introsort():
    """_sort_ties followed only into the parts with ties, + the tie-free parts filled from the
    sorted order == the whole introsort (_sort_ties with every sample marked tied: the path the
    scikit-learn equality tests on discrete codes check), on random orders with pairs of equal
    values, many ties and repeated values."""
    from varstruct.metrics._gbt_kernels import _sort_ties
    rng = np.random.default_rng(0)
    stack = np.empty((136, 3), dtype=np.int64)
    for trial in range(300):
        n = int(rng.integers(1, 2000))
        kind = trial % 3
        if kind == 0:
            vals = rng.normal(size=n).astype(np.float32)
            ab = rng.integers(0, n, (int(rng.integers(0, 6)), 2))
            vals[ab[:, 0]] = vals[ab[:, 1]]
        elif kind == 1:
            vals = rng.integers(0, max(2, n // 3), n).astype(np.float32)
        else:
            vals = rng.normal(size=n).astype(np.float32)
            vals[rng.integers(0, n, 10)] = 0.5
        order = rng.permutation(n)
        v1, i1 = vals[order].copy(), order.copy()
        _sort_ties(v1, i1, 0, n, stack, np.ones(n, dtype=np.uint8))
        u, cnt = np.unique(vals, return_counts=True)
        tied = np.isin(vals, u[cnt > 1]).astype(np.uint8)
        v2, i2 = vals[order].copy(), order.copy()
        _sort_ties(v2, i2, 0, n, stack, tied)
        presort = np.argsort(vals, kind="stable")
        filled = np.where(tied[presort] == 1, i2, presort)
        assert np.array_equal(filled, i1), trial
        assert np.array_equal(np.sort(vals), v1)


# ---- SAP -----------------------------------------------------------------------------------------
def test_sap_hand_computed():
    f = grid(2, 2, reps=50)
    codes = f.astype(float)
    # matching code: accuracy 1; the other is independent of the factor on the full grid: 0.5
    np.testing.assert_allclose(M.sap_score_matrix(codes, f, codes, f), [[1.0, 0.5], [0.5, 1.0]])
    assert M.sap(codes, f, codes, f) == pytest.approx(0.5)
    # continuous variant: squared correlations 1, 1/2 / 0, 1/2 -> gaps 0.5, 0.5
    mixed = np.stack([f[:, 0], f[:, 0] + f[:, 1]], axis=1).astype(float)
    np.testing.assert_allclose(M.sap_score_matrix(mixed, f, mixed, f, continuous_factors=True),
                               [[1.0, 0.0], [0.5, 0.5]], atol=1e-12)
    assert M.sap(mixed, f, mixed, f, continuous_factors=True) == pytest.approx(0.5)


# ---- modularity / explicitness -------------------------------------------------------------------
def test_modularity_hand_computed():
    from varstruct.metrics.modularity import modularity_per_code
    mi = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(modularity_per_code(mi), [1.0, 0.0, 0.0])
    f = grid(3, 3, reps=10)
    r = M.modularity_explicitness(f.astype(float), f, f.astype(float), f)
    assert r["modularity"] == pytest.approx(1.0, abs=1e-12)
    assert r["explicitness_test"] > 0.9


# ---- IRS -----------------------------------------------------------------------------------------
def test_irs_hand_computed():
    f = grid(2, 2, reps=25)
    assert M.irs(f.astype(float), f) == pytest.approx(1.0)
    # z = v0 + v1: within v0 = c, z - E = ±1/2 -> D = 1/2; max deviation 1 -> IRS 1/2
    assert M.irs((f[:, :1] + f[:, 1:]).astype(float), f) == pytest.approx(0.5)
    d = M.irs_details(np.concatenate([f, np.ones((len(f), 1))], axis=1).astype(float), f)
    assert d["num_active_dims"] == 2 and np.isnan(d["per_code"][2]) and d["irs"] == pytest.approx(1.0)
    assert M.irs(np.ones((len(f), 2)), f) == 0.0


# ---- unsupervised --------------------------------------------------------------------------------
def test_unsupervised_hand_computed():
    ab = grid(2, 2, reps=5) * 2 - 1                      # a, b in {-1, 1}, exactly uncorrelated
    r0 = M.unsupervised_scores(ab.astype(float))
    assert r0["gaussian_total_correlation"] == pytest.approx(0.0, abs=1e-12)
    assert r0["gaussian_wasserstein_correlation"] == pytest.approx(0.0, abs=1e-7)
    assert r0["mutual_info_score"] == pytest.approx(0.0, abs=1e-12)
    z = np.stack([ab[:, 0], ab[:, 0] + ab[:, 1]], axis=1).astype(float)
    v = np.var(ab[:, 0], ddof=1)
    r = M.unsupervised_scores(z)
    assert r["gaussian_total_correlation"] == pytest.approx(0.5 * LN2, abs=1e-10)
    w = 6 * v - 2 * v * np.sqrt(5 + 2 * np.sqrt(2))   # tr sqrtm([[1,1],[2,4]]) = sqrt(5 + 2 sqrt 2)
    assert r["gaussian_wasserstein_correlation"] == pytest.approx(w, abs=1e-7)
    assert r["gaussian_wasserstein_correlation_norm"] == pytest.approx(w / (3 * v), abs=1e-7)
    assert r["mutual_info_score"] == pytest.approx(0.5 * LN2, abs=1e-12)   # H(a) - H(a | a + b)


# ---- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [lambda c, f: M.mig(c, f), lambda c, f: M.irs(c, f),
                                lambda c, f: M.sap(c, f, c, f), lambda c, f: M.dci(c, f, c, f),
                                lambda c, f: M.modularity_explicitness(c, f, c, f)])
def test_bad_inputs_raise_clear_errors(fn):
    rng = np.random.default_rng(0)
    f = rng.integers(0, 3, size=(50, 2))
    c = rng.normal(size=(50, 3))
    with pytest.raises(ValueError, match="points"):
        fn(c[:40], f)
    for bad in (np.nan, np.inf):
        cb = c.copy()
        cb[3, 1] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            fn(cb, f)
    fs = f.copy()
    fs[:, 1] = 2
    with pytest.raises(ValueError, match="single value"):
        fn(c, fs)
    with pytest.raises(ValueError, match="at least"):
        fn(c[:1], f[:1])
    with pytest.raises(ValueError, match="2-D"):
        fn(c[:, 0], f)
    with pytest.raises(ValueError, match="integer"):
        fn(c, f + 0.5)


def test_other_bad_inputs():
    f = grid(2, 2, reps=5)
    c = f.astype(float)
    with pytest.raises(ValueError, match="backend"):
        M.dci(c, f, c, f, backend="xgboost")
    with pytest.raises(ValueError, match="at least 2 codes|code dimension"):
        M.mig(c[:, :1], f)
    with pytest.raises(ValueError, match="different values"):
        M.modularity_explicitness(c, f, c[f[:, 0] == 0], f[f[:, 0] == 0])
    with pytest.raises(ValueError, match="2 factors"):
        M.dci(c, f[:, :1], c, f[:, :1])
    with pytest.raises(ValueError, match="single value"):
        M.dci(c, np.stack([f[:, 0], 0 * f[:, 1]], axis=1), c, f)
    with pytest.raises(ValueError, match="dimension"):
        M.sap(c, f, c[:, :1], f)
