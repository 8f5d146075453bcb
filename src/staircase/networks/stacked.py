"""The stacked-network base class: S independent models of one shape along a leading model axis.

What every stacked network here shares (``StackedMLP`` and the architectures built on it,
``BiasFreeNet``): the model axis (one model per seed or sweep cell, ``n_models``); the parameter
layout, one weight tensor per linear layer of shape (S, fan_in, fan_out) so that every layer is one
batched matmul ``h @ w`` (and, for networks with biases, one bias (S, 1, fan_out)); the input rule (x
(N, d) is shared by all models, (S, N, d) gives each its own); and the initialisation rule: model s
draws its parameters from its own ``torch.Generator`` seeded with ``seeds[s]``, so its initial
weights depend only on its seed, not on which other models share the stack.
"""

from __future__ import annotations

import torch
from torch import nn


class StackedNet(nn.Module):
    """Base class: the model axis, the layer parameters and the per-seed initialisation loop.

    A subclass creates its layers with ``_add_layers`` and draws model s's parameters in
    ``_init_model(s, seed, gen)``; ``reset_parameters`` gives each model its own fresh generator.
    """

    def __init__(self, seeds):
        super().__init__()
        self.seeds = [int(s) for s in seeds]

    @property
    def n_models(self) -> int:
        return len(self.seeds)

    def stack_input(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, d), shared by all models, as (S, N, d) (a view); an (S, N, d) x as it is."""
        return x.expand(self.n_models, *x.shape) if x.dim() == 2 else x

    def _add_layers(self, sizes: list[int], dtype, biases: bool) -> None:
        """``weights`` (and with ``biases``, ``biases``): one (S, fan_in, fan_out) weight (and
        (S, 1, fan_out) bias) per consecutive pair of ``sizes``, uninitialised."""
        self.weights = nn.ParameterList()
        if biases:
            self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.weights.append(nn.Parameter(torch.empty(self.n_models, fan_in, fan_out, dtype=dtype)))
            if biases:
                self.biases.append(nn.Parameter(torch.empty(self.n_models, 1, fan_out, dtype=dtype)))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for s, seed in enumerate(self.seeds):
            self._init_model(s, seed, torch.Generator().manual_seed(seed))

    def _init_model(self, s: int, seed: int, gen: torch.Generator) -> None:
        """Draw model s's parameters from ``gen`` (seeded with ``seed``), in a fixed order."""
        raise NotImplementedError
