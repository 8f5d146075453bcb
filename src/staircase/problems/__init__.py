"""Learning problems. A task knows its domain, training data, loss, exact solution, the points on
which the epsilon-rank is measured, and the linear system its loss lower bound is built on.

Add a task by subclassing ``Task`` and registering it in ``TASKS``; the config names it by key.

Layer: problems (domains, targets, PDE operators, losses). Modules: ``fitting`` / ``fitting_nd``
(function fitting), ``pde`` (physics-informed losses), ``targets`` (target functions),
``operators`` (input derivatives of a network: the Laplacian a PDE loss needs), ``datasets``
(papers B and C: digits, Gaussian mixtures, separable sets). Imports only records, core, errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from staircase.core import quadrature
from staircase.lazytorch import torch


@dataclass
class BoundSystem:
    """The loss written as sum_k weights_k (features_k . coef - target_k)^2, per model.

    features: (S, M, n) with a column of ones for the bias; coef: (S, n); target, weights: (M,).
    """

    features: np.ndarray
    target: np.ndarray
    weights: np.ndarray
    coef: np.ndarray


class Task(ABC):
    """Base class. Subclasses set ``d`` (input dimension) and ``bounds`` (the box Omega)."""

    d: int
    bounds: list[tuple[float, float]]

    def __init__(self, **params):
        self.params = params

    @abstractmethod
    def exact(self, x: np.ndarray) -> np.ndarray:
        """The exact solution / target function at points x (N, d) -> (N,)."""

    @abstractmethod
    def train_arrays(self) -> dict[str, np.ndarray]:
        """The arrays the loss needs (points, targets), as numpy: what a config check or a cost
        projection sizes without torch."""

    def train_data(self, device, dtype) -> dict[str, torch.Tensor]:
        """:meth:`train_arrays` as tensors the loss needs, built once."""
        return {k: torch.as_tensor(v, device=device, dtype=dtype) for k, v in self.train_arrays().items()}

    @abstractmethod
    def loss(self, model, data) -> torch.Tensor:
        """Per-model loss, shape (S,)."""

    # ---- mini-batches (train.batch_size) -----------------------------------------------------
    # The entries of ``train_data`` that are drawn per step, all indexed by the same points; the
    # others (a PDE's boundary points) are used in full at every step.
    batched_keys: tuple[str, ...] = ()

    def batch_points(self, data=None) -> int:
        """How many training points a mini-batch is drawn from (in ``data``, else in
        :meth:`train_arrays`)."""
        if data is None:
            data = self.train_arrays()
        return int(data[self.batched_keys[0]].shape[0])

    def minibatch(self, data, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """``data`` with each model's own points: ``index`` (S, B) picks, for model s, the rows
        ``index[s]`` of every batched entry (which becomes (S, B, ...)); the loss of a model is then
        taken on its own batch (a model accepts points (S, N, d), one set per model)."""
        return {k: (v[index] if k in self.batched_keys else v) for k, v in data.items()}

    @abstractmethod
    def bound_system(self, model, data) -> BoundSystem:
        """The loss as a linear least-squares problem in the output layer."""

    # ---- measurement points (task keys rank_points, rank_rule, error_points) -------------------
    # The Gram quadrature is the rule its accuracy check picks (`staircase rank-points`,
    # docs/quadrature.md); the error grid is set apart from it, so that a change of rule moves the
    # eps-ranks only, not the error's points. Tasks on a grid default to what they always used: a
    # trapezoid rule and a trapezoid grid of 2 rank_points - 1 per dimension for the error.
    default_rule = "trapezoid"
    rank_seed = 0  # the point stream of the random rules

    def set_measurement_points(self, rank_points: int, rank_rule: str | None, error_points: int | None) -> None:
        self.rank_rule = rank_rule or self.default_rule
        if self.rank_rule not in quadrature.RULES:
            choices = list(quadrature.RULES)
            raise ValueError(f"task: rank_rule {self.rank_rule!r} is not a rule; choose one of {choices}")
        self.n_rank = rank_points
        self.n_error = error_points or 2 * rank_points - 1

    def rank_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature points (N, d) and weights (N,) for the Gram matrix (integral normalisation)."""
        return quadrature.rule(self.rank_rule, self.bounds, self.n_rank, seed=self.rank_seed)

    def error_points(self) -> np.ndarray:
        """Points (N, d) on which the relative L2 error against ``exact`` is measured."""
        return quadrature.trapezoid_box(self.bounds, self.n_error)[0]

    def rank_point_count(self) -> int:
        return self.n_rank**self.d if self.rank_rule in quadrature.TENSOR_RULES else self.n_rank

    @abstractmethod
    def point_counts(self) -> dict[str, int]:
        """How many points each set above holds, without building them: ``train`` (all the
        points the loss evaluates), ``rank`` and ``error``. The memory estimate (staircase.workflow.memory)
        sizes a job from these before it starts."""


from staircase.problems.fitting import MultiFrequency1D  # noqa: E402
from staircase.problems.fitting_nd import MultiFrequency2D, RidgeFunction  # noqa: E402
from staircase.problems.pde import Helmholtz2D, Poisson1D, Poisson2D, ReactionDiffusion2D  # noqa: E402

TASKS: dict[str, type[Task]] = {
    "multifreq1d": MultiFrequency1D,
    # 2-D / high-dimensional fitting and PDE problems (issue 3)
    "multifreq2d": MultiFrequency2D,
    "ridge": RidgeFunction,
    "poisson1d": Poisson1D,
    "poisson2d": Poisson2D,
    "helmholtz2d": Helmholtz2D,
    "reaction_diffusion2d": ReactionDiffusion2D,
}


def make_task(name: str, **params) -> Task:
    try:
        cls = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None
    return cls(**params)
