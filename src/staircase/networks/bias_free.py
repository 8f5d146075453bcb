"""Bias-free fully connected networks, S of them stacked along a leading model axis.

``BiasFreeNet(seeds, sizes, relu, skip)`` holds one weight tensor per layer of shape
(S, fan_in, fan_out) (so that every layer is one batched matmul ``h @ w``); in the papers'
convention the layer's matrix is its transpose, W_l = w[s].T of shape (n_l, n_{l-1}). Layer l's
output goes through a ReLU when ``relu[l]``; with ``skip``, every ReLU layer after the first whose
input and output widths agree is a residual block h_l = h_{l-1} + relu(z_l). No biases anywhere, so
without skips the network is positively homogeneous in its weights (of degree = number of layers).

Initialisation: uniform with variance ``init_scale^2 * gain / fan_in``, gain 2 for a layer followed by
a ReLU (He) and 1 otherwise (LeCun); each model s draws from its own ``torch.Generator`` seeded with
``seeds[s]``, so its initial weights depend only on its seed, not on what else is stacked.
``forward(x, keep=True)`` also returns every layer's input (X_{l-1}) and pre-activation (z_l).
"""

from __future__ import annotations

import math

import torch

from staircase.networks import init as weight_init
from staircase.networks.stacked import StackedNet


class BiasFreeNet(StackedNet):
    def __init__(
        self,
        seeds,
        sizes: list[int],
        relu: list[bool],
        skip: bool = False,
        init_scale: float = 1.0,
        dtype=torch.float64,
    ):
        super().__init__(seeds)
        if len(relu) != len(sizes) - 1:
            raise ValueError(f"relu flags ({len(relu)}) must match the number of layers ({len(sizes) - 1})")
        self.sizes = list(sizes)
        self.relu = list(relu)
        self.residual = [
            bool(skip and relu[l] and l > 0 and relu[l - 1] and sizes[l] == sizes[l + 1]) for l in range(len(relu))
        ]
        self._add_layers(self.sizes, dtype, biases=False)
        self.init_scale = float(init_scale)
        self.reset_parameters()

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def _init_model(self, s: int, seed: int, gen: torch.Generator) -> None:
        for w, r in zip(self.weights, self.relu):
            bound = self.init_scale * math.sqrt(3.0 * (2.0 if r else 1.0) / w.shape[1])
            w[s].copy_(weight_init.uniform(w.shape[1:], bound, gen))

    def forward(self, x: torch.Tensor, keep: bool = False, weights: list[torch.Tensor] | None = None):
        """x: (N, d) shared by all models or (S, N, d). Returns out (S, N, d_out) and, with ``keep``,
        (inputs, pre): the input X_{l-1} (S, N, n_{l-1}) and pre-activation z_l (S, N, n_l) of every layer.
        ``weights`` (one per layer, as ``self.weights``) replaces the network's own: paper B measures
        with float64 copies it differentiates (staircase.training.collapse)."""
        h = self.stack_input(x)
        inputs, pre = [], []
        for w, r, res in zip(self.weights if weights is None else weights, self.relu, self.residual):
            inputs.append(h)
            z = torch.bmm(h, w)
            pre.append(z)
            a = torch.relu(z) if r else z
            h = h + a if res else a
        return (h, inputs, pre) if keep else h

    def matrices(self) -> list[torch.Tensor]:
        """The layers in the papers' convention: W_l of shape (S, n_l, n_{l-1}), detached."""
        return [w.detach().transpose(1, 2) for w in self.weights]
