"""Dataset measures (docs/measures.md#dataset-measures) against known answers
(docs/measures.md#known-answer-fixtures): expected values are computed
here from closed forms or hand-worked examples, never from measure_dataset's own output."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import varstruct
from varstruct import datasets
from varstruct.data.base import Factor, FactorDataset
from varstruct.measures import local_geometry as lg
from varstruct.measures import variance_stats as vs

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny images: one thread is fastest on a shared machine
ALL_VARS = {
    "traversal_variance": ("anchor", "factor"), "step_variance": ("anchor", "factor"),
    "global_variance": ("factor",), "variance_share": ("factor",), "global_rank": ("factor",),
    "variance_cv": ("factor",), "variance_dependence": ("factor", "factor2"),
    "order_inversion": ("factor", "factor2"), "local_global_discrepancy": (),
    "local_global_discrepancy_tau": (), "factor_discrepancy": ("factor",), "near_degeneracy": (),
    "factor_near_degeneracy": ("factor",), "direction_consistency": ("factor",),
    "local_nonorthogonality": (), "local_pca_alignment": ("pca_anchor",),
}


def assert_same_result(a, b):
    """Identical results up to the creation time (provenance attrs ``created`` and ``history``)."""
    a, b = a.copy(), b.copy()
    for r in (a, b):
        r.attrs = {k: v for k, v in r.attrs.items() if k not in ("created", "history")}
    xr.testing.assert_identical(a, b)


def eta_squared(y, groups):
    """Reference η²: between-group sum of squares over total sum of squares."""
    y = np.asarray(y, float)
    tot = ((y - y.mean()) ** 2).sum()
    between = sum((groups == g).sum() * (y[groups == g].mean() - y.mean()) ** 2 for g in np.unique(groups))
    return between / tot


def inversion_fraction(Vi, Vj):
    """Reference order inversion of one pair from per-anchor variances."""
    Gi, Gj = Vi.mean(), Vj.mean()
    return np.mean(Vi < Vj) if Gi > Gj else np.mean(Vj < Vi)


# ---- toy_linear ----------------------------------------------------------------------------
AMPS, SIZES, SIDE = (2.0, 1.9, 0.8), (6, 6, 10), 12


@pytest.fixture(scope="module")
def linear():
    ds = datasets.get("toy_linear", amplitudes=list(AMPS), sizes=list(SIZES), side=SIDE)
    return ds, varstruct.measure_dataset(ds, n_anchors=150, seed=1, n_pca_anchors=60)


def test_result_layout(linear):
    ds, m = linear
    assert set(ALL_VARS) <= set(m.data_vars)
    for k, dims in ALL_VARS.items():
        assert m[k].dims == dims, k
    assert list(m.factor.values) == ds.factor_names == list(m.factor2.values)
    assert m.anchor_factors.dims == ("anchor", "factor") and m.sizes["anchor"] == 150 and m.sizes["pca_anchor"] == 60
    for key in ("dataset", "dataset_params", "n_anchors", "seed", "freeze_nuisance", "delta", "n_pca_anchors",
                "varstruct_version", "created", "command", "Conventions", "image_shape"):
        assert key in m.attrs, key
    assert m.attrs["dataset"] == "toy_linear" and m.attrs["seed"] == 1 and m.attrs["delta"] == 0.1


def test_toy_linear_closed_form(linear):
    ds, m = linear
    a, n, D = np.array(AMPS), np.array(SIZES, float), SIDE * SIDE
    V = a ** 2 * (n + 1) / (12 * (n - 1) * D)  # x = Σ a_j u_j b_j, u_j linear in the index
    np.testing.assert_allclose(m.traversal_variance, np.broadcast_to(V, (150, 3)), rtol=1e-5)
    np.testing.assert_allclose(m.global_variance, V, rtol=1e-5)
    np.testing.assert_allclose(m.variance_share, V / V.sum(), rtol=1e-5)
    assert m.global_rank.values.tolist() == [0, 1, 2]
    np.testing.assert_allclose(m.variance_cv, 0, atol=1e-6)
    # a step of one index moves coefficient j by a_j / (n_j − 1) along the unit image b_j
    np.testing.assert_allclose(m.step_variance, np.broadcast_to(a ** 2 / ((n - 1) ** 2 * D), (150, 3)), rtol=1e-4)
    oi = m.order_inversion.values
    assert np.isnan(np.diag(oi)).all() and np.all(oi[~np.eye(3, dtype=bool)] == 0)
    assert m.local_global_discrepancy == 0 and m.local_global_discrepancy_tau == 0
    np.testing.assert_array_equal(m.factor_discrepancy, 0)
    np.testing.assert_allclose(m.direction_consistency, 1, atol=1e-6)
    assert abs(float(m.local_nonorthogonality)) < 1e-9
    np.testing.assert_allclose(m.local_pca_alignment, 1, atol=1e-6)
    r = np.abs(V[:, None] - V[None]) / (V[:, None] + V[None])
    iu = np.triu_indices(3, 1)
    assert float(m.near_degeneracy) == pytest.approx(np.mean(r[iu] < 0.1))  # f0 vs f1: r ≈ 0.05
    np.fill_diagonal(r, np.inf)
    np.testing.assert_allclose(m.factor_near_degeneracy, r.min(axis=1), rtol=1e-4)


# ---- toy_square ----------------------------------------------------------------------------
SIDES, BRIGHT, CANVAS, NPOS = np.arange(3, 9), np.linspace(0.3, 1.0, 8), 32, 20


def square_variance(anchors):
    """Closed-form V [A, 3] of toy_square from pixel coverage counts (D = 32²)."""
    D = CANVAS * CANVAS
    s, b = SIDES[anchors[:, 0]].astype(float), BRIGHT[anchors[:, 2]]
    # size: pixel at offset (dr, dc) from the top-left corner is lit by sides > max(dr, dc)
    off = np.maximum.outer(np.arange(8), np.arange(8))
    q = (SIDES[None, None, :] > off[..., None]).mean(-1)
    v_size = b ** 2 * (q * (1 - q)).sum() / D
    # xpos: in each of the s lit rows, column col is lit by x0 in (col − s, col]
    cols = np.arange(CANVAS)
    qx = ((cols[None, :, None] >= np.arange(NPOS)[None, None, :])
          & (cols[None, :, None] < np.arange(NPOS)[None, None, :] + SIDES[:, None, None])).mean(-1)  # [6, 32]
    v_x = s * b ** 2 * (qx * (1 - qx)).sum(-1)[anchors[:, 0]] / D
    # brightness: s² pixels each with the variance of the 8 levels
    v_b = s ** 2 * BRIGHT.var() / D
    return np.stack([v_size, v_x, v_b], axis=1)


@pytest.fixture(scope="module")
def square():
    ds = datasets.get("toy_square")
    return ds, varstruct.measure_dataset(ds, n_anchors=400, seed=2, n_pca_anchors=20)


def test_toy_square_closed_form(square):
    ds, m = square
    anchors = m.anchor_factors.values
    V = square_variance(anchors)
    np.testing.assert_allclose(m.traversal_variance, V, rtol=1e-5)
    G = V.mean(0)
    np.testing.assert_allclose(m.global_variance, G, rtol=1e-5)
    np.testing.assert_allclose(m.variance_cv, V.std(0) / G, rtol=1e-4)
    assert np.all(m.variance_cv > 0.3)
    # log V_brightness = 2 log s + const: entirely explained by size
    eta = eta_squared(np.log(V[:, 2] + 1e-12), anchors[:, 0])
    assert eta == pytest.approx(1.0)
    assert float(m.variance_dependence.sel(factor="brightness", factor2="size")) == pytest.approx(eta, abs=1e-6)
    assert float(m.variance_dependence.sel(factor="xpos", factor2="size")) == pytest.approx(
        eta_squared(np.log(V[:, 1] + 1e-12), anchors[:, 0]), abs=1e-6)
    # no closed-form V pair lies within rounding distance of a tie, so inversions are exact
    gaps = np.abs(V[:, :, None] - V[:, None, :]) / V[:, :, None]
    assert gaps[:, ~np.eye(3, dtype=bool)].min() > 1e-4
    for i in range(3):
        for j in range(3):
            if i != j:
                assert m.order_inversion.values[i, j] == pytest.approx(inversion_fraction(V[:, i], V[:, j]))
    expected = np.mean([inversion_fraction(V[:, i], V[:, j]) for i in range(3) for j in range(3) if i != j])
    assert expected > 0.05 and float(m.local_global_discrepancy) == pytest.approx(expected)
    assert 0 < float(m.local_global_discrepancy_tau) < 1


# ---- toy_blobs -------------------------------------------------------------------------------
def blobs_variance(anchors, r, profile, spread, a):
    """Closed-form V [A, 2] of toy_blobs from its definition x = ½ + a v_A g_A + a r ρ(t_A) v_B g_B
    (σ = 2, radius 4, 24 levels, ρ(t) = spread^(2t−1), no normalisation)."""
    yy, xx = np.mgrid[0:16, 0:16].astype(float)
    g = []
    for cy, cx in ((7.5, 3.5), (7.5, 11.5)):
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        g.append(np.where(d2 <= 16, np.exp(-d2 / 8), 0.0))
    gA2, gB2 = (g[0] ** 2).sum(), (g[1] ** 2).sum()
    v = np.linspace(-0.5, 0.5, 24)
    rho = r * spread ** (2 * np.arange(24) / 23 - 1)
    # A's traversal moves v_A and also B's amplitude ρ(t_A); B's moves v_B at amplitude ρ(t_A)
    VA = a ** 2 * (gA2 * v.var() + v[anchors[:, 1]] ** 2 * gB2 * rho.var()) / 256
    VB = a ** 2 * rho[anchors[:, 0]] ** 2 * gB2 * v.var() / 256
    return np.stack([VA, VB], axis=1)


@pytest.mark.parametrize("profile,r", [("none", 2.0), ("flip", 1.0), ("noflip", 2.0)])
def test_toy_blobs_inversions(profile, r):
    ds = datasets.get("toy_blobs", r=r, profile=profile)
    m = varstruct.measure_dataset(ds, n_anchors=300, seed=0, n_pca_anchors=10)
    V = blobs_variance(m.anchor_factors.values, r, profile, ds.params["spread"], 0.4)
    np.testing.assert_allclose(m.traversal_variance, V, rtol=1e-4)
    oi = float(m.order_inversion[0, 1])
    assert oi == pytest.approx(inversion_fraction(V[:, 0], V[:, 1]))
    if profile == "flip":
        assert oi > 0.2 and float(m.local_global_discrepancy) == pytest.approx(oi)
    else:
        assert oi == 0 and float(m.local_global_discrepancy_tau) == 0


# ---- hand-made V -------------------------------------------------------------------------------
def test_kendall_tau_b_matches_scipy():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(200, 6)).astype(float)  # many ties
    y = np.array([3.0, 1.0, 1.0, 2.0, 5.0, 0.5])
    tau = vs.kendall_tau_b(X, y)
    for a in range(200):
        ref = stats.kendalltau(X[a], y).statistic
        if np.isnan(ref):
            assert np.isnan(tau[a])
        else:
            assert tau[a] == pytest.approx(ref, abs=1e-12)


def test_tau_discrepancy_hand_made():
    V = np.array([[3.0, 2.0, 1.0], [3.0, 1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    # G = [7/4, 5/4, 6/4]: order f0 > f2 > f1. τ: row0 (C, C, D) = 1/3, row1 (C, C, C) = 1,
    # row3 (D, D, C) = −1/3; the all-zero row2 is skipped -> mean τ = 1/3.
    assert vs.local_global_discrepancy_tau(V) == pytest.approx((1 - 1 / 3) / 2)
    # a tie in a row: [2, 2, 1] vs G = [1, 2, 0] -> (tied, C, C): τ_b = 2 / sqrt(2 · 3)
    assert vs.kendall_tau_b([[2.0, 2.0, 1.0]], [1.0, 2.0, 0.0])[0] == pytest.approx(2 / np.sqrt(6))


def test_variance_dependence_hand_made():
    y = np.array([1.0, 3.0, 5.0, 7.0, 2.0, 2.0])
    other = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    V = np.stack([np.exp(y) - 1e-12, other], axis=1)
    anchors = np.array([[0, 0], [0, 0], [1, 1], [1, 1], [2, 2], [2, 2]])
    eta = vs.variance_dependence(V, anchors, [3, 3])
    # group means 2, 6, 2 around 10/3: SS_between = 192/9, SS_total = 228/9
    assert eta[0, 1] == pytest.approx(16 / 19)
    assert np.isnan(eta[0, 0]) and np.isnan(eta[1, 1])
    # a value of c_k with a single anchor -> NaN for the whole column
    anchors2 = np.array([[0, 0], [0, 0], [1, 1], [1, 1], [2, 1], [2, 2]])
    assert np.isnan(vs.variance_dependence(V, anchors2, [3, 3])[0, 1])
    # a value of c_k with no anchor at all -> NaN as well
    assert np.isnan(vs.variance_dependence(V, anchors, [3, 4])[0, 1])


def test_order_inversion_hand_made():
    V = np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0], [2.0, 2.0, 2.0], [3.0, 0.0, 1.0]])
    # G = [2.25, 1.5, 1.75]; each pair is inverted only at anchor 1; local ties don't count
    oi = vs.order_inversion(V)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(oi[off], 0.25)
    assert np.isnan(np.diag(oi)).all()
    assert vs.local_global_discrepancy(oi) == pytest.approx(0.25)
    np.testing.assert_allclose(vs.factor_discrepancy(oi), 0.25)
    tie = vs.order_inversion(np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0]]))  # G0 == G1 exactly
    assert np.isnan(tie[0, 1]) and np.isnan(tie[1, 0]) and tie[0, 2] == 0
    assert vs.factor_discrepancy(tie)[0] == 0  # the tied pair is skipped


def test_near_degeneracy_hand_made():
    V = np.array([[1.0, 1.1, 3.0], [0.0, 0.0, 1.0]])
    assert vs.near_degeneracy(V, 0.1) == pytest.approx(2 / 6)  # (a0: f0,f1) and (a1: both zero)
    r01 = 0.1 / 2.1
    np.testing.assert_allclose(vs.factor_near_degeneracy(V), [r01 / 2, r01 / 2, (1.9 / 4.1 + 1.0) / 2])


def test_variance_share_rank_cv():
    V = np.array([[1.0, 2.0, 0.0, 2.0], [3.0, 2.0, 0.0, 2.0]])
    G = vs.global_variance(V)
    np.testing.assert_allclose(vs.variance_share(G), np.array([2, 2, 0, 2]) / 6)
    assert vs.global_rank(G).tolist() == [0, 1, 3, 2]  # ties broken by factor index
    cv = vs.variance_cv(V)
    assert cv[0] == pytest.approx(0.5) and cv[1] == 0 and np.isnan(cv[2])


# ---- local geometry by hand ----------------------------------------------------------------------
def test_pca_neighbourhood_clips_wraps_and_dedups():
    idx, keep = lg.pca_neighbourhood(np.array([[0, 3, 1]]), [5, 4, 3], ["ordinal", "circular", "categorical"])
    assert idx.shape == (1, 9, 3)
    pts = {tuple(p) for p in idx[0][keep[0]]}
    assert len(pts) == keep.sum() == 6
    assert pts == {(a, b, 1) for a in (0, 1) for b in (2, 3, 0)}
    _, keep2 = lg.pca_neighbourhood(np.array([[1, 0]]), [2, 2], ["circular", "ordinal"])  # size-2 wrap
    assert keep2.sum() == 4


def test_local_pca_alignment_hand_made():
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(20, 20)))[0]
    u, w = Q[:, 0], Q[:, 1]
    grid = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], float)
    X = (3 * grid[:, :1] * u + 1 * grid[:, 1:] * w + Q[:, 5])[None]  # principal axes u (var 6), w (var 2/3)
    d = np.stack([2 * u, (u + w)])[None]  # d_0 along u; d_1 at 45° between u and w
    out = lg.local_pca_alignment(X, np.ones((1, 9), bool), d)
    assert out[0] == pytest.approx((1 + 1 / np.sqrt(2)) / 2)
    d0 = np.stack([u, np.zeros(20)])[None]  # zero-norm direction skipped
    assert lg.local_pca_alignment(X, np.ones((1, 9), bool), d0)[0] == pytest.approx(1.0)


def test_direction_consistency_and_nonorthogonality_hand_made():
    e = np.eye(4)
    d = np.stack([np.stack([e[0], e[0] + e[1]]), np.stack([e[1], -e[0] - e[1]])])  # [A=2, K=2, D=4]
    # factor 0: mean (e0+e1)/2, norm √2/2, mean norm 1; factor 1: mean 0
    np.testing.assert_allclose(lg.direction_consistency(d), [np.sqrt(2) / 2, 0.0], atol=1e-12)
    # |cos| = 1/√2 at both anchors
    assert lg.local_nonorthogonality(d, [0, 1]) == pytest.approx(1 / np.sqrt(2))
    d[1, 1] = 0  # zero-norm pair skipped
    assert lg.local_nonorthogonality(d, [0, 1]) == pytest.approx(1 / np.sqrt(2))


# ---- nuisances -----------------------------------------------------------------------------
class NoisyLinear(FactorDataset):
    """0.8 · toy_linear + 0.2 · U(0, 1) noise image: the noise image is the nuisance."""

    name = "noisy_linear_test"
    has_nuisance = True

    def __init__(self):
        self.base = datasets.get("toy_linear", amplitudes=[2.0, 1.0], sizes=[10, 5], side=16)
        self.factors, self.image_shape, self.params = self.base.factors, self.base.image_shape, {}

    def sample_nuisance(self, n, rng=None):
        return np.random.default_rng(rng).random((int(n),) + self.image_shape, dtype=np.float32)

    def _render(self, idx, nuisance):
        return 0.8 * self.base.render(idx) + 0.2 * np.asarray(nuisance, np.float32)


def test_nuisance_freeze_semantics():
    ds = NoisyLinear()
    n = ds.factor_sizes.astype(float)
    V_clean = ds.base.closed_form_variance()
    frozen = varstruct.measure_dataset(ds, n_anchors=200, seed=0, n_pca_anchors=10)
    np.testing.assert_allclose(frozen.traversal_variance, np.broadcast_to(0.64 * V_clean, (200, 2)), rtol=1e-4)
    np.testing.assert_allclose(frozen.direction_consistency, 1, atol=1e-4)
    fresh = varstruct.measure_dataset(ds, n_anchors=200, seed=0, freeze_nuisance=False, n_pca_anchors=10)
    # independent noise per image adds 0.2² Var(U) (n−1)/n per pixel (ddof-0 variance over n images)
    excess = fresh.global_variance.values - 0.64 * V_clean
    np.testing.assert_allclose(excess, 0.04 / 12 * (n - 1) / n, rtol=0.03)
    again = varstruct.measure_dataset(ds, n_anchors=200, seed=0, freeze_nuisance=False, n_pca_anchors=10)
    assert_same_result(fresh, again)
    assert frozen.attrs["freeze_nuisance"] == 1 and fresh.attrs["freeze_nuisance"] == 0


def test_noisy_dsprites_freeze():
    """image = min(sprite + U, 1): with the noise frozen a changing pixel moves by (1 − U), so
    E[V_noisy] = V_dsprites · E[(1 − U)²] = V_dsprites / 3 (every channel alike); fresh noise
    adds about Var(U)(n_j − 1)/n_j on the (mostly background) pixels."""
    kw = dict(n_anchors=10, seed=0, n_pca_anchors=0)
    clean = varstruct.measure_dataset(datasets.get("dsprites"), **kw)
    noisy = datasets.get("noisy_dsprites")
    frozen = varstruct.measure_dataset(noisy, **kw)
    np.testing.assert_array_equal(frozen.anchor_factors, clean.anchor_factors)
    np.testing.assert_allclose(frozen.global_variance, clean.global_variance / 3, rtol=0.05)
    fresh = varstruct.measure_dataset(noisy, freeze_nuisance=False, **kw)
    n = noisy.factor_sizes.astype(float)
    ratio = (fresh.global_variance - frozen.global_variance).values / ((n - 1) / n / 12)
    assert np.all((ratio > 0.85) & (ratio < 1.05)), ratio


# ---- determinism and validation -------------------------------------------------------------
def test_same_seed_same_numbers(square):
    ds, m = square
    again = varstruct.measure_dataset(ds, n_anchors=400, seed=2, n_pca_anchors=20)
    assert_same_result(m, again)
    other = varstruct.measure_dataset(ds, n_anchors=400, seed=3, n_pca_anchors=20)
    assert not np.array_equal(other.anchor_factors, m.anchor_factors)


@pytest.mark.parametrize("kw", [dict(n_anchors=0), dict(n_anchors=2.5), dict(seed=-1), dict(delta=0),
                                dict(n_pca_anchors=-1)])
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        varstruct.measure_dataset(datasets.get("toy_square"), **kw)


def test_exports():
    from varstruct.measures import measure_dataset
    assert measure_dataset is varstruct.measure_dataset


# ---- CLI -------------------------------------------------------------------------------------
def run_cli(args):
    from varstruct.cli.app import main
    return main(args)


def test_cli_success(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = run_cli(["measure", "dataset", "toy_blobs", "--anchors", "80", "--seed", "1", "-p", "profile=flip",
                  "-p", "r=3", "-p", "amplitude=0.05"])
    out = capsys.readouterr().out
    assert rc == 0
    path = tmp_path / "toy_blobs_measures.nc"
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]
    from varstruct.io import read_netcdf
    m = read_netcdf(path)
    assert set(ALL_VARS) <= set(m.data_vars) and m.sizes["anchor"] == 80 and m.attrs["seed"] == 1
    assert "flip" in m.attrs["dataset_params"]
    ref = varstruct.measure_dataset(datasets.get("toy_blobs", profile="flip", r=3, amplitude=0.05), n_anchors=80, seed=1)
    np.testing.assert_allclose(m.traversal_variance, ref.traversal_variance)
    for word in ("A", "B", "local_global_discrepancy", "share", "dir.cons"):
        assert word in out


def _bad(args, tmp_path, capsys):
    rc = run_cli(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert not any(p.suffix == ".nc" or p.name.startswith(".") for p in tmp_path.iterdir())
    return err


def test_cli_bad_input(tmp_path, capsys):
    out = str(tmp_path / "m.nc")
    assert "nope" in _bad(["measure", "dataset", "nope", "--out", out], tmp_path, capsys)
    assert "--anchors" in _bad(["measure", "dataset", "toy_square", "--anchors", "0", "--out", out], tmp_path, capsys)
    assert "missing" in _bad(["measure", "dataset", "toy_square", "--out", str(tmp_path / "missing" / "m.nc")],
                             tmp_path, capsys)
    assert "q" in _bad(["measure", "dataset", "toy_square", "-p", "q=1", "--out", out], tmp_path, capsys)
    assert "data-file" in _bad(["measure", "dataset", "dsprites", "--data-file", str(tmp_path / "none.npz"),
                                "--out", out], tmp_path, capsys)
    assert list(tmp_path.iterdir()) == []


def test_cli_corrupt_data_file(tmp_path, capsys):
    bad = tmp_path / "dsprites.npz"
    bad.write_bytes(b"this is not a zip archive at all" * 10)
    out = tmp_path / "m.nc"
    _bad(["measure", "dataset", "dsprites", "--data-file", str(bad), "--out", str(out)], tmp_path, capsys)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["dsprites.npz"]
