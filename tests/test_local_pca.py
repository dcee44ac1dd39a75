"""local_pca_alignment (fast path over distinct pixel columns) equals a per-anchor SVD reference."""
import numpy as np
import pytest

from varstruct import data
from varstruct.measures import grid
from varstruct.measures import local_geometry as lg


def reference(X, keep, d):
    """mean_j max_k |<u_k, d̂_j>| with u_k the top right singular vectors of the centred kept points."""
    out = []
    for x, kp, dd in zip(X.astype(np.float64), keep, d):
        xc = x[kp] - x[kp].mean(0)
        _, s, vt = np.linalg.svd(xc, full_matrices=False)
        k = min(len(dd), len(s))
        u = vt[:k][s[:k] ** 2 > lg.EIG_RTOL * s[0] ** 2]
        dn = np.linalg.norm(dd, axis=1)
        ok = dn > 0
        proj = np.abs(u @ (dd[ok] / dn[ok, None]).T)  # [k, K_ok]
        out.append(proj.max(0).mean() if ok.any() else np.nan)
    return np.array(out)


def test_random_with_repeated_columns():
    rng = np.random.default_rng(0)
    P, n, D, K = 6, 27, 40, 3
    base = rng.random((P, n, 9)).astype(np.float32)
    X = base[:, :, rng.integers(0, 9, D)]  # only 9 distinct columns among 40
    X[:, :, :3] = 0.5  # constant columns
    keep = rng.random((P, n)) > 0.2
    keep[:, n // 2] = True
    d = rng.standard_normal((P, K, D))
    d[0, 1] = 0.0  # a zero direction is skipped
    got = lg.local_pca_alignment(X, keep, d)
    np.testing.assert_allclose(got, reference(X, keep, d), atol=1e-9)
    np.testing.assert_allclose(got, lg.local_pca_alignment_dense(X, keep, d), atol=1e-9)
    d[1] = 0.0
    assert np.isnan(lg.local_pca_alignment(X, keep, d)[1])


def test_distinct_columns_exact():
    rng = np.random.default_rng(1)
    x = rng.random((5, 4)).astype(np.float32)[:, rng.integers(0, 4, 50)]
    rep, group = lg.distinct_columns(x)
    np.testing.assert_array_equal(x[:, rep[group]], x)
    assert len(rep) == len(np.unique(x, axis=1)[0])


@pytest.mark.parametrize("name", ["shapes3d", "dsprites"])
def test_dataset_neighbourhoods_equal_dense(name):
    ds = data.get(name)
    anchors = grid.sample_anchors(ds, 2, 0)
    ordered = [j for j, t in enumerate(ds.factor_types) if t != "categorical"]
    idx, keep = lg.pca_neighbourhood(anchors, ds.factor_sizes, ds.factor_types)
    X = grid.render_at(ds, idx).reshape(len(idx), idx.shape[1], -1)
    d = grid.factor_directions(ds, anchors, None, scheme="central")[:, ordered]
    # the dense computation (every pixel, every eigenpair of the Gram matrix) as the reference
    np.testing.assert_allclose(lg.local_pca_alignment(X, keep, d), lg.local_pca_alignment_dense(X, keep, d),
                               atol=1e-6)
