"""Known-answer tests for Gram matrices, spectra, the epsilon-rank and peer metrics (src/staircase/rank.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from numpy.polynomial import legendre

from staircase.core.quadrature import trapezoid_1d
from staircase.core.rank import (
    PEER_METRICS,
    effective_rank,
    eps_rank,
    eps_rank_from_spectrum,
    gram,
    numerical_rank,
    singular_values_from_spectrum,
    spectrum,
    spectrum_of_gram,
    stable_rank,
)

pytestmark = pytest.mark.usefixtures("single_blas_thread")


def sine_features(n_points: int = 201, n_neurons: int = 8):
    """sin(k pi x), k = 1..n, on [-1, 1]: orthonormal in L2(-1, 1), and the trapezoid rule is exact
    for their products (trigonometric polynomials of degree < n_points - 1 on a full period)."""
    x, w = trapezoid_1d(-1.0, 1.0, n_points)
    k = np.arange(1, n_neurons + 1)
    return np.sin(np.pi * x[:, None] * k[None, :]), w


def random_features(seed: int, n_points: int = 60, n_neurons: int = 7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n_points, 1))
    return np.tanh(x @ rng.normal(0, 2, (1, n_neurons)) + rng.normal(0, 1, n_neurons))


# ---- gram --------------------------------------------------------------------------------------


def test_gram_of_orthonormal_sines_is_identity():
    phi, w = sine_features()
    np.testing.assert_allclose(gram(phi, w), np.eye(8), rtol=0, atol=1e-13)


def test_gram_of_orthonormal_sines_on_unit_interval():
    x, w = trapezoid_1d(0.0, 1.0, 301)
    phi = np.sqrt(2) * np.sin(np.pi * np.outer(x, np.arange(1, 6)))
    np.testing.assert_allclose(gram(phi, w), np.eye(5), rtol=0, atol=1e-13)


def test_gram_of_normalised_legendre_is_identity():
    x, w = trapezoid_1d(-1.0, 1.0, 4001)
    degrees = range(6)
    phi = np.stack([np.sqrt((2 * k + 1) / 2) * legendre.legval(x, np.eye(6)[k]) for k in degrees], axis=1)
    m = gram(phi, w)
    np.testing.assert_allclose(m, np.eye(6), rtol=0, atol=1e-4)  # trapezoid error O(h^2)
    assert not np.allclose(m, np.eye(6), rtol=0, atol=1e-12)  # ... which is really there
    # refining the grid cuts the error by ~4 (second order)
    x2, w2 = trapezoid_1d(-1.0, 1.0, 8001)
    phi2 = np.stack([np.sqrt((2 * k + 1) / 2) * legendre.legval(x2, np.eye(6)[k]) for k in degrees], axis=1)
    ratio = np.abs(m - np.eye(6)).max() / np.abs(gram(phi2, w2) - np.eye(6)).max()
    assert 3.5 < ratio < 4.5


def test_gram_mean_normalisation_is_integral_over_volume():
    # weights 1/N (the default) approximate int phi_i phi_j / |Omega| = I / 2 on [-1, 1]
    phi, _ = sine_features(n_points=2001)
    np.testing.assert_allclose(gram(phi), 0.5 * np.eye(8), rtol=0, atol=1e-3)


def test_gram_default_weights_are_one_over_n():
    phi = random_features(0)
    n = phi.shape[0]
    np.testing.assert_allclose(gram(phi), phi.T @ phi / n, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(gram(phi), gram(phi, np.full(n, 1.0 / n)), rtol=1e-14, atol=0)


def test_gram_matches_explicit_sum_and_is_exactly_symmetric():
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(50, 6))
    w = rng.uniform(0.1, 2.0, 50)
    m = gram(phi, w)
    np.testing.assert_allclose(m, np.einsum("k,ki,kj->ij", w, phi, phi), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(m, m.T)
    assert m.dtype == np.float64 and m.shape == (6, 6)


def test_gram_torch_float32_gives_float64_numpy_equal_to_numpy_path():
    rng = np.random.default_rng(2)
    phi32 = rng.normal(size=(80, 5)).astype(np.float32)
    w = rng.uniform(0.0, 1.0, 80)
    for weights in (None, w):
        m_torch = gram(torch.from_numpy(phi32), weights)
        m_np = gram(phi32, weights)
        assert isinstance(m_torch, np.ndarray) and m_torch.dtype == np.float64
        assert m_np.dtype == np.float64
        np.testing.assert_allclose(m_torch, m_np, rtol=1e-13, atol=1e-15)
    # the cast happens before the products: the result is the float64 Gram of the float32 values
    exact = np.einsum("k,ki,kj->ij", w, phi32.astype(np.float64), phi32.astype(np.float64))
    np.testing.assert_allclose(gram(torch.from_numpy(phi32), w), exact, rtol=1e-13, atol=1e-15)


def test_gram_of_tensor_requiring_grad():
    phi = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    m = gram(phi)
    np.testing.assert_allclose(m, (phi.detach().numpy().T @ phi.detach().numpy()) / 30, rtol=1e-13)


def test_gram_batched_torch():
    rng = np.random.default_rng(3)
    phi = rng.normal(size=(4, 40, 6))
    w = rng.uniform(0.1, 1.0, 40)
    for weights in (None, w):
        m = gram(torch.from_numpy(phi).to(torch.float32), weights)
        assert m.shape == (4, 6, 6) and m.dtype == np.float64
        for s in range(4):
            np.testing.assert_allclose(m[s], gram(phi[s].astype(np.float32), weights), rtol=1e-12, atol=1e-14)
    spec = spectrum(torch.from_numpy(phi), w)
    assert spec.shape == (4, 6)
    for s in range(4):
        np.testing.assert_allclose(spec[s], spectrum(phi[s], w), rtol=1e-12, atol=1e-14)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gram_on_cuda_matches_cpu():
    rng = np.random.default_rng(6)
    phi = rng.normal(size=(3, 500, 16)).astype(np.float32)
    w = rng.uniform(0.0, 1.0, 500)
    m = gram(torch.from_numpy(phi).cuda(), w)  # formed on the GPU in float64, returned on the host
    assert isinstance(m, np.ndarray) and m.dtype == np.float64
    np.testing.assert_allclose(m, gram(torch.from_numpy(phi), w), rtol=1e-12, atol=1e-12)


def test_gram_batched_numpy():
    rng = np.random.default_rng(4)
    phi = rng.normal(size=(3, 25, 5))
    m = gram(phi)
    assert m.shape == (3, 5, 5)
    for s in range(3):
        np.testing.assert_allclose(m[s], gram(phi[s]), rtol=1e-13)


@pytest.mark.parametrize("bad", [np.ones(59) / 59, np.ones(61) / 61, np.ones((60, 1)) / 60, np.ones((1, 60)) / 60])
@pytest.mark.parametrize("as_torch", [False, True])
def test_gram_wrong_weight_shape_raises(bad, as_torch):
    phi = random_features(5)  # 60 points
    feats = torch.from_numpy(phi) if as_torch else phi
    with pytest.raises(ValueError, match="weights have shape"):
        gram(feats, bad)


# ---- spectrum ----------------------------------------------------------------------------------


def test_spectrum_sorted_decreasing_and_matches_eigvalsh():
    for seed in range(5):
        phi = random_features(seed)
        spec = spectrum(phi)
        assert np.all(np.diff(spec) <= 0)
        np.testing.assert_allclose(
            spec, np.sort(np.linalg.eigvalsh(phi.T @ phi / len(phi)))[::-1], rtol=1e-10, atol=1e-15
        )


def test_spectrum_of_gram_known_values_and_batch():
    m = np.array([[[2.0, 0.0], [0.0, 5.0]], [[1.0, 1.0], [1.0, 1.0]]])
    spec = spectrum_of_gram(m)
    np.testing.assert_allclose(spec, [[5.0, 2.0], [2.0, 0.0]], atol=1e-15)
    assert spec.flags.c_contiguous  # a copy, not a negative-stride view


def test_spectrum_of_scaled_sines_is_the_squared_scales():
    phi, w = sine_features()
    scales = np.array([3.0, 0.5, 2.0, 1.0, 1e-3, 0.1, 4.0, 0.7])
    np.testing.assert_allclose(spectrum(phi * scales, w), np.sort(scales**2)[::-1], rtol=1e-12, atol=1e-14)


# ---- eps_rank ----------------------------------------------------------------------------------


def test_eps_rank_orthonormal_features():
    phi, w = sine_features()
    for eps in (1e-6, 0.5, 0.999):
        assert eps_rank(phi, eps, w) == 8
    assert eps_rank(phi, 1.001, w) == 0
    assert isinstance(eps_rank(phi, 0.5, w), int)


def test_eps_rank_duplicate_neuron_adds_zero_eigenvalue_and_keeps_rank():
    phi, w = sine_features()
    dup = np.hstack([phi, phi[:, [2]]])
    spec = spectrum(dup, w)
    # eigenvalues: 2 (the duplicated direction, counted once), 1 (x 7), and an exact zero
    np.testing.assert_allclose(spec, [2.0] + [1.0] * 7 + [0.0], rtol=0, atol=1e-12)
    for eps in (1e-8, 1e-3, 0.5):
        assert eps_rank(dup, eps, w) == eps_rank(phi, eps, w) == 8
    assert numerical_rank(spec) == 8


@pytest.mark.parametrize("seed", range(20))
def test_eps_rank_duplicate_neuron_generic_features(seed):
    # the Gram of [Phi, phi_j] contains the Gram of Phi as a principal submatrix: Cauchy interlacing
    # mu_1 >= lam_1 >= mu_2 >= ... >= lam_n >= mu_{n+1}, with mu_{n+1} = 0 for a duplicate. So the
    # exact rank is unchanged and the eps-rank can rise by at most one.
    phi = random_features(seed)
    j = seed % phi.shape[1]
    lam = spectrum(phi)
    mu = spectrum(np.hstack([phi, phi[:, [j]]]))
    tol = 1e-12 * lam[0]
    assert abs(mu[-1]) < tol
    assert np.all(mu[:-1] >= lam - tol) and np.all(lam >= mu[1:] - tol)
    for eps in np.geomspace(1e-8, lam[0], 9):
        r_old = eps_rank_from_spectrum(lam, eps)
        assert eps_rank_from_spectrum(mu, eps) in (r_old, r_old + 1)
    assert np.sum(mu > tol) == np.sum(lam > tol) == np.linalg.matrix_rank(phi)


def test_eps_rank_duplicate_can_lift_a_direction_over_eps():
    # one neuron with squared norm 0.6 and eps = 1: rank 0; duplicated, the Gram [[.6, .6], [.6, .6]]
    # has eigenvalues 1.2 and 0, so the eps-rank becomes 1 (duplicating is not rank-neutral in general)
    phi, w = sine_features()
    one = np.sqrt(0.6) * phi[:, :1]
    assert eps_rank(one, 1.0, w) == 0
    assert eps_rank(np.hstack([one, one]), 1.0, w) == 1


@pytest.mark.parametrize("eps", [1e-1, 1e-3, 1e-6])
def test_eps_rank_scaling_one_neuron(eps):
    # orthonormal features: scaling neuron j by c makes its eigenvalue c^2
    phi, w = sine_features()
    n = phi.shape[1]
    for j in (0, 4, 7):
        for c, expected in [
            (np.sqrt(eps) / 2, n - 1),  # c^2 = eps / 4 <= eps: drops out
            (np.sqrt(eps) * 0.99, n - 1),
            (np.sqrt(eps) * 1.01, n),  # just above eps: still counted
            (2.0, n),
            (0.0, n - 1),
        ]:
            scaled = phi.copy()
            scaled[:, j] *= c
            assert eps_rank(scaled, eps, w) == expected, (j, c)
            assert np.min(np.abs(spectrum(scaled, w) - c**2)) < 1e-12


def test_eps_rank_is_strictly_greater_and_ignores_negative_rounding():
    spec = np.array([2.0, 1.0, 0.5, 1e-17, -3e-16])
    assert eps_rank_from_spectrum(spec, 0.5) == 2  # lambda == eps is not counted
    assert eps_rank_from_spectrum(spec, 0.4999) == 3
    assert eps_rank_from_spectrum(spec, 1e-20) == 4  # the negative one never counts
    assert eps_rank_from_spectrum(spec, 10.0) == 0


def test_eps_rank_list_of_eps_returns_array():
    spec = np.array([4.0, 2.0, 1.0, 0.5, 0.1, 1e-5])
    out = eps_rank_from_spectrum(spec, [1e-1, 1e-3, 3.0, 1e-9])
    assert isinstance(out, np.ndarray) and out.shape == (4,)
    np.testing.assert_array_equal(out, [4, 5, 1, 6])
    phi, w = sine_features()
    np.testing.assert_array_equal(eps_rank(phi * np.arange(1, 9), [0.5, 10.0, 100.0], w), [8, 5, 0])


def test_eps_rank_batched_spectra():
    spec = np.array([[4.0, 2.0, 1.0], [1.0, 0.01, 0.0]])
    np.testing.assert_array_equal(eps_rank_from_spectrum(spec, 0.5), [3, 1])
    out = eps_rank_from_spectrum(spec, [0.5, 1e-3])
    assert out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[3, 3], [1, 2]])


def test_eps_rank_monotone_in_eps():
    for seed in range(5):
        spec = spectrum(random_features(seed, n_neurons=20))
        ranks = eps_rank_from_spectrum(spec, np.geomspace(1e-14, 10, 40))
        assert np.all(np.diff(ranks) <= 0)


@pytest.mark.parametrize("bad", [0.0, -1e-3, [1e-3, 0.0], [-1.0]])
def test_eps_rank_nonpositive_eps_raises(bad):
    with pytest.raises(ValueError, match="eps must be positive"):
        eps_rank_from_spectrum(np.array([1.0, 0.5]), bad)
    with pytest.raises(ValueError, match="eps must be positive"):
        eps_rank(random_features(0), bad)


# ---- peer metrics ------------------------------------------------------------------------------


def test_singular_values_clip_negative_eigenvalues():
    np.testing.assert_allclose(singular_values_from_spectrum([9.0, 4.0, 0.0, -1e-16]), [3.0, 2.0, 0.0, 0.0])


@pytest.mark.parametrize("k", [1, 2, 5, 17])
def test_effective_rank_of_k_equal_singular_values(k):
    spec = np.concatenate([np.full(k, 2.5), np.zeros(4), [-1e-17]])
    assert effective_rank(spec) == pytest.approx(k, rel=1e-12)


def test_effective_rank_known_value():
    # singular values (3, 1): p = (3/4, 1/4), exp(H) = 4 / 3^(3/4)
    assert effective_rank(np.array([9.0, 1.0])) == pytest.approx(4.0 / 3.0**0.75, rel=1e-12)


@pytest.mark.parametrize("n", [1, 3, 10])
def test_stable_rank_of_identity_and_rank_one(n):
    assert stable_rank(np.linalg.eigvalsh(np.eye(n))) == pytest.approx(n, rel=1e-14)
    v = np.arange(1.0, n + 1.0)
    assert stable_rank(spectrum_of_gram(np.outer(v, v))) == pytest.approx(1.0, rel=1e-12)
    assert stable_rank(np.array([4.0, 1.0])) == pytest.approx(1.25)


def test_numerical_rank_excludes_singular_values_below_rtol():
    # singular values 1, 1e-2, 1e-6, 1e-8: with rtol 1e-6 only the first two count (strictly greater)
    spec = np.array([1.0, 1e-4, 1e-12, 1e-16])
    assert numerical_rank(spec) == 2
    assert numerical_rank(spec, rtol=1e-7) == 3
    assert numerical_rank(spec, rtol=1e-1) == 1
    assert numerical_rank(spec * 1e6, rtol=1e-7) == 3  # relative to the largest


def test_peer_metrics_batched_and_scale_invariant():
    rng = np.random.default_rng(0)
    spec = np.sort(rng.exponential(size=(5, 12)), axis=-1)[:, ::-1] ** 3
    for name, fn in PEER_METRICS.items():
        out = fn(spec)
        assert out.shape == (5,), name
        np.testing.assert_allclose(fn(spec * 1e3), out, rtol=1e-12, err_msg=name)
        for s in range(5):
            assert fn(spec[s]) == pytest.approx(out[s], rel=1e-14), name
        assert np.all(out >= 1 - 1e-12) and np.all(out <= 12 + 1e-12), name
    assert set(PEER_METRICS) == {"effective_rank", "stable_rank", "numerical_rank"}


def test_peer_metrics_ordering_for_a_decaying_spectrum():
    # for any spectrum stable rank <= effective rank <= numerical rank (at rtol 0: the exact rank)
    rng = np.random.default_rng(1)
    for _ in range(20):
        spec = np.sort(rng.exponential(size=8) ** 4)[::-1]
        assert stable_rank(spec) <= effective_rank(spec) + 1e-12
        assert effective_rank(spec) <= numerical_rank(spec, rtol=0.0) + 1e-12


def test_peer_metrics_all_zero_spectrum_is_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            for spec in (np.zeros(6), np.array([0.0, -1e-18])):
                for name, fn in PEER_METRICS.items():
                    val = fn(spec)
                    assert np.isfinite(val) and val == 0, name
            batched = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0]])
            np.testing.assert_allclose(effective_rank(batched), [0.0, 2.0])
            np.testing.assert_allclose(stable_rank(batched), [0.0, 2.0])
            np.testing.assert_array_equal(numerical_rank(batched), [0, 2])
