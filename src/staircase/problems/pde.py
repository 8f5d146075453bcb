"""PDE problems with physics-informed losses and manufactured exact solutions.

``PDETask`` is the base class for linear second-order problems on a box Omega,

    L u = alpha Delta u + beta u = f   in Omega,        u = g   on the boundary,

trained with the physics-informed loss

    loss = mean_{x in X_int} (L u(x) - f(x))^2 + boundary_weight * mean_{x in X_bd} (u(x) - g(x))^2.

A subclass fixes the operator (``laplacian_coef`` alpha and ``mass_coef`` beta, or overrides
``operator`` with any map linear in (u, Delta u)), the exact solution (``exact``), the source
(``source``) and the collocation points. The Laplacian of the network comes from
``staircase.problems.operators.laplacian``: the exact forward Laplacian when the model has
``forward_laplacian`` (StackedMLP), double backward otherwise. To train with another loss on the
same problem (e.g. other weights), call ``residuals(model, data)``: it returns the interior and
boundary residuals (S, N_int) and (S, N_bd), differentiable with respect to the weights.

Loss lower bound (docs/quantities.md): the residual is linear in the output layer u = b + sum a_j
phi_j, so the loss is a weighted least-squares problem whose "features" are the operator applied to
[1, phi_1..phi_n] at interior points stacked on the boundary trace [1, phi] at boundary points,
with weights 1/N_int and boundary_weight/N_bd and target [f; g] (``bound_system``).
"""

from __future__ import annotations

import numpy as np

from staircase.lazytorch import no_grad, torch
from staircase.problems import BoundSystem, Task
from staircase.problems.operators import laplacian
from staircase.problems.targets import SineProducts


def interior_grid(bounds, n_per_dim: int) -> np.ndarray:
    """n^d points of a uniform grid strictly inside the box (the boundary nodes dropped)."""
    axes = [np.linspace(a, b, n_per_dim + 2)[1:-1] for a, b in bounds]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def boundary_grid(bounds, n_per_edge: int) -> np.ndarray:
    """Points on the boundary of a box: both end points in 1-D; in d >= 2 a uniform grid of
    n_per_edge points per dimension on every face (shared edges and corners once)."""
    d = len(bounds)
    if d == 1:
        return np.array([[bounds[0][0]], [bounds[0][1]]])
    axes = [np.linspace(a, b, n_per_edge) for a, b in bounds]
    faces = []
    for i in range(d):
        for end in bounds[i]:
            grid = [ax if j != i else np.array([end]) for j, ax in enumerate(axes)]
            mesh = np.meshgrid(*grid, indexing="ij")
            faces.append(np.stack([m.ravel() for m in mesh], axis=1))
    return np.unique(np.concatenate(faces), axis=0)


