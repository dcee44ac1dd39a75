"""Model measures (docs/measures.md#model-measures) against closed forms on analytic encoders, finite differences
and per-sample autograd references."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import varstruct
from varstruct.measures import encoding, grid
from varstruct.measures.model import measure_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny images: one thread is fastest on a shared machine
SMALL = dict(n_variance=4000, n_decoder=50)


class Linear(torch.nn.Module):
    """mean = M · B (x − 0.5) (B: toy_linear's orthonormal basis), logvar = −5; decode(z) = z W B."""

    def __init__(self, ds, M, W=None):
        super().__init__()
        M = np.asarray(M, dtype=np.float64)
        self.register_buffer("B", torch.tensor(ds.basis))
        self.register_buffer("M", torch.tensor(M))
        self.register_buffer("W", torch.tensor(M.T if W is None else np.asarray(W, dtype=np.float64)))
        self.shape = (ds.image_shape[2],) + ds.image_shape[:2]

    def coefficients(self, x):
        return (x.reshape(len(x), -1) - 0.5) @ self.B.T

    def encode(self, x):
        mean = self.coefficients(x) @ self.M.T
        return mean, torch.full_like(mean, -5.0)

    def decode(self, z):
        return (z @ self.W.T @ self.B).reshape((len(z),) + self.shape)


def toy():
    return varstruct.datasets.get("toy_linear")


PERM = np.eye(3)[[2, 0, 1]]  # latent 0 <- factor 2, latent 1 <- factor 0, latent 2 <- factor 1


def slope(ds):
    """d_j = a_j / (n_j − 1) · b_j for toy_linear (central and one-sided differences agree)."""
    return ds.amplitudes / (ds.factor_sizes - 1.0)


def pop_var(ds):
    """Variance of a_j u_j(c_j) for c_j uniform on the grid: a_j² (n_j + 1) / (12 (n_j − 1))."""
    n = ds.factor_sizes.astype(float)
    return ds.amplitudes ** 2 * (n + 1) / (12 * (n - 1))


def rotation(seed=3, k=3):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(k, k)))
    return q * np.sign(np.diag(r))


# ---- permuted read-out of the coefficients --------------------------------------------------
@pytest.fixture(scope="module")
def permuted():
    ds = toy()
    return ds, measure_model(Linear(ds, PERM), ds, n_anchors=100, **SMALL)


def test_permuted_encoder_known_answers(permuted):
    ds, m = permuted
    assert set(m.dims) == {"anchor", "factor", "latent", "angle_bin"}
    A = 100
    np.testing.assert_array_equal(m["anchor_factors"].values, grid.sample_anchors(ds, A, 0))
    # encoding: factor j in latent argmax_l P[l, j], at every anchor
    want = PERM.argmax(0)
    assert (m["encoding_dim"].values == want[None]).all()
    np.testing.assert_array_equal(m["encoding_inconsistency"].values, 0.0)
    np.testing.assert_array_equal(m["encoding_entropy"].values, 0.0)
    assert float(m["encoding_collision"]) == 0.0
    np.testing.assert_allclose(m["encoding_purity"].values, 1.0, atol=1e-9)
    # jacobian response = |P e_j| a_j / (n_j − 1) (closed form) and = |P B d_j| with the grid's d_j
    jr = m["jacobian_response"].values
    np.testing.assert_allclose(jr, np.broadcast_to((PERM * slope(ds)[None]).T[None], jr.shape), rtol=1e-5, atol=1e-9)
    d = grid.factor_directions(ds, grid.sample_anchors(ds, A, 0))
    np.testing.assert_allclose(jr, np.abs(d @ ds.basis.T @ PERM.T), rtol=1e-6, atol=1e-9)
    # latent statistics: latent l reads factor π⁻¹(l)
    np.testing.assert_allclose(m["latent_variance"].values, PERM @ pop_var(ds), rtol=0.05)
    np.testing.assert_allclose(m["posterior_variance"].values, np.exp(-5.0))
    assert m["active"].values.all() and int(m["n_active"]) == 3
    # decoder = transpose: orthonormal Jacobian columns
    assert float(m["decoder_orthogonality"]) == pytest.approx(1.0, abs=1e-9)
    ang = m["decoder_angles"].values
    assert ang.shape == (18,) and ang[-1] == pytest.approx(1.0) and ang.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(m["angle_bin"].values, np.arange(0, 90, 5))
    # V is constant over anchors on toy_linear: no discordant anchor, so no effect is defined
    assert np.isnan(m["discordance_effect"].values).all()
    for k in ("dataset", "dataset_params", "n_anchors", "seed", "response", "n_variance", "n_decoder",
              "varstruct_version", "deterministic", "created", "command", "Conventions"):
        assert k in m.attrs
    assert m.attrs["deterministic"] == 0 and m.attrs["response"] == "traversal"
    assert float(m["encoding_inconsistency_mean"]) == 0.0


