"""Function fitting in more than one dimension: a 2-D multi-frequency target on a grid, and a
high-dimensional target with low-dimensional structure on random points."""

from __future__ import annotations

import numpy as np

from staircase.core import quadrature
from staircase.problems.fitting import FittingTask
from staircase.problems.targets import RidgeSum, SineProducts, random_directions


class MultiFrequency2D(FittingTask):
    """f(x, y) = sum_m a_m sin(pi (k_m1 x + p_m1)) sin(pi (k_m2 y + p_m2)) on [-1, 1]^2.

    Training: MSE on a uniform train_points x train_points grid. Epsilon-rank: a tensor rule
    (rank_rule, trapezoid by default) with rank_points per dimension. Error: on a grid of
    error_points per dimension (2 rank_points - 1 by default).
    """

    d = 2
    bounds = [(-1.0, 1.0), (-1.0, 1.0)]

    def __init__(
        self,
        wavevectors,
        amplitudes,
        phases,
        train_points: int,
        rank_points: int,
        rank_rule: str | None = None,
        error_points: int | None = None,
    ):
        super().__init__(wavevectors=wavevectors, amplitudes=amplitudes, phases=phases)
        self.target = SineProducts(wavevectors, amplitudes, phases, d=2)
        self.n_train = train_points
        self.set_measurement_points(rank_points, rank_rule, error_points)

    def exact(self, x):
        return self.target(x)

    def train_points(self):
        return quadrature.trapezoid_box(self.bounds, self.n_train)[0]

    def point_counts(self):
        return {"train": self.n_train**2, "rank": self.rank_point_count(), "error": self.n_error**2}


class RidgeFunction(FittingTask):
    """f(x) = sum_i a_i sin(pi k_i w_i . x) on [-1, 1]^dim with one fixed random unit direction w_i
    per term: high input dimension, but the target varies along len(frequencies) directions only.

    Training points: train_points uniform random points. Epsilon-rank: rank_points points of
    rank_rule (Monte Carlo by default; qmc: scrambled Sobol), weights |Omega| / N. Error:
    error_points other random points (rank_points by default). The
    directions and the three point sets come from independent streams of ``seed``.
    """

    default_rule = "monte_carlo"

    def __init__(
        self,
        dim: int,
        frequencies,
        amplitudes,
        train_points: int,
        rank_points: int,
        seed: int,
        rank_rule: str | None = None,
        error_points: int | None = None,
    ):
        super().__init__(dim=dim, frequencies=frequencies, amplitudes=amplitudes, seed=seed)
        if dim < 1:
            raise ValueError(f"task: dim must be >= 1, got {dim}")
        self.d = dim
        self.bounds = [(-1.0, 1.0)] * dim
        seeds = np.random.SeedSequence(seed).spawn(4)
        dirs = random_directions(len(frequencies), dim, int(seeds[0].generate_state(1)[0]))
        self.target = RidgeSum(dirs, frequencies, amplitudes)
        self._seeds = [int(s.generate_state(1)[0]) for s in seeds[1:]]
        self.rank_seed = self._seeds[1]
        self.n_train = train_points
        self.set_measurement_points(rank_points, rank_rule, error_points or rank_points)

    def exact(self, x):
        return self.target(x)

    def train_points(self):
        return quadrature.monte_carlo_box(self.bounds, self.n_train, seed=self._seeds[0])[0]

    def error_points(self):
        return quadrature.monte_carlo_box(self.bounds, self.n_error, seed=self._seeds[2])[0]

    def point_counts(self):
        return {"train": self.n_train, "rank": self.rank_point_count(), "error": self.n_error}
