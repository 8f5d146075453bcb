"""The forward Laplacian (staircase.networks.forward_laplacian) against autograd double backward on
random networks, against closed-form Laplacians of networks that compute known functions, and its two
carriers (the plain MLP's fast path and the architectures' jets) against each other."""

from __future__ import annotations

import pytest
import torch

from staircase.networks.architectures import ConfigurableMLP
from staircase.networks.forward_laplacian import _TanhLayer, mlp_forward_laplacian
from staircase.networks.mlp import ACTIVATIONS, StackedMLP
from staircase.problems.operators import autograd_laplacian


def random_net(seed, d, width, depth, activation):
    net = StackedMLP([seed, seed + 100], d, width, depth, activation, dtype=torch.float64)
    with torch.no_grad():  # larger weights than the default init, so second derivatives matter
        for w in net.weights:
            w.mul_(2.0)
    return net


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("d, width, depth", [(1, 5, 1), (2, 7, 3), (3, 4, 2)])
def test_forward_laplacian_matches_autograd(activation, d, width, depth):
    net = random_net(d * 10 + depth, d, width, depth, activation)
    x = torch.rand(13, d, dtype=torch.float64, generator=torch.Generator().manual_seed(d)) * 2 - 1
    fwd = net.forward_laplacian(x)
    ref = autograd_laplacian(net, x, hidden=True, create_graph=False)
    torch.testing.assert_close(fwd.out, net(x), rtol=0, atol=0)
    torch.testing.assert_close(fwd.out, ref.out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fwd.grad_out, ref.grad_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fwd.lap_out, ref.lap_out, rtol=1e-10, atol=1e-12)
    assert len(fwd.lap_hidden) == len(ref.lap_hidden) == depth
    for a, b, h in zip(fwd.lap_hidden, ref.lap_hidden, ref.hidden):
        assert a.shape == h.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_per_model_inputs_and_weight_gradients_match_autograd():
    """x of shape (S, N, d), and the gradient of a loss on the Laplacian with respect to the
    weights (what training uses) equals the one through double backward."""
    net = random_net(3, 2, 6, 2, "tanh")
    x = torch.rand(2, 9, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1

    (mlp_forward_laplacian(net, x).lap_out ** 2).sum().backward()
    # the output bias does not enter the Laplacian: no gradient (None) both ways
    g_fwd = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    (autograd_laplacian(net, x).lap_out ** 2).sum().backward()
    assert sum(g is None for g in g_fwd) == 1
    for a, p in zip(g_fwd, net.parameters()):
        if a is None:
            assert p.grad is None or not p.grad.any()
        else:
            torch.testing.assert_close(a, p.grad, rtol=1e-10, atol=1e-12)


def _set(net, layer, w, b):
    with torch.no_grad():
        net.weights[layer].copy_(torch.as_tensor(w, dtype=torch.float64).reshape(net.weights[layer].shape))
        net.biases[layer].copy_(torch.as_tensor(b, dtype=torch.float64).reshape(net.biases[layer].shape))


def test_forward_laplacian_of_known_functions():
    """u(x) = 3 sin(sin(w.x + c)) - 1 through two sin layers of width 1, and
    v(x) = 2 tanh(w.x + c) through one tanh layer: Laplacians in closed form."""
    w = torch.tensor([0.7, -1.3, 2.0], dtype=torch.float64)
    c = 0.4
    x = torch.rand(25, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z = x @ w + c
    w2 = float(w @ w)

    net = StackedMLP([0], 3, 1, 2, "sin", dtype=torch.float64)
    _set(net, 0, w, c)
    _set(net, 1, 1.0, 0.0)
    _set(net, 2, 3.0, -1.0)
    der = net.forward_laplacian(x)
    u = 3 * torch.sin(torch.sin(z)) - 1
    lap_u = 3 * w2 * (-torch.sin(torch.sin(z)) * torch.cos(z) ** 2 - torch.cos(torch.sin(z)) * torch.sin(z))
    grad_u = 3 * (torch.cos(torch.sin(z)) * torch.cos(z))[:, None] * w
    torch.testing.assert_close(der.out[0, :, 0], u, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(der.lap_out[0, :, 0], lap_u, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(der.grad_out[0, :, :, 0], grad_u, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(der.lap_hidden[0][0, :, 0], -w2 * torch.sin(z), rtol=1e-12, atol=1e-12)

    net = StackedMLP([0], 3, 1, 1, "tanh", dtype=torch.float64)
    _set(net, 0, w, c)
    _set(net, 1, 2.0, 0.0)
    t = torch.tanh(z)
    torch.testing.assert_close(net.forward_laplacian(x).lap_out[0, :, 0], 2 * w2 * (-2 * t * (1 - t * t)))


def test_fused_tanh_layer_gradcheck():
    """The hand-written backward of the forward Laplacian's tanh layer (forward_laplacian._TanhLayer)."""

    gen = torch.Generator().manual_seed(5)
    z = torch.randn(2, 5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    dz = torch.randn(2, 3, 5, 4, dtype=torch.float64, generator=gen, requires_grad=True)  # (S, d + 1, N, n)
    assert torch.autograd.gradcheck(_TanhLayer.apply, (z, dz))
    t, out = _TanhLayer.apply(z, dz)
    s1 = 1 - torch.tanh(z) ** 2
    lap = s1 * dz[:, 2] - 2 * torch.tanh(z) * s1 * (dz[:, :2] ** 2).sum(1)
    torch.testing.assert_close(out, torch.cat([s1[:, None] * dz[:, :2], lap[:, None]], dim=1))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 3])
def test_jets_match_the_mlp_fast_path(activation, depth):
    """The architectures' forward Laplacian (jets, ``ConfigurableMLP``) on a plain MLP against the
    fast path ``StackedMLP`` trains with: the same parameters (the default init draws the same
    numbers), the same values and derivatives to rounding (the two round differently, so each
    network keeps its own; see staircase.networks.forward_laplacian)."""
    fast = StackedMLP([4, 9], 3, 6, depth, activation, dtype=torch.float64)
    jets = ConfigurableMLP([4, 9], 3, 6, depth, activation, dtype=torch.float64)
    for a, b in zip(fast.parameters(), jets.parameters()):
        assert torch.equal(a, b)
    x = torch.rand(11, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got, want = jets.forward_laplacian(x), fast.forward_laplacian(x)
    assert torch.equal(jets(x), fast(x))  # the plain forward passes are the same operations
    for g, w in [(got.out, want.out), (got.grad_out, want.grad_out), (got.lap_out, want.lap_out)]:
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    for g, w in zip(got.lap_hidden, want.lap_hidden, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