class PDETask(Task):
    """Linear second-order PDE with Dirichlet data and a physics-informed loss (see module doc).

    A mini-batch (``train.batch_size``) is a subset of the interior collocation points (with their
    source values); the boundary points are few (2 in 1-D) and carry their own weight in the loss,
    so all of them enter every step: the boundary term is not made noisy by the batching."""

    batched_keys = ("x_int", "f")

    laplacian_coef: float = -1.0  # alpha: -Delta u + ... by default
    mass_coef: float = 0.0  # beta

    def __init__(self, boundary_weight: float, **params):
        super().__init__(boundary_weight=boundary_weight, **params)
        if boundary_weight <= 0:
            raise ValueError(f"task: boundary_weight must be positive, got {boundary_weight}")
        self.boundary_weight = float(boundary_weight)

    # ---- the problem --------------------------------------------------------------------------
    def operator(self, value, lap):
        """L applied to a function given its values and Laplacians (arrays or tensors of equal
        shape). Must be linear in (value, lap): the loss lower bound relies on it."""
        return self.laplacian_coef * lap + self.mass_coef * value

    def source(self, x: np.ndarray) -> np.ndarray:
        """f at interior points (N, d) -> (N,); by default L applied to the exact solution, which
        needs ``exact_laplacian``."""
        return self.operator(self.exact(x), self.exact_laplacian(x))

    def exact_laplacian(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def boundary_values(self, x: np.ndarray) -> np.ndarray:
        """g at boundary points: the trace of the exact solution."""
        return self.exact(x)

    def interior_points(self) -> np.ndarray:
        raise NotImplementedError

    def boundary_points(self) -> np.ndarray:
        raise NotImplementedError

    # ---- the Task interface -------------------------------------------------------------------
    def train_arrays(self):
        xi, xb = self.interior_points(), self.boundary_points()
        return {"x_int": xi, "f": self.source(xi), "x_bd": xb, "g": self.boundary_values(xb)}

    def residuals(self, model, data) -> tuple[torch.Tensor, torch.Tensor]:
        """Interior residual L u - f (S, N_int) and boundary residual u - g (S, N_bd)."""
        der = laplacian(model, data["x_int"])
        r_int = self.operator(der.out[..., 0], der.lap_out[..., 0]) - data["f"]
        r_bd = model(data["x_bd"])[..., 0] - data["g"]
        return r_int, r_bd

    def loss(self, model, data):
        r_int, r_bd = self.residuals(model, data)
        return (r_int**2).mean(dim=-1) + self.boundary_weight * (r_bd**2).mean(dim=-1)

    @no_grad
    def bound_system(self, model, data):
        der = laplacian(model, data["x_int"], hidden=True)
        phi, lap_phi = der.hidden[-1].to(torch.float64), der.lap_hidden[-1].to(torch.float64)
        s, n_int, _ = phi.shape
        ones = torch.ones(s, n_int, 1, dtype=torch.float64, device=phi.device)
        interior = torch.cat([self.operator(ones, torch.zeros_like(ones)), self.operator(phi, lap_phi)], dim=-1)
        _, hid_bd = model(data["x_bd"], return_hidden=True)
        phi_bd = hid_bd[-1].to(torch.float64)
        n_bd = phi_bd.shape[1]
        boundary = torch.cat([torch.ones(s, n_bd, 1, dtype=torch.float64, device=phi.device), phi_bd], dim=-1)
        return BoundSystem(
            features=torch.cat([interior, boundary], dim=1).cpu().numpy(),
            target=torch.cat([data["f"], data["g"]]).to(torch.float64).cpu().numpy(),
            weights=np.concatenate([np.full(n_int, 1.0 / n_int), np.full(n_bd, self.boundary_weight / n_bd)]),
            coef=model.output_coefficients().detach().to(torch.float64).cpu().numpy(),
        )


class ManufacturedSines(PDETask):
    """A PDETask on [-1, 1]^d whose exact solution is a SineProducts function (multi-frequency,
    nonzero on the boundary when phases are); f and g are computed from it in closed form."""

    def __init__(
        self,
        d,
        wavevectors,
        amplitudes,
        phases,
        interior_points,
        boundary_points,
        rank_points,
        rank_rule=None,
        error_points=None,
        **params,
    ):
        super().__init__(wavevectors=wavevectors, amplitudes=amplitudes, phases=phases, **params)
        self.d = d
        self.bounds = [(-1.0, 1.0)] * d
        self.solution = SineProducts(wavevectors, amplitudes, phases, d=d)
        self.n_int = interior_points
        self.n_bd = boundary_points
        self.set_measurement_points(rank_points, rank_rule, error_points)

    def exact(self, x):
        return self.solution(x)

    def exact_laplacian(self, x):
        return self.solution.laplacian(x)

    def interior_points(self):
        return interior_grid(self.bounds, self.n_int)

    def boundary_points(self):
        return boundary_grid(self.bounds, self.n_bd)

    def point_counts(self):
        d = self.d
        boundary = 2 if d == 1 else 2 * d * self.n_bd ** (d - 1)  # faces of the box (shared edges counted twice)
        return {
            "train": self.n_int**d + boundary,
            "rank": self.rank_point_count(),
            "error": self.n_error**d,
        }


class Poisson1D(ManufacturedSines):
    """-u'' = f on [-1, 1], u(+-1) from u(x) = sum_m a_m sin(pi (k_m x + p_m)).

    interior_points uniform interior collocation points; rank_points nodes of rank_rule (trapezoid)."""

    def __init__(
        self,
        frequencies,
        amplitudes,
        phases,
        interior_points: int,
        rank_points: int,
        boundary_weight: float,
        rank_rule: str | None = None,
        error_points: int | None = None,
    ):
        super().__init__(
            1,
            frequencies,
            amplitudes,
            phases,
            interior_points,
            2,
            rank_points,
            rank_rule,
            error_points,
            boundary_weight=boundary_weight,
        )


class Poisson2D(ManufacturedSines):
    """-Delta u = f on [-1, 1]^2 with Dirichlet data from
    u(x, y) = sum_m a_m sin(pi (k_m1 x + p_m1)) sin(pi (k_m2 y + p_m2)).

    interior_points per dimension (an n x n interior grid), boundary_points per edge,
    rank_points per dimension (of rank_rule, trapezoid by default)."""

    def __init__(
        self,
        wavevectors,
        amplitudes,
        phases,
        interior_points: int,
        boundary_points: int,
        rank_points: int,
        boundary_weight: float,
        rank_rule: str | None = None,
        error_points: int | None = None,
    ):
        super().__init__(
            2,
            wavevectors,
            amplitudes,
            phases,
            interior_points,
            boundary_points,
            rank_points,
            rank_rule,
            error_points,
            boundary_weight=boundary_weight,
        )


def _check_not_resonant(k2: float, bounds, what: str) -> None:
    """Refuse k^2 at (or within 1e-3 relative of) a Dirichlet eigenvalue of -Delta on the box,
    sum_i (pi n_i / L_i)^2 with n_i >= 1, where the Dirichlet problem is not uniquely solvable."""
    lengths = np.array([b - a for a, b in bounds])
    n_max = int(np.ceil(np.sqrt(k2) * lengths.max() / np.pi)) + 1
    grids = np.meshgrid(*[np.arange(1, n_max + 1)] * len(bounds), indexing="ij")
    eig = sum((np.pi * g / length) ** 2 for g, length in zip(grids, lengths))
    closest = float(eig.flat[np.argmin(np.abs(eig - k2))])
    if abs(closest - k2) < 1e-3 * closest:
        raise ValueError(
            f"task: {what}^2 = {k2:.6g} is a Dirichlet eigenvalue ({closest:.6g}) of the box: "
            "the problem has no unique solution; choose another value"
        )


class Helmholtz2D(ManufacturedSines):
    """Delta u + k^2 u = f on [-1, 1]^2 (k = wavenumber), Dirichlet data and u as in Poisson2D.
    k^2 must not be a Dirichlet eigenvalue of -Delta on the square (pi^2 (n1^2 + n2^2) / 4)."""

    laplacian_coef = 1.0

    def __init__(
        self,
        wavevectors,
        amplitudes,
        phases,
        wavenumber: float,
        interior_points: int,
        boundary_points: int,
        rank_points: int,
        boundary_weight: float,
        rank_rule: str | None = None,
        error_points: int | None = None,
    ):
        super().__init__(
            2,
            wavevectors,
            amplitudes,
            phases,
            interior_points,
            boundary_points,
            rank_points,
            rank_rule,
            error_points,
            boundary_weight=boundary_weight,
        )
        self.params["wavenumber"] = wavenumber
        self.mass_coef = float(wavenumber) ** 2
        _check_not_resonant(self.mass_coef, self.bounds, "wavenumber")


class ReactionDiffusion2D(ManufacturedSines):
    """Steady reaction-diffusion -Delta u + c u = f on [-1, 1]^2 (c = reaction >= 0), Dirichlet
    data and u as in Poisson2D."""

    def __init__(
        self,
        wavevectors,
        amplitudes,
        phases,
        reaction: float,
        interior_points: int,
        boundary_points: int,
        rank_points: int,
        boundary_weight: float,
        rank_rule: str | None = None,
        error_points: int | None = None,
    ):
        super().__init__(
            2,
            wavevectors,
            amplitudes,
            phases,
            interior_points,
            boundary_points,
            rank_points,
            rank_rule,
            error_points,
            boundary_weight=boundary_weight,
        )
        if reaction < 0:
            raise ValueError(f"task: reaction must be >= 0, got {reaction}")
        self.params["reaction"] = reaction
        self.mass_coef = float(reaction)
