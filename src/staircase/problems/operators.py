"""Input derivatives of networks for physics-informed losses: the generic pieces a PDE loss needs.

``laplacian(model, x)`` returns the network output, its input gradient and Laplacian, and (on
request) every hidden layer with its Laplacian, as a ``Derivatives`` record. It uses the model's
``forward_laplacian`` when the model has one (the networks' exact forward Laplacian,
``staircase.networks.forward_laplacian``), and otherwise falls back to ``autograd_laplacian``
(double backward), which works for any architecture with the stacked model interface whose
``forward`` accepts per-model inputs x of shape (S, N, d) (as StackedMLP does) and whose outputs at
a point depend only on the input at that point (no batch statistics). The autograd version is also
the reference: the tests compare the forward Laplacians with it on random networks.
"""

from __future__ import annotations

from dataclasses import dataclass

from staircase.lazytorch import torch


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


__all__ = ["Derivatives", "autograd_laplacian", "laplacian"]
