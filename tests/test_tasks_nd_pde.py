"""The 2-D / high-dimensional fitting tasks and the PDE tasks: exact solutions satisfy their
equations (checked by finite differences, independently of the closed forms used to build the
source), the PDE bound system reproduces the loss and its bound never exceeds it, the autograd
fallback gives the same loss, and a short training run of every task works."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from staircase.core.bounds import loss_lower_bound
from staircase.networks.mlp import StackedMLP
from staircase.problems import TASKS, make_task
from staircase.problems.operators import laplacian
from staircase.problems.pde import PDETask, boundary_grid, interior_grid
from staircase.problems.targets import RidgeSum, SineProducts
from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]

SINES_2D = dict(
    wavevectors=[[1.0, 2.0], [3.0, 0.0]],
    amplitudes=[1.0, -0.5],
    phases=[[0.25, 0.0], [0.0, 0.5]],
)
PDE_SMALL = dict(interior_points=6, boundary_points=5, rank_points=9, boundary_weight=10.0)
TASK_PARAMS = {
    "multifreq2d": dict(SINES_2D, train_points=6, rank_points=9),
    "ridge": dict(dim=6, frequencies=[1.0, 2.0], amplitudes=[1.0, 0.5], train_points=50, rank_points=80, seed=3),
    "poisson1d": dict(
        frequencies=[1.0, 3.0],
        amplitudes=[1.0, 0.5],
        phases=[0.25, 0.0],
        interior_points=20,
        rank_points=21,
        boundary_weight=10.0,
    ),
    "poisson2d": dict(SINES_2D, **PDE_SMALL),
    "helmholtz2d": dict(SINES_2D, wavenumber=3.0, **PDE_SMALL),
    "reaction_diffusion2d": dict(SINES_2D, reaction=2.0, **PDE_SMALL),
}
PDE_NAMES = [n for n in TASK_PARAMS if issubclass(TASKS[n], PDETask)]


def fd_laplacian(fn, x, h=1e-4):
    """Central second differences: error about h^2 |u''''| / 12 + 4 u_eps |u| / h^2."""
    lap = np.zeros(len(x))
    for i in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[i] = h
        lap += (fn(x + e) - 2 * fn(x) + fn(x - e)) / h**2
    return lap


def test_every_new_task_is_registered_and_in_the_schema():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["$defs"]["task"]["properties"]
    assert set(TASK_PARAMS) <= set(TASKS) and set(TASKS) <= set(props["name"]["enum"])
    for name, cls in TASKS.items():
        for p in inspect.signature(cls.__init__).parameters:
            if p != "self":
                assert p in props, f"task {name}: parameter {p} missing from the schema's task section"


def test_closed_form_laplacians_agree_with_finite_differences():
    rng = np.random.default_rng(0)
    f = SineProducts(**SINES_2D, d=2)
    x = rng.uniform(-1, 1, (40, 2))
    np.testing.assert_allclose(f.laplacian(x), fd_laplacian(f, x), atol=2e-4)
    dirs = rng.standard_normal((2, 5))
    g = RidgeSum(dirs, [1.0, 2.0], [1.0, -0.3])
    x = rng.uniform(-1, 1, (40, 5))
    np.testing.assert_allclose(g.laplacian(x), fd_laplacian(g, x), atol=2e-4)


def test_ridge_target_depends_on_its_directions_only():
    task = make_task("ridge", **TASK_PARAMS["ridge"])
    w = task.target.w
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (30, 6))
    v = rng.standard_normal(6)
    v -= w.T @ np.linalg.lstsq(w.T, v, rcond=None)[0]  # orthogonal to every direction
    np.testing.assert_allclose(task.exact(x + v), task.exact(x), atol=1e-12)
    assert np.std(task.exact(x)) > 0.1
    xr, wr = task.rank_points()
    assert xr.shape == (80, 6) and np.isclose(wr.sum(), 2.0**6)
    assert np.all(np.abs(task.train_points()) <= 1) and not np.allclose(task.train_points()[:50], xr[:50])


def test_fit2d_grids():
    task = make_task("multifreq2d", **TASK_PARAMS["multifreq2d"])
    assert task.train_points().shape == (36, 2)
    x, w = task.rank_points()
    assert x.shape == (81, 2) and np.isclose(w.sum(), 4.0)
    x, y = np.array([[0.3, -0.6]]), None
    y = np.sin(np.pi * (0.3 + 0.25)) * np.sin(np.pi * 2 * -0.6) - 0.5 * np.sin(3 * np.pi * 0.3) * np.cos(0.0)
    np.testing.assert_allclose(task.exact(x), [y])


@pytest.mark.parametrize("name", PDE_NAMES)
def test_exact_solution_satisfies_the_pde(name):
    """L u_exact - f = 0 in the interior (finite differences of u_exact) and g = u_exact on the
    boundary; the exact solution is not trivial on the boundary."""
    task = make_task(name, **TASK_PARAMS[name])
    x = np.random.default_rng(2).uniform(-0.99, 0.99, (50, task.d))
    lap = fd_laplacian(task.exact, x)
    residual = task.operator(task.exact(x), lap) - task.source(x)
    assert np.max(np.abs(residual)) < 1e-4 * np.max(np.abs(task.source(x)))
    xb = task.boundary_points()
    on_boundary = np.any(np.isclose(np.abs(xb), 1.0), axis=1)
    assert on_boundary.all()
    np.testing.assert_allclose(task.boundary_values(xb), task.exact(xb))
    assert np.max(np.abs(task.exact(xb))) > 0.1
    xi = task.interior_points()
    assert np.all(np.abs(xi) < 1)


def test_point_sets():
    b = [(-1.0, 1.0), (-1.0, 1.0)]
    assert interior_grid(b, 4).shape == (16, 2)
    xb = boundary_grid(b, 5)
    assert xb.shape == (16, 2)  # 4 edges x 5 points, corners once
    assert boundary_grid([(-1.0, 1.0)], 7).tolist() == [[-1.0], [1.0]]


def test_helmholtz_refuses_a_dirichlet_eigenvalue():
    k = np.pi * np.sqrt(1**2 + 2**2) / 2  # eigenvalue (pi/2)^2 (1 + 4) of the square [-1, 1]^2
    with pytest.raises(ValueError, match="Dirichlet eigenvalue"):
        make_task("helmholtz2d", **dict(TASK_PARAMS["helmholtz2d"], wavenumber=k))


def _model(task, seed, activation):
    net = StackedMLP([seed, seed + 1, seed + 2], task.d, 8, 2, activation, dtype=torch.float64)
    with torch.no_grad():
        for w in net.weights:
            w.mul_(1.5)
    return net


@pytest.mark.parametrize("name", PDE_NAMES)
@pytest.mark.parametrize("activation", ["tanh", "sin"])
def test_pde_bound_system_is_the_loss_and_bound_never_exceeds_it(name, activation):
    task = make_task(name, **TASK_PARAMS[name])
    data = task.train_data("cpu", torch.float64)
    rng = np.random.default_rng(0)
    for seed in range(3):
        net = _model(task, seed, activation)
        with torch.no_grad():
            loss = task.loss(net, data).numpy()
        bs = task.bound_system(net, data)
        n_rows = len(data["x_int"]) + len(data["x_bd"])
        assert bs.features.shape == (3, n_rows, 9) and bs.target.shape == bs.weights.shape == (n_rows,)
        np.testing.assert_allclose(bs.weights.sum(), 1.0 + task.boundary_weight)
        for s in range(3):
            rebuilt = np.sum(bs.weights * (bs.features[s] @ bs.coef[s] - bs.target) ** 2)
            np.testing.assert_allclose(rebuilt, loss[s], rtol=1e-10)
            # the bound holds for these output weights and for any others, at every eps
            coefs = [bs.coef[s], bs.coef[s] * 10, rng.standard_normal(9) * 3]
            for a in coefs:
                measured = np.sum(bs.weights * (bs.features[s] @ a - bs.target) ** 2)
                for eps in (1e-6, 1e-3, 1e-1, 10.0):
                    r = loss_lower_bound(bs.features[s], bs.target, a, bs.weights, eps)
                    assert r.lower_bound <= measured * (1 + 1e-10)
                    assert r.best_loss <= measured * (1 + 1e-10)


@pytest.mark.parametrize("name", PDE_NAMES)
def test_pde_loss_without_forward_laplacian_uses_autograd(name):
    task = make_task(name, **TASK_PARAMS[name])
    data = task.train_data("cpu", torch.float64)
    net = _model(task, 0, "tanh")
    wrapped = NoForwardLaplacian(net)
    a, b = task.loss(net, data), task.loss(wrapped, data)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    b.sum().backward()  # and it trains
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    bs_a, bs_b = task.bound_system(net, data), task.bound_system(wrapped, data)
    np.testing.assert_allclose(bs_a.features, bs_b.features, rtol=1e-9, atol=1e-10)


class NoForwardLaplacian(torch.nn.Module):
    """A model with the stacked interface but no forward_laplacian (as another architecture)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    n_models = property(lambda self: self.net.n_models)
    depth = property(lambda self: self.net.depth)

    def output_coefficients(self):
        return self.net.output_coefficients()

    def forward(self, x, return_hidden=False):
        return self.net(x, return_hidden)


def test_laplacian_falls_back_to_autograd_without_forward_laplacian():
    net = StackedMLP([5, 6], 2, 6, 2, "sin", dtype=torch.float64)
    x = torch.rand(11, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    wrapped = NoForwardLaplacian(net)
    assert not hasattr(wrapped, "forward_laplacian")
    with torch.no_grad():  # the fallback works in no-grad mode too (the trainer measures so)
        a = laplacian(wrapped, x, hidden=True)
    b = laplacian(net, x, hidden=True)
    torch.testing.assert_close(a.lap_out, b.lap_out, rtol=1e-10, atol=1e-12)
    for p, q in zip(a.lap_hidden, b.lap_hidden):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def _tiny_config(name):
    return {
        "experiment": f"tiny_{name}",
        "variant": "base",
        "scale": "small",
        "device": "cpu",
        "task": {"name": name, **copy.deepcopy(TASK_PARAMS[name])},
        "model": {"activation": "tanh", "width": 8, "depth": 2},
        "train": {"optimizer": "adam", "lr": 5.0e-3, "steps": 30},
        "rank": {"eps": [1.0e-2, 1.0e-3], "main_eps": 1.0e-3, "normalisation": "integral"},
        "log": {"dense_every": 10, "dense_until": 20, "sparse_every": 10},
        "seeds": [0, 1],
    }


@pytest.mark.parametrize("name", sorted(TASK_PARAMS))
def test_short_training_run(name, tmp_path):
    cfg = _tiny_config(name)
    cfgmod.check({"scale": "small", "experiments": {"x": {k: cfg[k] for k in cfgmod.SECTION_KEYS + ("seeds",)}}})
    train.run(cfg, tmp_path, progress=False)
    m = pd.read_parquet(tmp_path / "metrics.parquet")
    assert len(m) == 2 * 4 and np.isfinite(m[["loss", "rel_l2", "lower_bound"]].to_numpy()).all()
    assert not m["bound_violation"].any()
    first, last = m[m.step == 0], m[m.step == 30]
    assert (last["loss"].to_numpy() < first["loss"].to_numpy()).all()
    ranks = pd.read_parquet(tmp_path / "ranks.parquet")
    assert set(ranks["layer"]) == {0, 1}


def test_check_config_accepts_the_new_tasks_and_names_a_wrong_parameter():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    cfgmod.check(config)
    for name in ("fit2d", "ridge8d", "poisson1d", "poisson2d", "helmholtz2d"):
        assert name in config["experiments"]
    bad = copy.deepcopy(config)
    bad["experiments"]["poisson2d"]["task"]["wavenumber"] = 2.0
    with pytest.raises(cfgmod.ConfigError, match=r"poisson2d.*task\.wavenumber: not a parameter of task 'poisson2d'"):
        cfgmod.check(bad)
    bad = copy.deepcopy(config)
    del bad["experiments"]["helmholtz2d"]["task"]["wavenumber"]
    with pytest.raises(cfgmod.ConfigError, match=r"task\.wavenumber: required by task 'helmholtz2d' but missing"):
        cfgmod.check(bad)