def test_same_seed_same_numbers_and_anchors_shared(permuted):
    ds, m = permuted
    m2 = measure_model(Linear(ds, rotation()), ds, n_anchors=100, **SMALL)
    np.testing.assert_array_equal(m2["anchor_factors"].values, m["anchor_factors"].values)
    threads = torch.get_num_threads()
    m3 = measure_model(Linear(ds, PERM), ds, n_anchors=100, threads=1, **SMALL)
    assert torch.get_num_threads() == threads  # the call's thread count is restored
    for v in m.data_vars:
        np.testing.assert_array_equal(m3[v].values, m[v].values)


# ---- rotated read-out ------------------------------------------------------------------------
def test_rotated_encoder_purity_and_orthogonality_closed_form():
    ds = toy()
    R = rotation()
    M = R @ PERM
    m = measure_model(Linear(ds, M), ds, n_anchors=40, n_variance=10000, n_decoder=50)
    Mc = M  # column j: how factor j's coefficient enters the latents
    # jacobian response: |M[:, j]| a_j/(n_j−1), purity max|M_lj| / Σ_l |M_lj| (exact)
    jac = np.abs(Mc) * slope(ds)[None]
    np.testing.assert_allclose(m["jacobian_response"].values, np.broadcast_to(jac.T[None], (40, 3, 3)), rtol=1e-5)
    mj = measure_model(Linear(ds, M), ds, n_anchors=40, response="jacobian", n_variance=2000, n_decoder=20)
    purity = np.abs(Mc).max(0) / np.abs(Mc).sum(0)
    np.testing.assert_allclose(mj["encoding_purity"].values, np.broadcast_to(purity, (40, 3)), rtol=1e-5)
    assert (mj["encoding_dim"].values == np.abs(Mc).argmax(0)[None]).all()
    # traversal response: M_lj² var_j / latvar_l, latvar_l = Σ_k M_lk² var_k (population variances)
    v = pop_var(ds)
    latvar = (Mc ** 2) @ v
    resp = (Mc ** 2) * v[None] / latvar[:, None]  # [l, j]
    np.testing.assert_allclose(m["traversal_response"].values, np.broadcast_to(resp.T[None], (40, 3, 3)), rtol=0.04)
    purity = resp.max(0) / resp.sum(0)
    np.testing.assert_allclose(m["encoding_purity"].values, np.broadcast_to(purity, (40, 3)), rtol=0.03)
    # the decoder is the transpose of an orthogonal map: orthogonal Jacobian
    assert float(m["decoder_orthogonality"]) == pytest.approx(1.0, abs=1e-9)


def test_sheared_decoder_orthogonality_and_angles():
    ds = toy()
    th = np.radians(32.0)
    W = np.array([[1, 0, 0], [np.cos(th), np.sin(th), 0], [0, 0, 1.0]]).T  # columns: decoder directions
    m = measure_model(Linear(ds, PERM, W=W), ds, n_anchors=5, n_variance=500, n_decoder=30)
    # C = cosines between columns: C01 = cos 32°, C02 = C12 = 0
    assert float(m["decoder_orthogonality"]) == pytest.approx(1 - np.cos(th) / 3, rel=1e-9)
    want = np.zeros(18)
    want[6], want[17] = 1 / 3, 2 / 3  # 32° in [30, 35); 90° in the closed last bin
    np.testing.assert_allclose(m["decoder_angles"].values, want, atol=1e-12)


