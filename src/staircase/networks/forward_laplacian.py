"""The forward Laplacian of stacked networks: exact input gradients and Laplacians carried forward
through the layers, for physics-informed losses (``staircase.problems.operators.laplacian`` uses a
model's ``forward_laplacian`` when it has one; ``autograd_laplacian`` there is the reference).

Carry the value h, the input gradient (d x n) and the Laplacian of every layer through the network,

    z = h W + b,        grad z = (grad h) W,               lap z = (lap h) W,
    a = sigma(z),       grad a = sigma'(z) grad z,         lap a = sigma''(z) |grad z|^2 + sigma'(z) lap z,

starting from grad x = I and lap x = 0. It is exact (no finite differences), costs about d + 2
forward passes, needs no autograd graph of its own, and is differentiable with respect to the
weights, so a PDE loss built on it trains by ordinary backpropagation.

Two carriers of these rules, one per kind of network:
* ``Jet``: a value with its gradient and Laplacian, with the operations the architectures need
  (linear layers, elementwise maps, sums, products, normalisation); the architectures of
  ``staircase.networks.architectures`` write their forward pass once on jets.
* ``mlp_forward_laplacian``: the plain MLP's fast path (``StackedMLP.forward_laplacian``), the
  gradient and Laplacian rows in one array and a fused tanh layer (PERFORMANCE.md).
They agree to rounding, not bit for bit (the fused tanh layer and the first layer's shortcut round
differently), so each network keeps the one its recorded results were computed with;
tests/test_derivatives.py checks the jets against the fast path on plain MLPs.
"""

from __future__ import annotations

import torch

from staircase.problems.operators import Derivatives


class Jet:
    """A stacked value v (S, N, n) with, optionally, its input gradient g (S, N, d, n) and
    Laplacian l (S, N, n). Without g and l it is a plain value and costs nothing extra."""

    def __init__(self, v, g=None, l=None):
        self.v, self.g, self.l = v, g, l

    @classmethod
    def input(cls, x: torch.Tensor, derivatives: bool) -> Jet:
        if not derivatives:
            return cls(x)
        s, n, d = x.shape
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        return cls(x, eye.expand(s, n, d, d), torch.zeros_like(x))

    @property
    def tracked(self) -> bool:
        return self.g is not None

    def linear(self, w, b=None) -> Jet:
        """v W + b with W (S, fan_in, fan_out), b (S, 1, fan_out) or None."""
        v = torch.bmm(self.v, w) if b is None else torch.baddbmm(b, self.v, w)
        if not self.tracked:
            return Jet(v)
        s, n, d, k = self.g.shape
        g = torch.bmm(self.g.reshape(s, n * d, k), w).reshape(s, n, d, -1)
        return Jet(v, g, torch.bmm(self.l, w))

    def map(self, fn, d1, d2) -> Jet:
        """An elementwise function with its first two derivatives."""
        if not self.tracked:
            return Jet(fn(self.v))
        s1 = d1(self.v)
        return Jet(fn(self.v), s1[:, :, None, :] * self.g, d2(self.v) * (self.g * self.g).sum(dim=2) + s1 * self.l)

    def act(self, activation) -> Jet:
        return self.map(activation.fn, activation.d1, activation.d2)

    def affine(self, scale, shift) -> Jet:
        """scale * v + shift with scale, shift constant in x (broadcast over points)."""
        v = self.v * scale + shift
        if not self.tracked:
            return Jet(v)
        return Jet(v, self.g * scale.unsqueeze(-2), self.l * scale)

    def plus(self, c: float) -> Jet:
        """v + c for a number c."""
        return Jet(self.v + c, self.g, self.l)

    def mean_last(self) -> Jet:
        if not self.tracked:
            return Jet(self.v.mean(-1, keepdim=True))
        return Jet(self.v.mean(-1, keepdim=True), self.g.mean(-1, keepdim=True), self.l.mean(-1, keepdim=True))

    def __add__(self, other: Jet) -> Jet:
        if not self.tracked:
            return Jet(self.v + other.v)
        return Jet(self.v + other.v, self.g + other.g, self.l + other.l)

    def __sub__(self, other: Jet) -> Jet:
        if not self.tracked:
            return Jet(self.v - other.v)
        return Jet(self.v - other.v, self.g - other.g, self.l - other.l)

    def __mul__(self, other: Jet) -> Jet:
        if not self.tracked:
            return Jet(self.v * other.v)
        return Jet(
            self.v * other.v,
            self.g * other.v.unsqueeze(-2) + self.v.unsqueeze(-2) * other.g,
            self.l * other.v + 2 * (self.g * other.g).sum(dim=2) + self.v * other.l,
        )

    @staticmethod
    def cat(jets: list[Jet]) -> Jet:
        v = torch.cat([j.v for j in jets], dim=-1)
        if not jets[0].tracked:
            return Jet(v)
        return Jet(v, torch.cat([j.g for j in jets], dim=-1), torch.cat([j.l for j in jets], dim=-1))


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
    h = model.stack_input(x)
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
