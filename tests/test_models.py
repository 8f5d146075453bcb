"""Tests of the stacked MLP and the activations (src/staircase/models.py)."""

from __future__ import annotations

import math

import pytest
import torch

from staircase.networks.mlp import ACTIVATIONS, StackedMLP, get_activation


def make_x(n=17, d=2, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=gen, dtype=dtype) * 2 - 1


# ---- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("d_out", [1, 3])
def test_output_and_hidden_shapes(depth, d_out):
    model = StackedMLP([0, 1, 2], d_in=2, width=7, depth=depth, activation="tanh", d_out=d_out)
    x = make_x(dtype=torch.float32)
    out, hidden = model(x, return_hidden=True)
    assert out.shape == (3, 17, d_out)
    assert len(hidden) == depth == model.depth
    for h in hidden:
        assert h.shape == (3, 17, 7)
        assert h.dtype == torch.float32
        assert torch.all(h.abs() <= 1)  # tanh
    assert model.n_models == 3
    # without return_hidden only the output; a per-model input (S, N, d_in) works too
    assert torch.equal(model(x), out)
    assert torch.equal(model(x.expand(3, 17, 2)), out)


def test_parameter_shapes_and_dtype():
    model = StackedMLP([5, 6], d_in=3, width=4, depth=2, activation="sin", d_out=2, dtype=torch.float64)
    assert [tuple(w.shape) for w in model.weights] == [(2, 3, 4), (2, 4, 4), (2, 4, 2)]
    assert [tuple(b.shape) for b in model.biases] == [(2, 1, 4), (2, 1, 4), (2, 1, 2)]
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 2 * ((3 * 4 + 4) + (4 * 4 + 4) + (4 * 2 + 2))


