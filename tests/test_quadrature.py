"""Known-answer tests for the quadrature rules (src/staircase/quadrature.py)."""

from __future__ import annotations

import numpy as np
import pytest

from staircase.core.quadrature import box_volume, monte_carlo_box, trapezoid_1d, trapezoid_box


def integrate(x, w, g):
    return float(np.sum(w * g(x)))


# ---- trapezoid_1d ------------------------------------------------------------------------------


def test_trapezoid_1d_points_and_weights():
    x, w = trapezoid_1d(-1.0, 1.0, 5)
    np.testing.assert_allclose(x, [-1.0, -0.5, 0.0, 0.5, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(w, [0.25, 0.5, 0.5, 0.5, 0.25], rtol=0, atol=1e-15)
    assert x.shape == w.shape == (5,)


@pytest.mark.parametrize("a,b,n", [(-1.0, 1.0, 2), (-1.0, 1.0, 101), (0.0, 3.5, 17), (2.0, 2.5, 1000)])
def test_trapezoid_1d_weights_sum_to_length(a, b, n):
    _, w = trapezoid_1d(a, b, n)
    assert np.all(w > 0)
    assert w.sum() == pytest.approx(b - a, rel=1e-13)


def test_trapezoid_1d_linear_is_exact():
    x, w = trapezoid_1d(0.0, 3.0, 4)
    assert integrate(x, w, lambda t: 2 * t + 1) == pytest.approx(12.0, rel=1e-14)


@pytest.mark.parametrize("n", [3, 11, 101, 1001])
def test_trapezoid_1d_x_squared_error_is_h2_over_3(n):
    # composite trapezoid error is (b - a) h^2 f'' / 12 exactly for a quadratic: here h^2 / 3
    x, w = trapezoid_1d(-1.0, 1.0, n)
    h = 2.0 / (n - 1)
    val = integrate(x, w, lambda t: t**2)
    assert val - 2.0 / 3.0 == pytest.approx(h**2 / 3.0, rel=1e-9, abs=1e-15)


def test_trapezoid_1d_second_order_convergence():
    exact = np.e - np.exp(-1.0)  # int_{-1}^{1} e^x dx
    errs = []
    for n in (21, 41, 81, 161):  # h halves each time
        x, w = trapezoid_1d(-1.0, 1.0, n)
        errs.append(abs(integrate(x, w, np.exp) - exact))
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    np.testing.assert_allclose(ratios, 4.0, rtol=0.01)


@pytest.mark.parametrize("n", [4, 11, 100, 801])
def test_trapezoid_1d_periodic_sin_squared_is_exact(n):
    # sin^2(pi x) = (1 - cos 2 pi x) / 2 is periodic on [-1, 1]: trapezoid is exact (>= 3 intervals)
    x, w = trapezoid_1d(-1.0, 1.0, n)
    assert integrate(x, w, lambda t: np.sin(np.pi * t) ** 2) == pytest.approx(1.0, rel=1e-13)


@pytest.mark.parametrize("n", [1, 0, -3])
def test_trapezoid_1d_rejects_fewer_than_two_points(n):
    with pytest.raises(ValueError, match="at least 2"):
        trapezoid_1d(0.0, 1.0, n)


# ---- trapezoid_box -----------------------------------------------------------------------------


def test_trapezoid_box_shapes_and_ij_ordering():
    x, w = trapezoid_box([(0.0, 1.0), (10.0, 12.0)], 3)
    assert x.shape == (9, 2) and w.shape == (9,)
    # "ij" indexing: the first coordinate varies slowest
    np.testing.assert_allclose(x[:3], [[0.0, 10.0], [0.0, 11.0], [0.0, 12.0]])
    np.testing.assert_allclose(x[-1], [1.0, 12.0])
    # weights are products of the 1-D weights (0.25, 0.5, 0.25) x (0.5, 1, 0.5)
    np.testing.assert_allclose(w[:3], [0.125, 0.25, 0.125])
    np.testing.assert_allclose(w[4], 0.5)


@pytest.mark.parametrize(
    "bounds,n",
    [([(-1.0, 1.0)], 7), ([(-1.0, 1.0), (-1.0, 1.0)], 9), ([(0.0, 2.0), (-1.0, 3.0), (0.5, 1.0)], 6)],
)
def test_trapezoid_box_weights_sum_to_volume(bounds, n):
    x, w = trapezoid_box(bounds, n)
    assert x.shape == (n ** len(bounds), len(bounds))
    assert w.sum() == pytest.approx(box_volume(bounds), rel=1e-13)
    lo = np.array([a for a, _ in bounds])
    hi = np.array([b for _, b in bounds])
    assert np.all(x >= lo - 1e-15) and np.all(x <= hi + 1e-15)


@pytest.mark.parametrize("n", [5, 41, 201])
def test_trapezoid_box_x2y2(n):
    # the tensor rule of a product is the product of 1-D rules: (2/3 + h^2/3)^2 -> 4/9
    x, w = trapezoid_box([(-1.0, 1.0), (-1.0, 1.0)], n)
    h = 2.0 / (n - 1)
    val = integrate(x, w, lambda p: p[:, 0] ** 2 * p[:, 1] ** 2)
    assert val == pytest.approx((2.0 / 3.0 + h**2 / 3.0) ** 2, rel=1e-12)
    assert abs(val - 4.0 / 9.0) <= 1.0 * h**2


def test_trapezoid_box_second_order_non_separable():
    # int_0^1 int_0^2 exp(x + 2y) dy dx = (e - 1)(e^4 - 1) / 2
    exact = (np.e - 1) * (np.e**4 - 1) / 2
    errs = []
    for n in (11, 21, 41, 81):
        x, w = trapezoid_box([(0.0, 1.0), (0.0, 2.0)], n)
        errs.append(abs(integrate(x, w, lambda p: np.exp(p[:, 0] + 2 * p[:, 1])) - exact))
    np.testing.assert_allclose(np.array(errs[:-1]) / np.array(errs[1:]), 4.0, rtol=0.02)


def test_trapezoid_box_periodic_2d_is_exact():
    # int over [-1,1]^2 of sin^2(pi x) cos^2(pi y) = 1 * 1
    x, w = trapezoid_box([(-1.0, 1.0), (-1.0, 1.0)], 13)
    val = integrate(x, w, lambda p: np.sin(np.pi * p[:, 0]) ** 2 * np.cos(np.pi * p[:, 1]) ** 2)
    assert val == pytest.approx(1.0, rel=1e-13)


def test_trapezoid_box_rejects_fewer_than_two_points():
    with pytest.raises(ValueError):
        trapezoid_box([(0.0, 1.0), (0.0, 1.0)], 1)


def test_box_volume():
    assert box_volume([(0.0, 2.0), (-1.0, 3.0), (0.5, 1.0)]) == pytest.approx(4.0)
    assert box_volume([(-1.0, 1.0)]) == pytest.approx(2.0)
    assert isinstance(box_volume([(0.0, 1.0)]), float)


# ---- monte_carlo_box ---------------------------------------------------------------------------


def test_monte_carlo_box_weights_points_and_determinism():
    bounds = [(-1.0, 1.0), (0.0, 3.0), (2.0, 2.5)]
    x, w = monte_carlo_box(bounds, 500, seed=7)
    assert x.shape == (500, 3) and w.shape == (500,)
    np.testing.assert_allclose(w, box_volume(bounds) / 500, rtol=1e-15)
    assert w.sum() == pytest.approx(3.0, rel=1e-13)
    lo = np.array([a for a, _ in bounds])
    hi = np.array([b for _, b in bounds])
    assert np.all(x >= lo) and np.all(x <= hi)
    # every coordinate roughly fills its interval
    assert np.all(x.min(axis=0) < lo + 0.05 * (hi - lo)) and np.all(x.max(axis=0) > hi - 0.05 * (hi - lo))
    x2, _ = monte_carlo_box(bounds, 500, seed=7)
    x3, _ = monte_carlo_box(bounds, 500, seed=8)
    np.testing.assert_array_equal(x, x2)
    assert not np.allclose(x, x3)


@pytest.mark.parametrize("seed", range(5))
def test_monte_carlo_box_mean_within_standard_errors(seed):
    # int_{[-1,1]^3} (x^2 + y^2 + z^2) = 3 * (2/3) * 4 = 8
    bounds = [(-1.0, 1.0)] * 3
    n = 4000
    x, w = monte_carlo_box(bounds, n, seed=seed)
    g = np.sum(x**2, axis=1)
    est = float(np.sum(w * g))
    se = box_volume(bounds) * g.std(ddof=1) / np.sqrt(n)
    assert abs(est - 8.0) < 4 * se
    assert se < 0.1  # and the estimate is actually informative


# ---- Gauss-Legendre, quasi-Monte Carlo, rule ---------------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 20])
def test_gauss_legendre_is_exact_to_degree_2n_minus_1(n):
    from staircase.core.quadrature import gauss_legendre_1d

    x, w = gauss_legendre_1d(0.0, 2.0, n)
    for k in (0, 2 * n - 1):
        assert float(np.sum(w * x**k)) == pytest.approx(2.0 ** (k + 1) / (k + 1), rel=1e-12)


def test_gauss_legendre_3000_points_is_the_reference_rule():
    from staircase.core.quadrature import gauss_legendre_1d

    x, w = gauss_legendre_1d(-1.0, 1.0, 3000)
    assert np.all(np.diff(x) > 0) and np.all(w > 0) and w.sum() == pytest.approx(2.0, rel=1e-14)
    exact = (np.exp(1.0) * (np.cos(20) + 20 * np.sin(20)) - np.exp(-1.0) * (np.cos(20) - 20 * np.sin(20))) / 401
    assert integrate(x, w, lambda t: np.exp(t) * np.cos(20 * t)) == pytest.approx(exact, abs=1e-12)


def test_gauss_box_and_qmc_integrate_a_smooth_function():
    from staircase.core.quadrature import RULES, rule

    bounds = [(-1.0, 1.0), (0.0, 2.0)]
    exact = (np.sin(1.0) - np.sin(-1.0)) * (1 - np.exp(-2.0))  # int cos(x) exp(-y)
    g = lambda p: np.cos(p[:, 0]) * np.exp(-p[:, 1])  # noqa: E731
    errors = {}
    for name, n in zip(RULES, (41, 8, 4096, 4096)):
        x, w = rule(name, bounds, n, seed=1)
        assert x.shape[1] == 2 and w.sum() == pytest.approx(box_volume(bounds), rel=1e-12)
        assert np.all((x >= [-1, 0]) & (x <= [1, 2]))
        errors[name] = abs(integrate(x, w, g) - exact)
    assert errors["gauss"] < 1e-10 and errors["trapezoid"] < 1e-3
    assert errors["qmc"] < errors["monte_carlo"] and errors["qmc"] < 1e-3
    with pytest.raises(ValueError, match="unknown quadrature rule"):
        rule("simpson", bounds, 3)


# ---- a task's Gram quadrature by name (task keys rank_rule, error_points; docs/quadrature.md) ----


def _fit1d(**keys):
    from staircase.problems import make_task

    return make_task("multifreq1d", frequencies=[1.0, 3.0], amplitudes=[1.0, 0.5], train_points=64, **keys)


def test_a_task_without_rank_rule_measures_on_the_points_it_always_did():
    """The default is the rule and error grid every task used before the keys existed: the trapezoid
    rule, and an error grid of 2 n - 1 points that contains the rank grid."""
    task = _fit1d(rank_points=101)
    x, w = task.rank_points()
    x_ref, w_ref = trapezoid_1d(-1.0, 1.0, 101)
    np.testing.assert_array_equal(x[:, 0], x_ref)
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(task.error_points()[:, 0], np.linspace(-1.0, 1.0, 201))
    assert task.point_counts() == {"train": 64, "rank": 101, "error": 201}


def test_rank_rule_gauss_keeps_the_error_grid_it_is_given():
    from staircase.core.quadrature import gauss_legendre_1d

    task = _fit1d(rank_points=21, rank_rule="gauss", error_points=201)
    x, w = task.rank_points()
    x_ref, w_ref = gauss_legendre_1d(-1.0, 1.0, 21)
    np.testing.assert_allclose(x[:, 0], x_ref)
    np.testing.assert_allclose(w, w_ref)
    np.testing.assert_array_equal(task.error_points()[:, 0], np.linspace(-1.0, 1.0, 201))
    assert task.point_counts() == {"train": 64, "rank": 21, "error": 201}


def test_rank_rule_counts_tensor_rules_per_dimension_and_random_rules_in_all():
    from staircase.problems import make_task

    grid = make_task(
        "multifreq2d", wavevectors=[[1.0, 1.0]], amplitudes=[1.0], phases=[[0.0, 0.0]], train_points=8,
        rank_points=16, rank_rule="gauss", error_points=41,
    )  # fmt: skip
    assert len(grid.rank_points()[0]) == 256 and grid.point_counts()["rank"] == 256
    assert len(grid.error_points()) == 41**2
    ridge = make_task(
        "ridge", dim=8, frequencies=[1.0], amplitudes=[1.0], train_points=64, rank_points=512, seed=0, rank_rule="qmc",
        error_points=300,
    )  # fmt: skip
    x, w = ridge.rank_points()
    assert x.shape == (512, 8) and np.allclose(w, 256 / 512) and len(ridge.error_points()) == 300
    assert np.array_equal(x, ridge.rank_points()[0])  # seeded: the same points every time


def test_an_unknown_rank_rule_is_refused_by_name():
    with pytest.raises(ValueError, match="rank_rule 'simpson' is not a rule"):
        _fit1d(rank_points=101, rank_rule="simpson")


def test_gram_cost_follows_the_point_count():
    """Forming the Gram matrix on a quarter of the points costs well under half the time (the
    measured ratio, on a shared machine, is in PERFORMANCE.md)."""
    import time

    from staircase.core import rank as rk

    rng = np.random.default_rng(0)
    phi = {n: rng.standard_normal((3, n, 40)) for n in (201, 801)}
    cost = {}
    for n, features in phi.items():
        w = np.full(n, 2.0 / n)
        best = np.inf
        for _ in range(5):
            t0 = time.thread_time()
            for _ in range(20):
                rk.gram(features, w)
            best = min(best, time.thread_time() - t0)
        cost[n] = best
    assert cost[201] < 0.5 * cost[801], cost