# ---- an encoder that switches latents across the grid ----------------------------------------
class Split(Linear):
    """Factor 0 in latent 0 where factor 1's coefficient is < 0 and in latent 1 elsewhere;
    factors 1, 2 in latents 2, 3."""

    def encode(self, x):
        y = self.coefficients(x)
        m = (y[:, 1] < 0).to(y.dtype)
        mean = torch.stack([y[:, 0] * m, y[:, 0] * (1 - m), y[:, 1], y[:, 2]], 1)
        return mean, torch.full_like(mean, -5.0)

    def decode(self, z):
        return ((z[:, :1] + z[:, 1:2]) * self.B[0] + z[:, 2:3] * self.B[1] + z[:, 3:] * self.B[2]).reshape(
            (len(z),) + self.shape)


@pytest.mark.parametrize("response", ["traversal", "jacobian"])
def test_split_encoder_inconsistency_half(response):
    ds = toy()
    rng = np.random.default_rng(7)
    anchors = ds.sample_factors(60, rng)
    anchors[:30, 1] = rng.integers(0, 5, 30)   # coefficient of factor 1 < 0
    anchors[30:, 1] = rng.integers(5, 10, 30)  # > 0
    m = measure_model(Split(ds, np.eye(3)), ds, anchors=anchors, response=response, n_variance=2000, n_decoder=20)
    dim = m["encoding_dim"].values
    np.testing.assert_array_equal(dim[:, 0], np.r_[np.zeros(30), np.ones(30)])
    assert float(m["encoding_inconsistency"][0]) == 0.5
    assert float(m["encoding_entropy"][0]) == pytest.approx(np.log(2) / np.log(4))
    assert float(m["encoding_inconsistency"][2]) == 0.0 and float(m["encoding_entropy"][2]) == 0.0


def test_collision_two_factors_in_one_latent():
    ds = toy()
    M = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # factors 0 and 1 share latent 0
    for response in ("traversal", "jacobian"):
        m = measure_model(Linear(ds, M), ds, n_anchors=20, response=response, n_variance=1000, n_decoder=10)
        assert (m["encoding_dim"].values == [0, 0, 1]).all()
        assert float(m["encoding_collision"]) == pytest.approx(1 - 2 / 3)


# ---- discordance effect on toy_square (local order of brightness/position flips with size) ---
class SquareEncoder(torch.nn.Module):
    """Brightness in latent 0 for squares of side <= 5 and in latent 1 for larger ones; x-position
    (centre of mass) in latent 2, side in latent 3."""

    def encode(self, x):
        x = x[:, 0]
        mask = (x > 0.01).to(x.dtype)
        n = mask.sum((1, 2))
        side = n.sqrt()
        b = x.sum((1, 2)) / n
        cols = torch.arange(x.shape[2], dtype=x.dtype)
        xpos = (x.sum(1) * cols).sum(1) / x.sum((1, 2))
        small = (side < 5.5).to(x.dtype)
        mean = torch.stack([b * small, b * (1 - small), xpos, side], 1)
        return mean, torch.full_like(mean, -5.0)

    def decode(self, z):
        return z[:, :1, None, None].expand(len(z), 1, 32, 32) * 1.0


def test_discordance_effect_reference():
    ds = varstruct.datasets.get("toy_square")
    m = measure_model(SquareEncoder(), ds, n_anchors=200, seed=1, n_variance=1000, n_decoder=5)
    anchors = grid.sample_anchors(ds, 200, 1)
    jb = ds.factor_names.index("brightness")
    dim_b = np.where(ds.SIDES[anchors[:, 0]] <= 5, 0, 1)
    np.testing.assert_array_equal(m["encoding_dim"].values[:, jb], dim_b)
    # reference: local rank (0 = largest, ties by index) vs rank of the mean over anchors
    V = grid.traversal_variance(ds, anchors)
    G = V.mean(0)
    grank = [sorted(range(3), key=lambda k: (-G[k], k)).index(jb)]
    lrank = np.array([sorted(range(3), key=lambda k: (-row[k], k)).index(jb) for row in V])
    dis = lrank != grank[0]
    assert 10 <= dis.sum() <= 190
    mode = np.bincount(dim_b[~dis]).argmax()
    want = np.mean(dim_b[dis] != mode) - np.mean(dim_b[~dis] != mode)
    assert want > 0.3
    assert float(m["discordance_effect"][jb]) == pytest.approx(want)
    assert float(m["discordant_fraction"][jb]) == pytest.approx(dis.mean())


