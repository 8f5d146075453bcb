"""Exact input derivatives of networks for physics-informed losses.

``laplacian(model, x)`` returns the network output, its input gradient and Laplacian, and (on
request) every hidden layer with its Laplacian. It uses the model's ``forward_laplacian`` when the
model has one, and otherwise falls back to ``autograd_laplacian`` (double backward), which works
for any architecture with the stacked model interface whose ``forward`` accepts per-model inputs
x of shape (S, N, d) (as StackedMLP does) and whose outputs at a point depend only on the input at
that point (no batch statistics).

Forward Laplacian (``mlp_forward_laplacian``, used by ``StackedMLP.forward_laplacian``): carry the
value h, the input gradient (d x n) and the Laplacian of every layer through the network,

    z = h W + b,        grad z = (grad h) W,               lap z = (lap h) W,
    a = sigma(z),       grad a = sigma'(z) grad z,         lap a = sigma''(z) |grad z|^2 + sigma'(z) lap z,

starting from grad x = I and lap x = 0. It is exact (no finite differences), costs about d + 2
forward passes, needs no autograd graph of its own, and is differentiable with respect to the
weights, so a PDE loss built on it trains by ordinary backpropagation. The autograd version is kept
as the reference: the tests compare the two on random networks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Derivatives:
    """Input derivatives of a stacked model at points x.

    out: (S, N, d_out); grad_out: (S, N, d, d_out) or None; lap_out: (S, N, d_out);
    hidden / lap_hidden: per hidden layer (S, N, n_l), or empty lists when not requested.
    """

    out: torch.Tensor
    grad_out: torch.Tensor | None
    lap_out: torch.Tensor
    hidden: list[torch.Tensor]
    lap_hidden: list[torch.Tensor]


def _stack_input(model, x: torch.Tensor) -> torch.Tensor:
    return x.expand(model.n_models, *x.shape) if x.dim() == 2 else x


def _sum_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_k a[:, k] * b[:, k] over the row axis of (S, d, N, n) arrays, as fused multiply-adds."""
    out = a[:, 0] * b[:, 0]
    for k in range(1, a.shape[1]):
        out.addcmul_(a[:, k], b[:, k])
    return out


class _TanhLayer(torch.autograd.Function):
    """One tanh layer of the forward Laplacian with a hand-written backward: from z (S, N, n) and
    DZ = [grad z; lap z] (S, d + 1, N, n) to a = tanh z and D = [s grad z; s (lap z - 2 a |grad z|^2)]
    with s = 1 - a^2 (sigma' = s, sigma'' = -2 a s). Autograd through the generic formulas takes
    about twice the passes over these arrays, which dominate a PINN step on a CPU. Checked against
    the generic path and by gradcheck (tests/test_derivatives.py)."""

    @staticmethod
    def forward(ctx, z, dz):
        d = dz.shape[1] - 1
        a = torch.tanh(z)
        s = (a * a).neg_().add_(1)
        gz, lz = dz[:, :d], dz[:, d]
        q = _sum_rows(gz, gz)
        c = torch.addcmul(lz, a, q, value=-2)
        out = torch.empty_like(dz)
        torch.mul(gz, s[:, None], out=out[:, :d])
        torch.mul(c, s, out=out[:, d])
        ctx.save_for_backward(a, s, dz, c, q)
        return a, out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_a, g_out):
        a, s, dz, c, q = ctx.saved_tensors
        d = dz.shape[1] - 1
        gz, g_g, g_l = dz[:, :d], g_out[:, :d], g_out[:, d]
        g_s = _sum_rows(g_g, gz).addcmul_(g_l, c)
        g_lz = g_l * s
        g_dz = torch.empty_like(dz)
        torch.mul(g_g, s[:, None], out=g_dz[:, :d])
        g_dz[:, :d].addcmul_(gz, (g_lz * a)[:, None], value=-4)
        g_dz[:, d] = g_lz
        g_z = g_lz.mul_(q).mul_(-2).addcmul_(a, g_s, value=-2)  # d/da of the outputs through c and s
        if g_a is not None:
            g_z.add_(g_a)
        return g_z.mul_(s), g_dz


