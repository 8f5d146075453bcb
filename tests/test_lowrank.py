"""Papers B and C: metrics with known answers, data generators, the bound of
paper B as an identity, the invariance of paper C under gradient flow, short runs of both jobs, and
the config sections. (The verdicts of claims B1-C3 are tested in test_lowrank_claims.)"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from staircase.claims import lowrank as claims
from staircase.claims import verdicts
from staircase.core import linalg
from staircase.networks.bias_free import BiasFreeNet
from staircase.problems import datasets as data
from staircase.training import alignment, collapse, weights_run
from staircase.workflow import config as cfgmod
from staircase.workflow import lowrank_settings as lrsettings

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("single_blas_thread")


def orthonormal(rng, n, k):
    q, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return q


# ---- linear algebra with known answers --------------------------------------------------------


def test_distance_to_rank_of_a_constructed_matrix():
    rng = np.random.default_rng(0)
    s = np.array([5.0, 3.0, 2.0, 0.4, 0.3])
    w = orthonormal(rng, 8, 5) @ np.diag(s) @ orthonormal(rng, 6, 5).T
    sv = linalg.singular_values(w)
    np.testing.assert_allclose(sv[:5], s, rtol=1e-12)
    assert linalg.distance_to_rank(sv, 3) == pytest.approx(0.5, rel=1e-12)  # sqrt(0.4^2 + 0.3^2)
    assert linalg.distance_to_rank(sv, 3, relative=True) == pytest.approx(0.5 / np.linalg.norm(s), rel=1e-12)
    # Eckart-Young: the truncated SVD is that far away
    u, sig, vt = np.linalg.svd(w)
    assert np.linalg.norm(w - (u[:, :3] * sig[:3]) @ vt[:3]) == pytest.approx(0.5, rel=1e-12)
    assert linalg.distance_to_rank(sv, 5) == pytest.approx(0.0, abs=1e-12)


def test_rank_metrics_of_a_constructed_spectrum():
    s = np.array([[3.0, 2.0, 1.0, 1e-5], [1.0, 1.0, 1.0, 1.0]])
    m = linalg.rank_metrics(s, rtol=1e-3)
    np.testing.assert_array_equal(m["numerical_rank"], [3, 4])
    np.testing.assert_allclose(m["stable_rank"], [(9 + 4 + 1 + 1e-10) / 9, 4.0])
    assert m["effective_rank"][1] == pytest.approx(4.0)


def test_within_class_of_constructed_clusters():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 4)
    means = rng.standard_normal((3, 5)) * 3
    tight = linalg.within_class(means[y], y, 3)
    assert tight["within_class"] == pytest.approx(0.0, abs=1e-12)
    assert tight["nc1"] == pytest.approx(0.0, abs=1e-12)
    noise = rng.standard_normal((12, 5))
    noise -= linalg.class_means(noise, y, 3)[y]  # zero mean per class: M is exactly the means
    wc = linalg.within_class(means[y] + noise, y, 3)
    assert wc["within_class"] == pytest.approx(np.linalg.norm(noise), rel=1e-12)
    assert wc["within_class_rel"] == pytest.approx(np.linalg.norm(noise) / np.linalg.norm(means[y] + noise))
    assert wc["nc1"] > 0


def test_alignment_of_aligned_and_orthogonal_matrices():
    rng = np.random.default_rng(2)
    u, p, q = rng.standard_normal(6), rng.standard_normal(4), rng.standard_normal(3)
    w_k = 3.0 * np.outer(u, p)  # (6, 4): top left singular vector u / |u|
    w_k1 = np.outer(q, u)  # (3, 6): top right singular vector u / |u|
    assert linalg.top_alignment(w_k, w_k1) == pytest.approx(1.0, abs=1e-12)
    v = rng.standard_normal(6)
    v -= v @ u / (u @ u) * u
    assert linalg.top_alignment(w_k, np.outer(q, v)) == pytest.approx(0.0, abs=1e-12)
    # batched
    assert linalg.top_alignment(np.stack([w_k, w_k]), np.stack([w_k1, np.outer(q, v)])) == pytest.approx(
        [1, 0], abs=1e-12
    )


def test_invariance_drift_relative_to_scale():
    d0 = np.zeros((2, 2))
    d1 = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = linalg.invariance_drift(d1, d0, 10.0)
    assert out["drift_full"] == pytest.approx(0.5)
    assert out["drift_diag"] == pytest.approx(0.3)
    w_k, w_k1 = np.eye(3)[:2], np.ones((1, 2))
    np.testing.assert_allclose(linalg.invariance(w_k, w_k1), np.ones((2, 2)) - np.eye(2))


# ---- data -------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 12), st.floats(0.0, 1.5), st.integers(0, 1000))
def test_separable_gaussian_has_the_margin(dim, margin, seed):
    x, y = data.separable_gaussian(dim=dim, points=50, margin=margin, seed=seed)
    w = data.separating_direction(dim, seed)
    assert x.shape == (50, dim)
    assert np.all(np.abs(x @ w) >= margin)
    np.testing.assert_array_equal(y, np.sign(x @ w))


def test_digits01_is_separable_through_the_origin_after_centring():
    from scipy.optimize import linprog

    x, y = data.digits01()
    assert x.shape == (360, 64) and set(np.unique(y)) == {-1, 1}
    xs = data.centre_and_scale(x, 1.0)
    assert np.sqrt((xs**2).sum(axis=1).mean()) == pytest.approx(1.0)
    # feasibility: some w has y_i <w, x_i> >= 1 for every i (a hyperplane through the origin)
    lp = linprog(np.zeros(64), A_ub=-(y[:, None] * xs), b_ub=-np.ones(len(y)), bounds=(None, None))
    assert lp.status == 0
    assert np.all(y * (xs @ lp.x) >= 1 - 1e-7)


def test_gaussian_mixture_noise_levels_share_their_draws():
    x, y = data.gaussian_mixture(classes=3, dim=4, per_class=5, radius=2.0, noise=[0.1, 0.4], seed=3)
    assert x.shape == (2, 15, 4) and np.bincount(y).tolist() == [5, 5, 5]
    x0, _ = data.gaussian_mixture(classes=3, dim=4, per_class=5, radius=2.0, noise=0.0, seed=3)
    np.testing.assert_allclose(np.linalg.norm(x0[::5], axis=1), 2.0)  # class means on the sphere
    np.testing.assert_allclose(x[1] - x0, 4.0 * (x[0] - x0))  # same draws, 4x the spread


def test_digits_subset_is_class_balanced():
    x, y = data.digits(train_points=100, seed=0)
    assert x.shape == (100, 64) and np.bincount(y).min() >= 9


# ---- paper B: the bound is an identity plus two inequalities -----------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(1e-4, 1.0), st.integers(2, 4))
def test_bound_holds_wherever_the_gradient_decomposes(seed, lam, classes):
    """dist_K(W) <= (1/(lam N))||Delta||_2 ||X - M||_F + ||grad J||_F / lam for ANY W, Delta, X,
    when grad J = (1/N) Delta X^T + lam W: the theorem behind B3, without the network."""
    rng = np.random.default_rng(seed)
    n, n_in, n_out = 12, 7, 6
    y = np.arange(n) % classes
    mat = rng.standard_normal((2, n_out, n_in)) * rng.uniform(0.1, 3)
    delta = rng.standard_normal((2, n, n_out))
    x_in = rng.standard_normal((2, n, n_in))
    grad_data = np.einsum("snk,snj->skj", delta, x_in) / n
    t = collapse.layer_terms(mat, grad_data, delta, x_in, y, classes, np.full(2, lam), 1e-3)
    assert not t["bound_violation"].any()
    assert np.all(t["dist_k"] <= t["bound_rhs_tight"] * (1 + 1e-9) + 1e-12)
    assert np.all(t["bound_rhs_tight"] <= t["bound_rhs"] * (1 + 1e-12))


def test_bound_without_within_class_variability_is_the_gradient_term():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 5)
    x_in = np.repeat(rng.standard_normal((1, 2, 3)), 5, axis=1)  # every point at its class mean
    delta = rng.standard_normal((1, 10, 4))
    mat = rng.standard_normal((1, 4, 3))
    grad_data = np.einsum("snk,snj->skj", delta, x_in) / 10
    t = collapse.layer_terms(mat, grad_data, delta, x_in, y, 2, np.array([0.1]), 1e-3)
    assert t["bound_within"] == pytest.approx(0.0, abs=1e-12)
    assert t["bound_rhs"] == pytest.approx(np.linalg.norm(grad_data + 0.1 * mat) / 0.1)
    t0 = collapse.layer_terms(mat, grad_data, delta, x_in, y, 2, np.array([0.0]), 1e-3)
    assert np.isnan(t0["bound_rhs"][0]) and not t0["bound_violation"][0]


def tiny_collapse_cfg(**over):
    cfg = {
        "family": "rank_collapse",
        "study": "tiny",
        "device": "cpu",
        "data": {"name": "gaussian_mixture", "classes": 3, "dim": 8, "per_class": 12, "radius": 3.0, "noise": [0.1]},
        "weight_decay": [0.0, 3.0e-2, 3.0],
        "model": {"width": 10, "depth": 2},
        "train": {"lr": 0.1, "momentum": 0.9, "steps": 300, "dtype": "float64", "stationarity_window": 50},
        "log": {"checkpoints": 4},
        "metrics": {"numerical_rank_rtol": 1e-3},
        "seeds": [0, 1],
    }
    return {**cfg, **over}


def test_measured_delta_and_gradient_are_those_of_the_network(tmp_path):
    """The Delta the job records is N x the autograd gradient at the pre-activations: with it,
    (1/N) Delta X^T reproduces autograd's gradient of the mean cross-entropy, and grad_norm that of J."""
    job = collapse.CollapseRun(tiny_collapse_cfg(), tmp_path, progress=False)
    w64 = [w.detach().double().requires_grad_(True) for w in job.net.weights]
    out, inputs, pre = job._forward64(w64)
    ce = job.cross_entropy(out)
    grads = torch.autograd.grad(ce.sum(), w64 + pre)
    lam = torch.tensor(job.cells["weight_decay"].to_numpy())
    for l in range(job.net.n_layers):
        delta = grads[job.net.n_layers + l] * job.n
        np.testing.assert_allclose(
            (inputs[l].transpose(1, 2) @ delta / job.n).detach().numpy(), grads[l].numpy(), atol=1e-12
        )
    penalty = sum(0.5 * lam * (w**2).sum(dim=(1, 2)) for w in w64)
    g_j = torch.autograd.grad((job.cross_entropy(job._forward64(w64)[0]) + penalty).sum(), w64)
    job.measure()
    layers = job.rows_layers[0]
    for l, g in enumerate(g_j):
        np.testing.assert_allclose(layers[layers.layer == l + 1]["grad_norm"], g.flatten(1).norm(dim=1), rtol=1e-10)