def test_ranks_ties_by_index():
    np.testing.assert_array_equal(encoding.ranks(np.array([[1.0, 3.0, 3.0, 0.0]])), [[2, 0, 1, 3]])


def test_discordance_needs_ten_per_side():
    V = np.tile([2.0, 1.0], (30, 1))
    V[:9] = [1.0, 2.0]  # 9 discordant anchors only
    dim = np.zeros((30, 2), dtype=np.int64)
    assert np.isnan(encoding.discordance_effect(dim, V)).all()
    V[:10] = [1.0, 2.0]
    dim[:10, 0] = 1
    np.testing.assert_allclose(encoding.discordance_effect(dim, V), [1.0, 0.0])


# ---- autograd against finite differences and per-sample references (float64) ---------------
class TinyConv(torch.nn.Module):
    """A small conv VAE on 16x16x1 with smooth activations and random weights."""

    deterministic = True

    def __init__(self, L=4):
        super().__init__()
        torch.manual_seed(0)
        self.L = L
        self.enc = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 4, 2, 1), torch.nn.SiLU(), torch.nn.Conv2d(8, 8, 4, 2, 1), torch.nn.SiLU(),
            torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 2 * L))
        self.dec = torch.nn.Sequential(torch.nn.Linear(L, 64), torch.nn.Tanh(), torch.nn.Linear(64, 256))

    def encode(self, x):
        h = self.enc(x)
        return h[:, :self.L] * 50.0, h[:, self.L:]

    def decode(self, z):
        return self.dec(z).reshape(len(z), 1, 16, 16)


@pytest.fixture(scope="module")
def tiny():
    ds = toy()
    model = TinyConv().double().eval()
    m = measure_model(model, ds, n_anchors=12, response="jacobian", n_variance=300, n_decoder=16)
    return ds, model, m


def test_jacobian_response_matches_finite_differences(tiny):
    ds, model, m = tiny
    anchors = grid.sample_anchors(ds, 12, 0)
    x = torch.tensor(ds.render(anchors), dtype=torch.float64).permute(0, 3, 1, 2)
    d = torch.tensor(grid.factor_directions(ds, anchors)).reshape(12, 3, 1, 16, 16)
    h = 1e-5
    fd = []
    with torch.no_grad():
        for j in range(3):
            fd.append((model.encode(x + h * d[:, j])[0] - model.encode(x - h * d[:, j])[0]) / (2 * h))
    fd = np.abs(torch.stack(fd, 1).numpy())
    assert fd.max() > 1e-3
    np.testing.assert_allclose(m["jacobian_response"].values, fd, rtol=1e-3, atol=1e-7)
    # and exactly the per-sample autograd Jacobian applied to d_j
    J = torch.stack([torch.autograd.functional.jacobian(lambda v: model.encode(v)[0][0], x[a:a + 1])[:, 0]
                     for a in range(12)])  # [A, L, 1, 16, 16]
    ref = np.abs(np.einsum("ald,akd->akl", J.reshape(12, 4, -1).numpy(), d.reshape(12, 3, -1).numpy()))
    np.testing.assert_allclose(m["jacobian_response"].values, ref, rtol=1e-9, atol=1e-12)


def test_decoder_orthogonality_matches_per_sample_jacobian(tiny):
    ds, model, m = tiny
    assert m.attrs["deterministic"] == 1 and np.isnan(m["posterior_variance"].values).all()
    _, images = ds.sample(300, np.random.default_rng([0, 2]))
    with torch.no_grad():
        z = model.encode(torch.tensor(images, dtype=torch.float64).permute(0, 3, 1, 2))[0]
    act = np.flatnonzero(z.var(0, unbiased=False).numpy() > 1e-4)
    np.testing.assert_array_equal(np.flatnonzero(m["active"].values), act)
    assert len(act) >= 2
    cos = []
    for n in range(16):
        J = torch.autograd.functional.jacobian(lambda v: model.decode(v[None])[0].reshape(-1), z[n], vectorize=True,
                                               strategy="forward-mode").detach().numpy()[:, act]
        J = J / np.linalg.norm(J, axis=0)
        C = J.T @ J
        cos.append(np.abs(C[np.triu_indices(len(act), 1)]))
    cos = np.array(cos)
    assert float(m["decoder_orthogonality"]) == pytest.approx(1 - cos.mean(1).mean(), rel=1e-9)
    hist = np.histogram(np.degrees(np.arccos(np.clip(cos.ravel(), 0, 1))), bins=np.arange(0, 91, 5))[0]
    np.testing.assert_allclose(m["decoder_angles"].values, hist / cos.size)


