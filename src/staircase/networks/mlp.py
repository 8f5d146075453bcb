"""Fully connected networks stacked along a leading model axis.

Model interface used by tasks and the training loop (any architecture must provide it):
``n_models``, ``depth`` (number of hidden layers), ``forward(x, return_hidden)`` returning the
output (S, N, d_out) and the hidden layers [(S, N, n_l)], and ``output_coefficients()`` (the last
layer as a linear combination of the last hidden layer, used by the loss lower bound).

One ``StackedMLP`` holds S independent networks of the same shape (one per seed or sweep cell):
weights have shape (S, fan_in, fan_out) and every layer is one batched matmul. Small MLPs are
bound by per-operation overhead, so training S models this way costs about as much as one
(see PERFORMANCE.md). Because the total loss is the sum of the per-model losses, each
model's gradient, and so its Adam/SGD trajectory, is exactly that of training it alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from staircase.networks import init as weight_init
from staircase.networks.forward_laplacian import mlp_forward_laplacian
from staircase.networks.stacked import StackedNet


@dataclass(frozen=True)
class Activation:
    """sigma with its first two derivatives (needed by the forward Laplacian of PDE tasks)."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    d1: Callable[[torch.Tensor], torch.Tensor]
    d2: Callable[[torch.Tensor], torch.Tensor]
    # (fn, d1, d2) together, sharing the work (tanh: one tanh instead of three); optional
    joint: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def with_derivatives(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """sigma(z), sigma'(z), sigma''(z)."""
        return self.joint(z) if self.joint is not None else (self.fn(z), self.d1(z), self.d2(z))


def _gauss_pdf(z):
    return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _gauss_cdf(z):
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def _tanh_d1(z):
    return 1 - torch.tanh(z) ** 2


def _tanh_d2(z):
    t = torch.tanh(z)
    return -2 * t * (1 - t * t)


def _tanh_joint(z):
    t = torch.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _sigmoid_joint(z):
    s = torch.sigmoid(z)
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _sin_joint(z):
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _sigmoid_d1(z):
    s = torch.sigmoid(z)
    return s * (1 - s)


def _sigmoid_d2(z):
    s = torch.sigmoid(z)
    return s * (1 - s) * (1 - 2 * s)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation(torch.tanh, _tanh_d1, _tanh_d2, _tanh_joint),
    "sin": Activation(torch.sin, torch.cos, lambda z: -torch.sin(z), _sin_joint),
    "relu": Activation(torch.relu, lambda z: (z > 0).to(z.dtype), torch.zeros_like),
    "sigmoid": Activation(torch.sigmoid, _sigmoid_d1, _sigmoid_d2, _sigmoid_joint),
    # exact (erf) GELU: x Phi(x); derivatives Phi + x phi and (2 - x^2) phi
    "gelu": Activation(
        lambda z: z * _gauss_cdf(z),
        lambda z: _gauss_cdf(z) + z * _gauss_pdf(z),
        lambda z: (2 - z * z) * _gauss_pdf(z),
    ),
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


class StackedMLP(StackedNet):
    """S fully connected networks d_in -> width x depth -> d_out with a shared activation.

    ``depth`` is the number of hidden layers. Each model s is initialised from its own
    ``torch.Generator`` seeded with ``seeds[s]``, as ``nn.Linear`` does by default
    (weights and biases uniform in +-1/sqrt(fan_in), layer by layer, weight then bias), so a
    model's initial weights depend only on its seed, not on which other models share the stack.
    """

    def __init__(self, seeds, d_in: int, width: int, depth: int, activation: str, d_out: int = 1, dtype=torch.float32):
        super().__init__(seeds)
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got width={width}, depth={depth}")
        self.act_name = activation
        self.act = get_activation(activation)
        self._add_layers([d_in] + [width] * depth + [d_out], dtype, biases=True)
        self.reset_parameters()

    @property
    def depth(self) -> int:
        return len(self.weights) - 1

    def _init_model(self, s: int, seed: int, gen: torch.Generator) -> None:
        for w, b in zip(self.weights, self.biases):
            w0, b0 = weight_init.init_linear(w.shape[1], w.shape[2], "default", gen)
            w[s].copy_(w0)
            b[s].copy_(b0)

    def output_coefficients(self) -> torch.Tensor:
        """(S, n + 1): the output bias and weights [b, a_1..a_n] of each model's (scalar) output,
        in the order matching the features [1, phi_1..phi_n] of the last hidden layer."""
        return torch.cat([self.biases[-1][:, 0, :1], self.weights[-1][..., 0]], dim=1)

    def forward_laplacian(self, x: torch.Tensor):
        """Exact input Laplacians of the output and every hidden layer, carried forward through
        the layers (see staircase.networks.forward_laplacian; PDE losses use it when a model provides it)."""
        return mlp_forward_laplacian(self, x)

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        """x: (N, d_in) shared by all models, or (S, N, d_in). Returns (S, N, d_out) and,
        if asked, the list of hidden-layer outputs, each (S, N, width)."""
        h = self.stack_input(x)
        # the parameters straight from the lists' dicts: indexing or slicing a ParameterList goes
        # through nn.Module machinery (slicing builds a new module), which cost ~0.5 ms a forward,
        # as much as the arithmetic of a small stack on one CPU core
        *ws, w_out = self.weights._parameters.values()
        *bs, b_out = self.biases._parameters.values()
        hidden = []
        for w, b in zip(ws, bs):
            h = self.act.fn(torch.baddbmm(b, h, w))
            hidden.append(h)
        out = torch.baddbmm(b_out, h, w_out)
        return (out, hidden) if return_hidden else out