def test_collapse_run_outputs_and_guard_rails(tmp_path):
    cfg = tiny_collapse_cfg()
    collapse.run(cfg, tmp_path, progress=False)
    for name in ("metrics.parquet", "layers.parquet", "claims_inputs.parquet", "spectra.npz", "run.json"):
        assert (tmp_path / name).stat().st_size > 0
    layers = pd.read_parquet(tmp_path / "layers.parquet")
    assert set(layers["layer"]) == {1, 2, 3} and layers["is_output"].sum() == len(layers) // 3
    assert not layers["bound_violation"].any()
    ci = pd.read_parquet(tmp_path / "claims_inputs.parquet")
    assert len(ci) == 6 * 3 and ci["stationarity_avg"].notna().sum() == 4 * 3  # lambda > 0 cells
    status = claims.collapse_cell_status(ci, claims.thresholds({"audit": {"b_stationarity_tol": 0.2}}))
    assert (status.loc[status.weight_decay == 0, "status"] == "no weight decay (baseline)").all()
    assert (status.loc[status.weight_decay == 3.0, "status"] == "trivial classifier").all()
    hidden = ci[~ci["is_output"]]
    by_lam = hidden.groupby("weight_decay")["dist_k_rel"].median()
    assert by_lam[3.0e-2] < 0.5 * by_lam[0.0]  # weight decay lowers the distance to rank K
    spectra = np.load(tmp_path / "spectra.npz")
    assert spectra["layer1"].shape == (6, len(spectra["steps"]), 8)
    # the verdicts read what the job wrote: the bound's self-checks cover every checkpoint
    rows = claims.run_rows(tmp_path, "rank_collapse", "tiny", ["B1", "B2", "B3"], {"b_stationarity_tol": 0.2})
    checks = [r for r in rows if r.role == "self-check"]
    assert len(checks) == 2 and all(r.verdict == verdicts.PASS for r in checks)
    assert checks[0].n == 4 * 3 * len(weights_run.checkpoints(300, 4))  # cells with lambda > 0 x layers x steps