def test_chunking_does_not_change_results(tiny):
    ds, model, m = tiny
    small = measure_model(model, ds, n_anchors=12, response="jacobian", n_variance=300, n_decoder=16, batch_size=7)
    for v in m.data_vars:
        np.testing.assert_allclose(small[v].values, m[v].values, rtol=1e-10, atol=1e-12, err_msg=v)


def test_categorical_factor_has_nan_jacobian_response():
    ds = varstruct.datasets.get("toy_linear")
    ds.factors = (ds.factors[0], type(ds.factors[1])("f1", 10, "categorical"), ds.factors[2])
    m = measure_model(Linear(ds, PERM), ds, n_anchors=10, response="jacobian", n_variance=200, n_decoder=5)
    assert np.isnan(m["jacobian_response"].values[:, 1]).all()
    assert np.isfinite(m["jacobian_response"].values[:, [0, 2]]).all()
    assert (m["encoding_dim"].values[:, 1] == -1).all() and np.isnan(float(m["encoding_inconsistency"][1]))
    assert float(m["encoding_inconsistency_mean"]) == 0.0
    assert np.isfinite(m["traversal_response"].values).all()


# ---- bad input -------------------------------------------------------------------------------
def test_bad_input_raises_value_error():
    ds = toy()
    square = varstruct.datasets.get("toy_square")
    with pytest.raises(ValueError, match="cannot encode"):
        measure_model(Linear(ds, PERM), square, n_anchors=5, n_variance=100, n_decoder=5)
    model = Linear(ds, PERM)
    model.config = {"image_shape": [32, 32, 1]}
    with pytest.raises(ValueError, match="32x32x1"):
        measure_model(model, ds, n_anchors=5, n_variance=100, n_decoder=5)
    with pytest.raises(ValueError, match="response"):
        measure_model(Linear(ds, PERM), ds, response="both")
    with pytest.raises(ValueError, match="n_decoder"):
        measure_model(Linear(ds, PERM), ds, n_variance=100, n_decoder=200)
    with pytest.raises(ValueError, match="no encode"):
        measure_model(object(), ds)
    with pytest.raises(ValueError, match="threads"):
        measure_model(Linear(ds, PERM), ds, threads=0)


def test_netcdf_roundtrip(permuted, tmp_path):
    from varstruct.io import read_netcdf, write_netcdf

    _, m = permuted
    back = read_netcdf(write_netcdf(m, tmp_path / "measures.nc"))
    for v in m.data_vars:
        np.testing.assert_array_equal(back[v].values, m[v].values)
    assert back["active"].dtype == bool and back.attrs["response"] == "traversal"


# ---- CLI on a real model dir (a tiny trained run) ------------------------------------------
@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    from varstruct import training

    out = tmp_path_factory.mktemp("real") / "run"
    return training.train(dict(dataset="toy_linear", method="beta_vae", steps=20, batch_size=32, latent_dim=4,
                               out=str(out)))


