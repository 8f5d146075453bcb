"""Quadrature rules on boxes: points x_k and weights w_k with sum_k w_k g(x_k) ~ integral of g.

A Gram matrix built with these weights approximates the L2(Omega) inner products of the neurons
(the "integral" normalisation of paper A); weights 1/N give the "mean" normalisation instead.

Rules: composite trapezoid (``trapezoid_1d``, its tensor product ``trapezoid_box``), Gauss-Legendre
(``gauss_legendre_1d``, ``gauss_legendre_box``), Monte Carlo (``monte_carlo_box``) and scrambled
Sobol quasi-Monte Carlo (``quasi_monte_carlo_box``); ``rule`` picks one by name. How many points a
rule needs for the eps-ranks of a trained network: :mod:`staircase.benchmarks.quadcheck`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import roots_legendre  # numpy's leggauss took 28 s for n = 3000, this 0.4 s


def trapezoid_1d(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform grid of n >= 2 points on [a, b] with composite trapezoid weights."""
    if n < 2:
        raise ValueError(f"trapezoid rule needs at least 2 points, got {n}")
    x = np.linspace(a, b, n)
    w = np.full(n, (b - a) / (n - 1))
    w[[0, -1]] *= 0.5
    return x, w


def trapezoid_box(bounds: list[tuple[float, float]], n_per_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product trapezoid rule on a box; returns points (n^d, d) and weights (n^d,)."""
    return _tensor([trapezoid_1d(a, b, n_per_dim) for a, b in bounds])


def gauss_legendre_1d(a: float, b: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n Gauss-Legendre nodes on [a, b] (exact for polynomials of degree 2n - 1) and their weights."""
    if n < 1:
        raise ValueError(f"Gauss-Legendre rule needs at least 1 point, got {n}")

    t, w = roots_legendre(n)
    return a + (b - a) * (t + 1) / 2, w * (b - a) / 2


def _tensor(grids: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    mesh = np.meshgrid(*[g[0] for g in grids], indexing="ij")
    weights = np.meshgrid(*[g[1] for g in grids], indexing="ij")
    x = np.stack([m.ravel() for m in mesh], axis=1)
    w = np.prod(np.stack([m.ravel() for m in weights], axis=1), axis=1)
    return x, w


def gauss_legendre_box(bounds: list[tuple[float, float]], n_per_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product Gauss-Legendre rule on a box; returns points (n^d, d) and weights (n^d,)."""
    return _tensor([gauss_legendre_1d(a, b, n_per_dim) for a, b in bounds])


def quasi_monte_carlo_box(bounds: list[tuple[float, float]], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points of a scrambled Sobol sequence in a box (seeded) with equal weights |Omega| / n: a
    quasi-Monte Carlo rule, whose error falls nearly like 1/n instead of Monte Carlo's 1/sqrt(n) for
    smooth integrands (n a power of 2 keeps the sequence balanced)."""
    from scipy.stats import qmc  # on demand, as in staircase.networks.init: 0.6 s per process

    lo = np.array([a for a, _ in bounds], dtype=float)
    hi = np.array([b for _, b in bounds], dtype=float)
    x = lo + (hi - lo) * qmc.Sobol(len(bounds), scramble=True, seed=seed).random(n)
    return x, np.full(n, box_volume(bounds) / n)


def monte_carlo_box(bounds: list[tuple[float, float]], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uniform random points in a box with equal weights |Omega| / n (for d >= 3)."""
    rng = np.random.default_rng(seed)
    lo = np.array([a for a, _ in bounds], dtype=float)
    hi = np.array([b for _, b in bounds], dtype=float)
    x = lo + (hi - lo) * rng.random((n, len(bounds)))
    return x, np.full(n, box_volume(bounds) / n)


def box_volume(bounds: list[tuple[float, float]]) -> float:
    return float(np.prod([b - a for a, b in bounds]))


RULES = ("trapezoid", "gauss", "monte_carlo", "qmc")
TENSOR_RULES = ("trapezoid", "gauss")  # n points per dimension; the others n points in all


def rule(name: str, bounds: list[tuple[float, float]], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, d) and weights (N,) of a named rule on the box ``bounds``: ``trapezoid`` and
    ``gauss`` (tensor products, ``n`` points per dimension), ``monte_carlo`` and ``qmc`` (``n``
    points in all, seeded)."""
    if name == "trapezoid":
        return trapezoid_box(bounds, n)
    if name == "gauss":
        return gauss_legendre_box(bounds, n)
    if name == "monte_carlo":
        return monte_carlo_box(bounds, n, seed)
    if name == "qmc":
        return quasi_monte_carlo_box(bounds, n, seed)
    raise ValueError(f"unknown quadrature rule {name!r}; choose one of {list(RULES)}")