def _linear_rows(rows: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """rows (S, R, N, n) times w (S, n, m) -> (S, R, N, m): one matmul for all rows; for m = 1 (a
    scalar output) a multiply-and-sum, whose backward avoids a slow rank-one batched matmul."""
    s, r, n, k = rows.shape
    if w.shape[-1] == 1:
        return (rows * w[:, None, None, :, 0]).sum(dim=-1, keepdim=True)
    return torch.bmm(rows.reshape(s, r * n, k), w).reshape(s, r, n, -1)


def mlp_forward_laplacian(model, x: torch.Tensor) -> Derivatives:
    """Forward Laplacian of a ``StackedMLP`` (weights (S, fan_in, fan_out), biases (S, 1, fan_out),
    activation with ``fn``, ``d1``, ``d2``). x: (N, d) shared by all models, or (S, N, d).

    The d gradient rows and the Laplacian row of a layer travel together as one (S, d + 1, N, n)
    tensor, so each layer costs one matmul for them (plus the value's own, computed exactly as
    ``forward`` does); at the input layer, whose gradient is the identity and Laplacian zero,
    grad z = W is the same at every point; tanh layers use ``_TanhLayer``, other activations the
    generic formulas with sigma, sigma', sigma'' from one ``Activation.with_derivatives`` call.
    """
    h = _stack_input(model, x)
    s, n, d = h.shape
    act = model.act
    fused = _TanhLayer if getattr(model, "act_name", None) == "tanh" else None
    deriv = None  # (S, d + 1, N, width): gradient rows, then the Laplacian; None at the input
    hidden, lap_hidden = [], []
    n_layers = len(model.weights)
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        z = torch.baddbmm(b, h, w)
        if i == n_layers - 1:
            if deriv is None:  # no hidden layer: grad z = W, lap z = 0
                grad_out, lap_out = w[:, None, :, :].expand(s, n, d, w.shape[-1]), torch.zeros_like(z)
            else:  # the Laplacian apart, so that the loss's gradient flows through it alone
                grad_out = _linear_rows(deriv[:, :d], w).permute(0, 2, 1, 3)
                lap_out = _linear_rows(deriv[:, d:], w)[:, 0]
            return Derivatives(out=z, grad_out=grad_out, lap_out=lap_out, hidden=hidden, lap_hidden=lap_hidden)
        if deriv is None:  # grad z = W at every point, lap z = 0
            h, s1, s2 = act.with_derivatives(z)
            lap = s2 * (w * w).sum(dim=1, keepdim=True)  # sigma'' |W|^2, |W|^2 over the input dimension
            deriv = torch.cat([s1[:, None] * w[:, :, None, :], lap[:, None]], dim=1)
        else:
            dz = _linear_rows(deriv, w)
            if fused is not None:
                h, deriv = fused.apply(z, dz)
            else:  # lap a = sigma'' |grad z|^2 + sigma' lap z
                h, s1, s2 = act.with_derivatives(z)
                lap = torch.addcmul(s1 * dz[:, d], s2, _sum_rows(dz[:, :d], dz[:, :d]))
                deriv = torch.cat([s1[:, None] * dz[:, :d], lap[:, None]], dim=1)
        hidden.append(h)
        lap_hidden.append(deriv[:, d])
    raise AssertionError("unreachable: a model has at least one layer")


def _laplacian_of(values: torch.Tensor, x: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient (S, N, d, m) and Laplacian (S, N, m) of values (S, N, m) with respect to x (S, N, d),
    by double backward, one output column at a time. Assumes values[s, k] depends on x[s, k] only."""
    grads, laps = [], []
    d = x.shape[-1]
    for j in range(values.shape[-1]):
        (g,) = torch.autograd.grad(values[..., j].sum(), x, create_graph=True)
        lap_j = 0
        for k in range(d):
            (gg,) = torch.autograd.grad(g[..., k].sum(), x, create_graph=create_graph, retain_graph=True)
            lap_j = lap_j + gg[..., k]
        grads.append(g if create_graph else g.detach())
        laps.append(lap_j)
    return torch.stack(grads, dim=-1), torch.stack(laps, dim=-1)


def autograd_laplacian(model, x: torch.Tensor, hidden: bool = False, create_graph: bool | None = None) -> Derivatives:
    """Reference implementation for any model with the stacked interface, by double backward.

    create_graph (default: whether grad mode is on) keeps the graph so that a loss built on the
    result can be differentiated with respect to the weights. Works inside ``torch.no_grad()``.
    Costs one backward pass per output and hidden unit and input dimension: use it as a
    reference and a fallback, not for wide hidden layers in a training loop.
    """
    if create_graph is None:
        create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        xs = _stack_input(model, x).detach().clone().requires_grad_(True)
        out, hid = model(xs, return_hidden=True)
        grad_out, lap_out = _laplacian_of(out, xs, create_graph)
        lap_hidden = [_laplacian_of(h, xs, create_graph)[1] for h in hid] if hidden else []
    if not create_graph:
        out, lap_out = out.detach(), lap_out.detach()
        hid = [h.detach() for h in hid]
        lap_hidden = [lh.detach() for lh in lap_hidden]
    return Derivatives(out, grad_out, lap_out, hid if hidden else [], lap_hidden)


def laplacian(model, x: torch.Tensor, hidden: bool = False) -> Derivatives:
    """Output (and, with hidden=True, hidden-layer) values and Laplacians at x: the model's exact
    ``forward_laplacian`` when it has one, autograd double backward otherwise."""
    forward = getattr(model, "forward_laplacian", None)
    if forward is not None:
        return forward(x)
    return autograd_laplacian(model, x, hidden=hidden)


__all__ = ["Derivatives", "autograd_laplacian", "laplacian", "mlp_forward_laplacian"]