# ---- paper C ----------------------------------------------------------------------------------


def tiny_align_cfg(**train):
    return {
        "family": "alignment",
        "study": "tiny",
        "device": "cpu",
        "data": {"name": "separable_gaussian", "dim": 5, "points": 40, "margin": 0.2, "seed": 0, "rms_norm": 1.0},
        "model": {"relu_layers": 1, "linear_layers": 3, "width": 6, "init_scale": 1.0},
        "train": {"loss": "logistic", "optimizer": "gd", "lr": 0.05, "steps": 100, "dtype": "float64", **train},
        "log": {"checkpoints": 3},
        "seeds": [0, 1],
    }


def drift_at_fixed_time(tmp_path, lr, time):
    job = alignment.AlignmentRun(tiny_align_cfg(lr=lr, steps=int(round(time / lr))), tmp_path, progress=False)
    job.train()
    pairs = job.tables()["pairs"]
    return pairs[pairs["step"] == pairs["step"].max()].groupby("kind")[["drift_full", "drift_diag"]].max()


def test_invariance_is_conserved_by_gradient_flow(tmp_path):
    """Gradient descent changes D_k by lr^2 (G^T G - G G^T) per step, so at a fixed training time the
    drift of a conserved quantity halves with the step size; across a ReLU only the diagonal does."""
    coarse = drift_at_fixed_time(tmp_path / "a", 0.2, 20.0)
    fine = drift_at_fixed_time(tmp_path / "b", 0.1, 20.0)
    assert fine.loc["linear", "drift_full"] < 2e-3
    assert fine.loc["linear", "drift_full"] == pytest.approx(coarse.loc["linear", "drift_full"] / 2, rel=0.15)
    assert fine.loc["relu", "drift_diag"] == pytest.approx(coarse.loc["relu", "drift_diag"] / 2, rel=0.15)
    # the full matrix across the ReLU moves with the training itself, not with the step size
    assert fine.loc["relu", "drift_full"] > 20 * fine.loc["relu", "drift_diag"]
    assert fine.loc["relu", "drift_full"] == pytest.approx(coarse.loc["relu", "drift_full"], rel=0.3)


