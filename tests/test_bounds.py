"""Tests of the epsilon-rank loss lower bound (src/staircase/bounds.py).

The bound must never exceed the measured loss (docs/quantities.md: it is checked at every
measurement), and it must be tight in the cases where theory says it is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from staircase.core.bounds import BoundResult, loss_lower_bound, loss_lower_bounds
from staircase.core.quadrature import trapezoid_1d, trapezoid_box
from staircase.core.rank import eps_rank
from staircase.networks.mlp import StackedMLP

pytestmark = pytest.mark.usefixtures("single_blas_thread")

EPS_VALUES = (1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-9)
SEEDS_PER_CHUNK = 30  # 4 chunks x 30 random problems x 6 coefficient choices x 7 eps


def measured_loss(phi, f, a, w) -> float:
    return float(np.sum(w * (phi @ a - f) ** 2))


def rounding_slack(phi, f, a, w, loss) -> float:
    """Floating-point uncertainty of ``measured_loss``: the residual phi @ a - f is evaluated with an
    error of about n u (|phi| |a| + |f|) per point, which matters only for huge coefficients
    (e.g. least squares on nearly dependent features); 1e-10 relative covers the rest."""
    sw = np.sqrt(w)
    delta = 1e-13 * (np.linalg.norm(sw * (np.abs(phi) @ np.abs(a))) + np.linalg.norm(sw * f))
    return 1e-10 * loss + 2 * np.sqrt(loss) * delta + delta**2


def weighted_lstsq(phi, f, w, ridge=0.0):
    b = np.sqrt(w)[:, None] * phi
    g = np.sqrt(w) * f
    if ridge == 0.0:
        return np.linalg.lstsq(b, g, rcond=None)[0]
    return np.linalg.solve(b.T @ b + ridge * np.eye(b.shape[1]), b.T @ g)


def random_problem(seed: int):
    """Features of a random tanh network (a StackedMLP at its initialisation, or a numpy network
    with wider weights), with or without a bias column, on a grid with trapezoid weights or on
    random points with weights 1/N; a random target."""
    rng = np.random.default_rng(seed)
    d = 1 if seed % 4 else 2
    width = int(rng.integers(2, 41))
    depth = int(rng.integers(1, 4))
    if seed % 2 == 0:  # trapezoid ("integral") weights on a grid
        if d == 1:
            x, w = trapezoid_1d(-1.0, 1.0, int(rng.integers(20, 200)))
            x = x[:, None]
        else:
            x, w = trapezoid_box([(-1.0, 1.0), (0.0, 2.0)], int(rng.integers(5, 15)))
    else:  # random points, weights 1/N ("mean" normalisation, as in the fitting loss)
        n_pts = int(rng.integers(20, 200))
        x = rng.uniform(-1.0, 1.0, (n_pts, d))
        w = np.full(n_pts, 1.0 / n_pts)
    if seed % 3 == 0:
        model = StackedMLP([seed, seed + 1], d, width, depth, "tanh", dtype=torch.float32)
        with torch.no_grad():
            _, hidden = model(torch.as_tensor(x, dtype=torch.float32), return_hidden=True)
        h = hidden[int(rng.integers(depth))][int(rng.integers(2))].to(torch.float64).numpy()
    else:
        h = x
        for _ in range(depth):
            scale = rng.uniform(0.5, 5.0) / np.sqrt(h.shape[1])
            h = np.tanh(h @ rng.normal(0.0, scale, (h.shape[1], width)) + rng.normal(0.0, 1.0, width))
    phi = np.hstack([np.ones((len(h), 1)), h]) if seed % 5 else h
    freq = rng.uniform(0.5, 6.0, d)
    f = np.sin(np.pi * x @ freq) + rng.normal(0.0, rng.choice([0.0, 0.1, 1.0]), len(x))
    return phi, f, w


def coefficient_choices(phi, f, w, rng):
    n = phi.shape[1]
    return {
        "zero": np.zeros(n),
        "small": rng.normal(0.0, 1e-2, n),
        "unit": rng.normal(0.0, 1.0, n),
        "large": rng.normal(0.0, 30.0, n),
        "ridge": weighted_lstsq(phi, f, w, ridge=1e-6),
        "lstsq": weighted_lstsq(phi, f, w),
    }


@pytest.mark.parametrize("chunk", range(4))
def test_bound_never_exceeds_measured_loss(chunk):
    n_cases = 0
    for seed in range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK):
        phi, f, w = random_problem(seed)
        rng = np.random.default_rng(10_000 + seed)
        for name, a in coefficient_choices(phi, f, w, rng).items():
            loss = measured_loss(phi, f, a, w)
            tol = rounding_slack(phi, f, a, w, loss)
            for eps in EPS_VALUES:
                r = loss_lower_bound(phi, f, a, w, eps)
                ctx = f"seed={seed} coef={name} eps={eps} {r} loss={loss}"
                assert isinstance(r, BoundResult)
                assert 0.0 <= r.lower_bound <= loss + tol, ctx
                assert 0.0 <= r.best_loss <= loss + tol, ctx
                assert r.best_loss <= r.best_loss_top_r * (1 + 1e-10) + 1e-14 * np.sum(w * f**2), ctx
                assert r.lower_bound <= r.best_loss_top_r * (1 + 1e-12), ctx
                assert r.best_loss_top_r <= np.sum(w * f**2) * (1 + 1e-10), ctx
                assert r.coef_norm == pytest.approx(np.linalg.norm(a), rel=1e-14)
                assert 0 <= r.rank <= phi.shape[1]
                n_cases += 1
    assert n_cases == SEEDS_PER_CHUNK * 6 * len(EPS_VALUES)


def test_bound_rank_and_top_r_loss_are_monotone_in_eps():
    for seed in range(10):
        phi, f, w = random_problem(seed)
        a = np.random.default_rng(seed).normal(size=phi.shape[1])
        results = [loss_lower_bound(phi, f, a, w, eps) for eps in sorted(EPS_VALUES)]  # increasing eps
        ranks = [r.rank for r in results]
        assert ranks == sorted(ranks, reverse=True)
        tops = np.array([r.best_loss_top_r for r in results])
        assert np.all(np.diff(tops) >= -1e-10 * tops[1:])  # fewer directions: a worse fit
        assert len({r.best_loss for r in results}) == 1  # independent of eps


def test_rank_matches_eps_rank_of_the_same_quadrature():
    for seed in range(10):
        phi, f, w = random_problem(seed)
        for eps in (1e-1, 1e-3, 1e-6):
            r = loss_lower_bound(phi, f, np.zeros(phi.shape[1]), w, eps)
            assert r.rank == eps_rank(phi, eps, w)


# ---- tightness and closed forms on features with a designed spectrum ---------------------------


def designed_problem(lams, n_points=120, seed=0):
    """Features phi (N, n) whose Gram in the trapezoid inner product on [-1, 1] has eigenvalues
    ``lams`` exactly: sqrt(w) phi = U diag(sqrt(lams)) V^T with U orthonormal (N, n + 1) (the last
    column, orthogonal to every feature, is returned too) and V orthogonal (n, n)."""
    rng = np.random.default_rng(seed)
    x, w = trapezoid_1d(-1.0, 1.0, n_points)
    n = len(lams)
    u, _ = np.linalg.qr(rng.normal(size=(n_points, n + 1)))
    v, _ = np.linalg.qr(rng.normal(size=(n, n)))
    sw = np.sqrt(w)
    phi = (u[:, :n] * np.sqrt(lams)) @ v.T / sw[:, None]
    psi_hat = u / sw[:, None]  # unit-norm functions: psi_hat[:, k] is psi_k / ||psi_k|| for k < n
    return phi, w, v, psi_hat


LAMS = np.array([4.0, 1.0, 0.25, 1e-4, 1e-6, 0.0])  # eps = 1e-3 separates three from three
EPS = 1e-3


def test_designed_problem_has_the_designed_spectrum():
    phi, w, _, psi_hat = designed_problem(LAMS)
    from staircase.core.rank import spectrum

    np.testing.assert_allclose(spectrum(phi, w), LAMS, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(psi_hat.T @ (w[:, None] * psi_hat), np.eye(len(LAMS) + 1), atol=1e-13)


def test_bound_closed_form():
    # f = alpha psi_0^ + beta psi_4^ + gamma e_perp, with psi_4 a small direction and e_perp orthogonal
    # to all features: dist(f, V_r)^2 = beta^2 + gamma^2, best = gamma^2,
    # bound = (sqrt(beta^2 + gamma^2) - sqrt(eps) ||a||)_+^2
    phi, w, _, psi_hat = designed_problem(LAMS)
    alpha, beta, gamma = 0.7, -0.3, 0.2
    f = alpha * psi_hat[:, 0] + beta * psi_hat[:, 4] + gamma * psi_hat[:, 6]
    rng = np.random.default_rng(1)
    for scale in (0.0, 0.1, 1.0, 10.0, 100.0):
        a = scale * rng.normal(size=6)
        r = loss_lower_bound(phi, f, a, w, EPS)
        dist = np.hypot(beta, gamma)
        assert r.rank == 3
        assert r.best_loss_top_r == pytest.approx(dist**2, rel=1e-10)
        assert r.best_loss == pytest.approx(gamma**2, rel=1e-10)
        assert r.coef_norm == pytest.approx(np.linalg.norm(a), rel=1e-14)
        expected = max(dist - np.sqrt(EPS) * np.linalg.norm(a), 0.0) ** 2
        assert r.lower_bound == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert r.lower_bound <= measured_loss(phi, f, a, w)


def test_bound_target_in_top_directions_and_zero_coef():
    # f in V_r and a = 0: the features could fit f, so nothing is certified (bound = 0), even
    # though the measured loss ||f||^2 is large; best and top-r losses are 0
    phi, w, _, psi_hat = designed_problem(LAMS)
    f = 0.8 * psi_hat[:, 0] - 0.5 * psi_hat[:, 2]
    r = loss_lower_bound(phi, f, np.zeros(6), w, EPS)
    assert measured_loss(phi, f, np.zeros(6), w) == pytest.approx(0.89, rel=1e-12)
    assert r.best_loss_top_r < 1e-24 and r.best_loss < 1e-24 and r.lower_bound < 1e-24
    assert r.rank == 3


def test_bound_target_in_small_directions_and_zero_coef_is_tight():
    # f orthogonal to V_r and a = 0: dist(f, V_r) = ||f||, so the bound equals the measured loss
    phi, w, _, psi_hat = designed_problem(LAMS)
    f = 0.6 * psi_hat[:, 3] + 0.8 * psi_hat[:, 4]
    loss = measured_loss(phi, f, np.zeros(6), w)
    r = loss_lower_bound(phi, f, np.zeros(6), w, EPS)
    assert loss == pytest.approx(1.0, rel=1e-12)
    assert r.lower_bound == pytest.approx(loss, rel=1e-10)
    assert r.best_loss_top_r == pytest.approx(loss, rel=1e-10)
    assert r.best_loss < 1e-20  # the features can represent f, using the small directions


@pytest.mark.parametrize("k", [3, 4])
def test_bound_is_zero_when_the_output_fits_a_small_direction_exactly(k):
    # u = f = psi_k with lambda_k <= eps, a = v_k: loss 0, dist(f, V_r) = sqrt(lambda_k) <= sqrt(eps) ||a||
    phi, w, v, _ = designed_problem(LAMS)
    a = v[:, k] * 3.0
    f = phi @ a
    assert measured_loss(phi, f, a, w) == 0.0
    r = loss_lower_bound(phi, f, a, w, EPS)
    assert r.lower_bound == 0.0
    assert r.best_loss_top_r == pytest.approx(9.0 * LAMS[k], rel=1e-8)


def test_sqrt_eps_term_is_sharp():
    # an eigenvalue exactly at eps (not counted, lambda > eps is strict) and u = f = psi of it:
    # dist(f, V_r) = sqrt(eps) ||a|| exactly, so the bound is (numerically) 0 and could not be larger
    lams = np.array([4.0, 1.0, EPS, 1e-6])
    phi, w, v, _ = designed_problem(lams)
    a = 2.0 * v[:, 2]
    f = phi @ a
    r = loss_lower_bound(phi, f, a, w, EPS * (1 + 1e-9))
    assert r.rank == 2
    assert np.sqrt(r.best_loss_top_r) == pytest.approx(np.sqrt(EPS) * r.coef_norm, rel=1e-8)
    assert r.lower_bound < 1e-12 * r.best_loss_top_r


def test_no_direction_above_eps():
    phi, w, _, psi_hat = designed_problem(LAMS)
    f = psi_hat[:, 0] + psi_hat[:, 6]
    a = np.full(6, 0.1)
    r = loss_lower_bound(phi, f, a, w, 10.0)
    assert r.rank == 0
    assert r.best_loss_top_r == pytest.approx(2.0, rel=1e-12)
    assert r.lower_bound == pytest.approx((np.sqrt(2.0) - np.sqrt(10.0) * np.linalg.norm(a)) ** 2, rel=1e-12)
    assert r.best_loss == pytest.approx(1.0, rel=1e-10)


@pytest.mark.parametrize("weights", ["trapezoid", "mean"])
def test_tight_at_least_squares_solution_with_tiny_eps(weights):
    # well-conditioned features (normalised Legendre polynomials + a bias), a = least squares:
    # all directions are above eps, so bound ~ best = top-r = measured loss
    x, w = trapezoid_1d(-1.0, 1.0, 301)
    if weights == "mean":
        w = np.full_like(w, 1.0 / len(w))
    phi = np.polynomial.legendre.legvander(x, 6) * np.sqrt((2 * np.arange(7) + 1) / 2)
    phi = np.hstack([np.ones((len(x), 1)), phi[:, 1:]])
    f = np.exp(x) * np.sin(4 * x) + 0.3 * np.abs(x)
    a = weighted_lstsq(phi, f, w)
    loss = measured_loss(phi, f, a, w)
    lam_min = np.linalg.eigvalsh((phi * w[:, None]).T @ phi).min()
    assert lam_min > 1e-3
    eps = min(0.5 * lam_min, (1e-8 * np.sqrt(loss) / np.linalg.norm(a)) ** 2)
    r = loss_lower_bound(phi, f, a, w, eps)
    assert r.rank == phi.shape[1]
    assert r.best_loss == pytest.approx(loss, rel=1e-10)
    assert r.best_loss_top_r == pytest.approx(loss, rel=1e-10)
    assert r.lower_bound == pytest.approx(loss, rel=1e-6)
    assert r.lower_bound <= loss


@pytest.mark.parametrize("seed", range(5))
def test_tight_at_least_squares_solution_random_features(seed):
    rng = np.random.default_rng(seed)
    n_pts, n = 200, 8
    phi = rng.normal(size=(n_pts, n))  # well conditioned
    w = rng.uniform(0.5, 1.5, n_pts) / n_pts
    f = rng.normal(size=n_pts)
    a = weighted_lstsq(phi, f, w)
    loss = measured_loss(phi, f, a, w)
    eps = (1e-8 * np.sqrt(loss) / np.linalg.norm(a)) ** 2
    r = loss_lower_bound(phi, f, a, w, eps)
    assert r.rank == n
    np.testing.assert_allclose([r.lower_bound, r.best_loss, r.best_loss_top_r], loss, rtol=1e-6)
    assert r.lower_bound <= loss


def test_bound_scales_with_the_weights():
    # multiplying every weight by c multiplies the Gram eigenvalues, the losses and the bound by c
    # (the training loop rescales eps by sum(weights) for this reason)
    for seed in range(6):
        phi, f, w = random_problem(seed)
        a = np.random.default_rng(seed).normal(size=phi.shape[1])
        for c in (0.01, 7.0):
            r1 = loss_lower_bound(phi, f, a, w, 1e-3)
            r2 = loss_lower_bound(phi, f, a, c * w, c * 1e-3)
            assert r2.rank == r1.rank
            for field in ("lower_bound", "best_loss", "best_loss_top_r"):
                assert getattr(r2, field) == pytest.approx(c * getattr(r1, field), rel=1e-7, abs=1e-13 * c), field


def test_accepts_torch_and_list_inputs():
    phi, f, w = random_problem(1)
    a = np.random.default_rng(0).normal(size=phi.shape[1])
    ref = loss_lower_bound(phi, f, a, w, 1e-3)
    got = loss_lower_bound(torch.from_numpy(phi), torch.from_numpy(f), torch.from_numpy(a), list(w), 1e-3)
    assert got == ref
    # a column vector target and coef are flattened
    assert loss_lower_bound(phi, f[:, None], a[:, None], w, 1e-3) == ref


@pytest.mark.parametrize("eps", [0.0, -1e-3])
def test_nonpositive_eps_raises(eps):
    phi, f, w = random_problem(1)
    with pytest.raises(ValueError, match="eps must be positive"):
        loss_lower_bound(phi, f, np.zeros(phi.shape[1]), w, eps)


def _noise_floor_case():
    """Features of a random 3-layer tanh network (57 neurons + bias, 272 grid points, weights 1/N) whose
    Gram eigenvalues decay into the float64 rounding floor (~1e-14 for lambda_max ~ 34)."""
    rng = np.random.default_rng(208)
    n_pts, width, depth = int(rng.integers(50, 300)), int(rng.integers(2, 60)), int(rng.integers(1, 4))
    x = np.linspace(-1.0, 1.0, n_pts)[:, None]
    h = x
    for _ in range(depth):
        scale = rng.uniform(0.5, 5) / np.sqrt(h.shape[1])
        h = np.tanh(h @ rng.normal(0, scale, (h.shape[1], width)) + rng.normal(0, 1, width))
    phi = np.hstack([np.ones((n_pts, 1)), h])
    f = np.sin(rng.uniform(1, 10) * np.pi * x[:, 0]) + rng.normal(0, 0.1, n_pts)
    return phi, f, np.full(n_pts, 1.0 / n_pts)


# eps below the rounding floor of the Gram eigenvalues (~n u lambda_max): the basis of V_r must stay
# orthonormal (bounds.py takes it from an SVD), so the bound stays below the loss.
@pytest.mark.parametrize("eps", [1e-17, 1e-16, 1e-15])
def test_bound_valid_for_eps_below_rounding_floor(eps):
    phi, f, w = _noise_floor_case()
    a = np.zeros(phi.shape[1])
    r = loss_lower_bound(phi, f, a, w, eps)
    assert r.best_loss_top_r <= np.sum(w * f**2) * (1 + 1e-10)  # a projection cannot increase the norm
    assert r.lower_bound <= measured_loss(phi, f, a, w) * (1 + 1e-10)


def _tall_svd_reference(phi, f, a, w, eps):
    """The bound by one tall SVD of the weighted features (the textbook route, as bounds.py
    computed it before it took the QR of a whole stack): (bound, best, best top-r, rank)."""
    sw = np.sqrt(w)
    b, g = sw[:, None] * phi, sw * f
    u, s, _ = np.linalg.svd(b, full_matrices=False)
    c = u.T @ g
    big = s**2 > eps
    keep = s > s.max(initial=0.0) * max(b.shape) * np.finfo(np.float64).eps
    top = float(np.sum((g - u[:, big] @ c[big]) ** 2))
    best = float(np.sum((g - u[:, keep] @ c[keep]) ** 2))
    return max(np.sqrt(top) - np.sqrt(eps) * np.linalg.norm(a), 0.0) ** 2, best, top, int(big.sum())


def test_stacked_bound_equals_the_tall_svd_route_and_each_model_alone():
    total = 0.0
    for seed in range(40):
        phi, f, w = random_problem(seed)
        rng = np.random.default_rng(20_000 + seed)
        coefs = np.stack(list(coefficient_choices(phi, f, w, rng).values()))
        stack = np.stack([phi + 0.1 * k * np.tanh(phi) for k in range(len(coefs))])  # different features per model
        for eps in (1e-1, 1e-3, 1e-6):
            results = loss_lower_bounds(stack, f, coefs, w, eps)
            for m, r in enumerate(results):
                bound, best, top, rank = _tall_svd_reference(stack[m], f, coefs[m], w, eps)
                scale = np.sum(w * f**2)
                assert r.rank == rank
                for ours, ref in ((r.lower_bound, bound), (r.best_loss_top_r, top)):
                    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12 * scale)
                # the least-squares optimum: directions at the lstsq cut-off may differ by rounding
                assert r.best_loss == pytest.approx(best, rel=1e-6, abs=1e-10 * scale)
                alone = loss_lower_bound(stack[m], f, coefs[m], w, eps)
                assert alone.lower_bound == pytest.approx(r.lower_bound, rel=1e-12, abs=1e-14 * scale)
                total += 1
    assert total == 40 * 6 * 3


def test_the_gram_route_equals_the_qr_route():
    """Claim A3's bound is computed from the eps-rank's own Gram eigendecomposition
    (bounds.lower_bounds_from_gram); it must agree with the QR route on the same features."""
    from staircase.core.bounds import lower_bounds_from_gram

    rng = np.random.default_rng(3)
    for _ in range(40):
        s, n_points, n = 3, int(rng.integers(50, 400)), int(rng.integers(3, 40))
        phi = np.tanh(rng.normal(size=(s, n_points, n)) * rng.uniform(0.05, 3, n))
        w = rng.uniform(0.5, 1.5, n_points) / n_points
        f = rng.normal(size=(s, n_points))
        a = rng.normal(size=(s, n)) * rng.uniform(0.01, 3)
        for eps in (1e-1, 1e-3, 1e-5):
            qr = loss_lower_bounds(phi, f, a, w, eps)
            lam, vec = np.linalg.eigh(np.swapaxes(phi * w[:, None], 1, 2) @ phi)
            residual = (phi @ a[..., None])[..., 0] - f
            gram = lower_bounds_from_gram(
                lam,
                vec,
                (np.swapaxes(phi, 1, 2) @ (w * f)[..., None])[..., 0],
                (w * f * f).sum(axis=1),
                np.linalg.norm(a, axis=1),
                (w * residual**2).sum(axis=1),
                eps,
            )
            for x, y in zip(qr, gram):
                assert x.rank == y.rank and not y.violated
                scale = (w * f[0] ** 2).sum()
                assert y.best_loss_top_r == pytest.approx(x.best_loss_top_r, rel=1e-8, abs=1e-12 * scale)
                assert y.lower_bound == pytest.approx(x.lower_bound, rel=1e-7, abs=1e-12 * scale)
                assert y.loss == pytest.approx(x.loss, rel=1e-12)