def test_cli_real_model_dir(real_run, capsys):
    from varstruct.cli.app import main
    from varstruct.io import read_netcdf

    assert main(["measure", "model", str(real_run), "--anchors", "30", "--seed", "3", "--response", "jacobian",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "discordance effect" in out and "decoder_orthogonality" in out
    m = read_netcdf(real_run / "measures.nc")
    assert m.sizes["latent"] == 4 and m.attrs["dataset"] == "toy_linear" and m.attrs["response"] == "jacobian"
    assert m.sizes["anchor"] == 30 and m.attrs["seed"] == 3 and m.attrs["command"].startswith("varstruct")
    assert np.isfinite(m["jacobian_response"].values).all()
    assert [p.name for p in real_run.iterdir() if p.name.startswith(".")] == [".lock"]  # no temp files


@pytest.mark.parametrize("case", ["no_weights", "no_dir", "shape", "response"])
def test_cli_real_model_dir_bad_input(real_run, tmp_path, capsys, case):
    import json
    import shutil

    from varstruct.cli.app import main

    run = tmp_path / "run"
    args = ["measure", "model", str(run), "--anchors", "5"]
    if case != "no_dir":
        shutil.copytree(real_run, run)
        (run / "measures.nc").unlink(missing_ok=True)
    if case == "no_weights":
        (run / "model.safetensors").unlink()
    elif case == "shape":  # a 16x16 model pointed at a 32x32 dataset
        cfg = json.loads((run / "config.json").read_text())
        cfg["dataset"] = "toy_square"
        (run / "config.json").write_text(json.dumps(cfg))
    elif case == "response":
        args += ["--response", "both"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    assert not (run / "measures.nc").exists()


def test_encoding_helpers_edge_cases():
    R = np.array([[[0.0, 0.0, 0.0], [1.0, 3.0, 3.0], [np.nan, np.nan, np.nan]]])  # [1, 3, 3]
    np.testing.assert_array_equal(encoding.encoding_dim(R), [[-1, 1, -1]])  # ties -> lowest latent
    np.testing.assert_allclose(encoding.encoding_purity(R), [[np.nan, 3 / 7, np.nan]])
    dim = np.array([[0, 0, 1], [0, 1, -1], [-1, -1, -1]])
    np.testing.assert_allclose(encoding.encoding_collision(dim), ((1 - 2 / 3) + (1 - 2 / 2)) / 2)
    np.testing.assert_allclose(encoding.encoding_entropy(dim, 1), [0.0, 0.0, 0.0])
    assert np.isnan(encoding.encoding_entropy(dim, 0)).all()
    assert np.isnan(encoding.decoder_orthogonality(np.ones((4, 1, 1))))
    assert np.isnan(encoding.decoder_angles(np.ones((4, 1, 1)))).all()


# ---- encoding_dependence: along which axis one factor's encoding switches -----------------
def test_encoding_dependence_closed_forms():
    import itertools

    from varstruct.measures.encoding import UNDEFINED, encoding_dependence

    sizes = (8, 8, 8)
    grid = np.array(list(itertools.product(range(8), range(8), range(8))))
    e = (grid[:, 2] >= 4).astype(int) + 3          # switches along the third axis only
    U, p = encoding_dependence(e, grid, sizes, bins=4, n_permutations=199)
    np.testing.assert_allclose(U, [0.0, 0.0, 1.0], atol=1e-12)   # balanced grid: I = 0 exactly off-axis
    assert p[2] == pytest.approx(1 / 200) and p[0] > 0.5 and p[1] > 0.5
    # two axes: e = [c0 >= 4] xor [c1 >= 4] is independent of each axis alone (a checkerboard)
    x = ((grid[:, 0] >= 4) ^ (grid[:, 1] >= 4)).astype(int)
    np.testing.assert_allclose(encoding_dependence(x, grid, sizes, n_permutations=9)[0], [0, 0, 0], atol=1e-12)
    # e = latent of c0's half, 4 values per bin of 2 -> with bins=2, U_0 = 1; H(e) = 1 bit
    U2, _ = encoding_dependence((grid[:, 0] >= 4).astype(int), grid, sizes, bins=2, n_permutations=9)
    assert U2[0] == pytest.approx(1.0)
    # a consistent encoding has no switches; undefined anchors are left out
    Uc, pc = encoding_dependence(np.full(len(grid), 2), grid, sizes, n_permutations=9)
    assert np.isnan(Uc).all() and np.isnan(pc).all()
    e_und = e.copy()
    e_und[:10] = UNDEFINED
    Uu, _ = encoding_dependence(e_und, grid, sizes, n_permutations=9)
    assert Uu[2] == pytest.approx(1.0)
    # a factor with fewer values than bins keeps its own values; seeded p-values repeat
    small = np.c_[grid[:, :2], grid[:, 2] % 2]
    U3, p3 = encoding_dependence((small[:, 2] == 1).astype(int), small, (8, 8, 2), bins=4, n_permutations=49, seed=3)
    assert U3[2] == pytest.approx(1.0)
    np.testing.assert_array_equal(p3, encoding_dependence((small[:, 2] == 1).astype(int), small, (8, 8, 2), bins=4,
                                                           n_permutations=49, seed=3)[1])