def test_logistic_log_loss_is_finite_and_exact():
    z = torch.tensor([-50.0, -1.0, 0.0, 1.0, 29.0, 31.0, 800.0], dtype=torch.float64, requires_grad=True)
    out = alignment.log_losses(z, "logistic")
    exact = np.log(np.log1p(np.exp(-z.detach().numpy()[:5])))
    np.testing.assert_allclose(out.detach().numpy()[:5], exact, rtol=1e-12)
    assert out[-1].item() == pytest.approx(-800.0)
    out.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_skip_connections_and_pair_kinds():
    net = BiasFreeNet([0], [4, 5, 5, 5, 5, 1], [True, True, True, False, False], skip=True)
    assert net.residual == [False, True, True, False, False]
    assert alignment.pair_kinds(net) == [
        ("relu_skip", "none"),
        ("relu_skip", "none"),
        ("relu_skip", "none"),
        ("linear", "full"),
    ]
    plain = BiasFreeNet([0], [4, 5, 5, 1], [True, False, False])
    assert alignment.pair_kinds(plain) == [("relu", "diagonal"), ("linear", "full")]


def test_stacked_models_do_not_depend_on_their_neighbours():
    a = BiasFreeNet([3], [4, 5, 1], [True, False])
    b = BiasFreeNet([1, 3], [4, 5, 1], [True, False])
    for wa, wb in zip(a.weights, b.weights):
        assert torch.equal(wa[0], wb[1])


def test_bias_free_forward_with_given_weights():
    """Paper B measures with float64 copies of the weights passed to forward: the same pass as the
    network's own (the same weights give the same numbers; others are used instead)."""
    net = BiasFreeNet([0, 2], [4, 5, 5, 1], [True, True, False], skip=True)
    x = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    own, own_inputs, own_pre = net(x, keep=True)
    copies = [w.detach().clone() for w in net.weights]
    given, inputs, pre = net(x, keep=True, weights=copies)
    assert torch.equal(own, given)
    assert all(torch.equal(a, b) for a, b in zip(own_inputs + own_pre, inputs + pre, strict=True))
    plain = BiasFreeNet([0, 2], [4, 5, 5, 1], [True, True, False])  # homogeneous: no skips
    scaled = [2 * w.detach() for w in plain.weights[:-1]] + [plain.weights[-1].detach()]
    assert torch.equal(plain(x, weights=scaled), 4 * plain(x))