def test_forward_matches_explicit_per_model_computation():
    model = StackedMLP([3, 9], d_in=2, width=5, depth=2, activation="gelu", d_out=1, dtype=torch.float64)
    x = make_x()
    out, hidden = model(x, return_hidden=True)
    for s in range(2):
        h = x
        for layer in range(2):
            h = torch.nn.functional.gelu(h @ model.weights[layer][s] + model.biases[layer][s])
            torch.testing.assert_close(hidden[layer][s], h, rtol=1e-13, atol=1e-14)
        torch.testing.assert_close(out[s], h @ model.weights[2][s] + model.biases[2][s], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("width,depth", [(0, 2), (3, 0), (-1, 1)])
def test_bad_width_or_depth_raises(width, depth):
    with pytest.raises(ValueError, match="width and depth"):
        StackedMLP([0], d_in=1, width=width, depth=depth, activation="tanh")


# ---- initialisation ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_init_depends_only_on_the_seed(dtype):
    alone = StackedMLP([3], d_in=2, width=6, depth=3, activation="tanh", dtype=dtype)
    stacked = StackedMLP([1, 3, 5], d_in=2, width=6, depth=3, activation="tanh", dtype=dtype)
    for wa, ws, ba, bs in zip(alone.weights, stacked.weights, alone.biases, stacked.biases):
        assert torch.equal(wa[0], ws[1]) and torch.equal(ba[0], bs[1])
        assert not torch.equal(ws[0], ws[1]) and not torch.equal(ws[2], ws[1])
    x = make_x(dtype=dtype)
    assert torch.equal(alone(x)[0], stacked(x)[1])
    # the same seed list twice gives the same model, and a repeated seed gives identical models
    again = StackedMLP([1, 3, 5], d_in=2, width=6, depth=3, activation="tanh", dtype=dtype)
    assert all(torch.equal(a, b) for a, b in zip(stacked.parameters(), again.parameters()))
    twins = StackedMLP([3, 3], d_in=2, width=6, depth=3, activation="tanh", dtype=dtype)
    assert all(torch.equal(p[0], p[1]) for p in twins.parameters())


def test_init_is_uniform_in_plus_minus_one_over_sqrt_fan_in():
    model = StackedMLP(list(range(8)), d_in=4, width=64, depth=2, activation="tanh", dtype=torch.float64)
    for w, b in zip(model.weights, model.biases):
        bound = 1.0 / math.sqrt(w.shape[1])
        for p in (w, b):
            assert p.abs().max() <= bound
            # uniform: mean ~ 0 and variance ~ bound^2 / 3
            assert abs(p.mean().item()) < 0.1 * bound
            assert p.var().item() == pytest.approx(bound**2 / 3, rel=0.25)
        assert w.abs().max() > 0.9 * bound


def test_reset_parameters_restores_the_initialisation():
    model = StackedMLP([4, 2], d_in=1, width=5, depth=2, activation="sin", dtype=torch.float64)
    init = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.reset_parameters()
    assert all(torch.equal(a, b) for a, b in zip(init, model.parameters()))


# ---- independence of the stacked models during training ----------------------------------------


def per_model_losses(model, x, y):
    return ((model(x)[..., 0] - y) ** 2).mean(dim=-1)  # (S,)


def grads(model):
    return [p.grad.detach().clone() for p in model.parameters()]


def test_gradient_of_summed_loss_is_per_model_gradient():
    seeds = [1, 3, 5]
    x = make_x(n=23)
    y = torch.sin(3 * x[:, 0]) * x[:, 1]
    model = StackedMLP(seeds, d_in=2, width=8, depth=3, activation="tanh", dtype=torch.float64)
    per_model_losses(model, x, y).sum().backward()
    total = grads(model)
    for s, seed in enumerate(seeds):
        model.zero_grad()
        per_model_losses(model, x, y)[s].backward()
        single = grads(model)
        for g_total, g_s in zip(total, single):
            torch.testing.assert_close(g_total[s], g_s[s], rtol=1e-12, atol=1e-15)
            others = [t for t in range(len(seeds)) if t != s]
            assert torch.all(g_s[others] == 0)  # model s's loss does not touch the others
        # and it is the gradient of the same network trained alone
        alone = StackedMLP([seed], d_in=2, width=8, depth=3, activation="tanh", dtype=torch.float64)
        per_model_losses(alone, x, y).sum().backward()
        for g_total, g_alone in zip(total, grads(alone)):
            torch.testing.assert_close(g_total[s], g_alone[0], rtol=1e-12, atol=1e-15)


def test_adam_trajectory_matches_training_alone():
    x = make_x(n=31, d=1)
    y = torch.sin(4 * x[:, 0])
    stacked = StackedMLP([0, 7], d_in=1, width=6, depth=2, activation="tanh", dtype=torch.float64)
    alone = StackedMLP([7], d_in=1, width=6, depth=2, activation="tanh", dtype=torch.float64)
    opt_s = torch.optim.Adam(stacked.parameters(), lr=1e-2)
    opt_a = torch.optim.Adam(alone.parameters(), lr=1e-2)
    with torch.no_grad():
        initial = per_model_losses(alone, x, y)[0]
    for _ in range(25):
        for model, opt in ((stacked, opt_s), (alone, opt_a)):
            opt.zero_grad()
            per_model_losses(model, x, y).sum().backward()
            opt.step()
    for p_s, p_a in zip(stacked.parameters(), alone.parameters()):
        torch.testing.assert_close(p_s[1], p_a[0], rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        assert per_model_losses(alone, x, y)[0] < 0.9 * initial  # the parameters really moved


# ---- activations -------------------------------------------------------------------------------


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError) as info:
        get_activation("nope")
    msg = str(info.value)
    assert "nope" in msg
    for name in ("tanh", "sin", "relu", "sigmoid", "gelu"):
        assert name in msg
    with pytest.raises(ValueError):
        StackedMLP([0], d_in=1, width=2, depth=1, activation="Tanh")


def test_registered_activations():
    assert {"tanh", "sin", "relu", "sigmoid", "gelu"} <= set(ACTIVATIONS)
    for name in ACTIVATIONS:
        assert get_activation(name) is ACTIVATIONS[name]


def autograd_derivatives(fn, z):
    z = z.clone().requires_grad_(True)
    (d1,) = torch.autograd.grad(fn(z).sum(), z, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), z)
    return d1.detach(), d2.detach()


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    act = get_activation(name)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2000, generator=gen, dtype=torch.float64) * 4
    z = torch.cat([z, torch.tensor([0.3, -0.3, 5.0, -5.0, 12.0, -12.0], dtype=torch.float64)])
    if name == "relu":
        z = z[z.abs() > 1e-3]  # not differentiable at 0
    d1, d2 = autograd_derivatives(act.fn, z)
    torch.testing.assert_close(act.d1(z), d1, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(act.d2(z), d2, rtol=1e-12, atol=1e-14)
    # float32 in, float32 out (used on training features)
    z32 = z.to(torch.float32)
    for f in (act.fn, act.d1, act.d2):
        assert f(z32).dtype == torch.float32


@pytest.mark.parametrize(
    "name,reference",
    [
        ("tanh", torch.tanh),
        ("sin", torch.sin),
        ("relu", torch.relu),
        ("sigmoid", torch.sigmoid),
        ("gelu", lambda z: torch.nn.functional.gelu(z, approximate="none")),
    ],
)
def test_activation_values(name, reference):
    z = torch.linspace(-6, 6, 101, dtype=torch.float64)
    torch.testing.assert_close(get_activation(name).fn(z), reference(z), rtol=1e-14, atol=1e-15)


def test_activation_derivative_known_values():
    zero = torch.zeros(1, dtype=torch.float64)
    assert get_activation("tanh").d1(zero).item() == 1.0
    assert get_activation("sigmoid").d1(zero).item() == 0.25
    assert get_activation("gelu").d1(zero).item() == 0.5
    assert get_activation("gelu").d2(zero).item() == pytest.approx(2 / math.sqrt(2 * math.pi), rel=1e-15)
    assert get_activation("sin").d2(torch.tensor([math.pi / 2], dtype=torch.float64)).item() == -1.0


# ---- the output layer as coefficients of the last hidden layer (used by the loss bound) --------


def test_output_coefficients_reproduce_the_output():
    model = StackedMLP([2, 4, 8], d_in=2, width=9, depth=2, activation="tanh", dtype=torch.float64)
    x = make_x(n=29)
    with torch.no_grad():
        out, hidden = model(x, return_hidden=True)
        coef = model.output_coefficients()
    assert coef.shape == (3, 10)
    features = torch.cat([torch.ones(3, 29, 1, dtype=torch.float64), hidden[-1]], dim=-1)  # [1, phi_1..phi_n]
    torch.testing.assert_close(torch.einsum("snj,sj->sn", features, coef), out[..., 0], rtol=1e-13, atol=1e-14)
    assert torch.equal(coef[:, 0], model.biases[-1][:, 0, 0])


def test_the_torch_free_activation_names_are_the_model_s():
    from staircase.networks import ACTIVATION_NAMES

    assert sorted(ACTIVATION_NAMES) == sorted(ACTIVATIONS)
