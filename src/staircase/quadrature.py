"""Quadrature rules on boxes: points x_k and weights w_k with sum_k w_k g(x_k) ~ integral of g.

A Gram matrix built with these weights approximates the L2(Omega) inner products of the neurons
(the "integral" normalisation of paper A); weights 1/N give the "mean" normalisation instead.
"""

from __future__ import annotations

import numpy as np


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
    grids = [trapezoid_1d(a, b, n_per_dim) for a, b in bounds]
    mesh = np.meshgrid(*[g[0] for g in grids], indexing="ij")
    weights = np.meshgrid(*[g[1] for g in grids], indexing="ij")
    x = np.stack([m.ravel() for m in mesh], axis=1)
    w = np.prod(np.stack([m.ravel() for m in weights], axis=1), axis=1)
    return x, w


def monte_carlo_box(bounds: list[tuple[float, float]], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uniform random points in a box with equal weights |Omega| / n (for d >= 3)."""
    rng = np.random.default_rng(seed)
    lo = np.array([a for a, _ in bounds], dtype=float)
    hi = np.array([b for _, b in bounds], dtype=float)
    x = lo + (hi - lo) * rng.random((n, len(bounds)))
    return x, np.full(n, box_volume(bounds) / n)


def box_volume(bounds: list[tuple[float, float]]) -> float:
    return float(np.prod([b - a for a, b in bounds]))