def test_alignment_run_outputs(tmp_path):
    cfg = tiny_align_cfg(optimizer="normalized_gd", lr=0.05, steps=300)
    alignment.run(cfg, tmp_path, progress=False)
    layers = pd.read_parquet(tmp_path / "layers.parquet")
    metrics = pd.read_parquet(tmp_path / "metrics.parquet")
    assert metrics.groupby("seed")["train_accuracy"].last().min() == 1.0
    lin = layers[(layers["kind"] == "linear") & ~layers["trivially_rank1"]]
    first, last = lin[lin.step == 0]["sigma1_ratio"].mean(), lin[lin.step == lin.step.max()]["sigma1_ratio"].mean()
    assert last > first + 0.2 and last > 0.9
    ci = pd.read_parquet(tmp_path / "claims_inputs.parquet")
    assert set(ci["claim"]) == {"C1", "C2", "C3"}
    rows = claims.run_rows(tmp_path, "alignment", "tiny", ["C1", "C2", "C3"], {"c1_min_sigma1_ratio": 0.9})
    assert {r.claim for r in rows} == {"C1", "C2", "C3"}
    assert all(r.verdict in (verdicts.PASS, verdicts.FAIL) for r in rows if r.role == "test")
    # the weights moved and the ReLU pair's full matrix drifted: the guards of C3 hold
    assert {r.verdict for r in rows if r.claim == "C3" and r.role == "guard"} == {verdicts.PASS}


# ---- config ------------------------------------------------------------------------------------


def default_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_studies_resolve_with_scale_and_keep_tags_out():
    config = default_config()
    small = lrsettings.studies(config, "alignment")
    assert small["gauss_ngd"]["train"]["loss"] == "logistic"
    assert small["gauss_ngd"]["train"]["optimizer"] == "normalized_gd"  # inherited from the section
    assert "claims" not in small["gauss_ngd"] and "description" not in small["gauss_ngd"]
    full = lrsettings.studies({**config, "scale": "full"}, "rank_collapse")
    assert full["digits_lambda"]["data"]["train_points"] == 1797
    assert (
        full["digits_lambda"]["data"]["rms_norm"]
        == config["rank_collapse"]["studies"]["digits_lambda"]["data"]["rms_norm"]
    )
    assert lrsettings.claims_of(config, "rank_collapse")["gauss_noise"] == ["B2", "B3"]
    off = copy.deepcopy(config)
    off["alignment"]["enabled"] = False
    assert lrsettings.studies(off, "alignment") == {}


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda c: c["rank_collapse"]["studies"]["gauss_noise"]["data"].update(rms_norm=1.0),
            "rank_collapse.studies.gauss_noise.data.rms_norm: not for gaussian_mixture",
        ),
        (
            lambda c: c["rank_collapse"]["studies"]["gauss_noise"]["data"].pop("radius"),
            "rank_collapse.studies.gauss_noise.data.radius: required by data set 'gaussian_mixture'",
        ),
        (
            lambda c: c["alignment"]["studies"]["digits01_ngd"]["data"].update(margin=0.1),
            "alignment.studies.digits01_ngd.data.margin: not a parameter of data set 'digits01'",
        ),
        (
            lambda c: c["alignment"]["defaults"]["model"].update(relu_layers=1),
            "alignment.studies.digits01_skip_ngd.model.skip: a skip connection needs relu_layers >= 2",
        ),
        (
            lambda c: c["rank_collapse"]["studies"]["digits_lambda"].update(weight_decay=[0.0, 0.0]),
            "rank_collapse.studies.digits_lambda.weight_decay: values repeat",
        ),
    ],
)
def test_config_checks_name_the_key(edit, expected):
    config = default_config()
    edit(config)
    with pytest.raises(cfgmod.ConfigError, match="^" + expected.replace("(", r"\(").replace(")", r"\)")):
        cfgmod.check(config)
