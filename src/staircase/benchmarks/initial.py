"""The same starting point for every contender of the benchmarks: the experiment's task, our
engine's initial weights, and the experiment's MLP as the plain ``nn.Sequential`` a user would
write. Starting from the same weights, every contender follows the same trajectory up to
rounding, so that speed is the only difference (bench.py's docstring).
"""

from __future__ import annotations

import torch
from torch import nn

from staircase.networks.mlp import StackedMLP, get_activation
from staircase.problems import make_task


def task_of(cfg: dict):
    """The task of a resolved run config (its ``task:`` section)."""
    params = dict(cfg["task"])
    return make_task(params.pop("name"), **params)


def activation_module(name: str):
    """The configured activation as an nn.Module, for the naive nn.Sequential."""
    builtin = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
    if name in builtin:
        return builtin[name]()
    fn = get_activation(name).fn

    class Act(nn.Module):
        def forward(self, x):
            return fn(x)

    return Act()


def initial_weights(cfg: dict, seed: int, d_in: int) -> list[tuple]:
    """The initial (W (fan_in, fan_out), b (fan_out,)) of every layer of our engine's model for
    ``seed``: the peers start from exactly these, so that every contender follows the same
    trajectory up to rounding, and speed is the only difference."""
    m = cfg["model"]
    net = StackedMLP([seed], d_in, m["width"], m["depth"], m["activation"], dtype=torch.float32)
    return [(w[0].detach().clone(), b[0, 0].detach().clone()) for w, b in zip(net.weights, net.biases)]


def load_linears(linears, weights) -> None:
    """Copy ``weights`` (:func:`initial_weights`) into torch Linear layers (weight (out, in))."""
    with torch.no_grad():
        for lin, (w, b) in zip(linears, weights):
            lin.weight.copy_(w.T)
            lin.bias.copy_(b)


def sequential(cfg: dict, seed: int, d_in: int):
    """The experiment's MLP as a plain nn.Sequential starting from our engine's weights of ``seed``."""
    m = cfg["model"]
    layers, d = [], d_in
    for _ in range(m["depth"]):
        layers += [nn.Linear(d, m["width"]), activation_module(m["activation"])]
        d = m["width"]
    net = nn.Sequential(*layers, nn.Linear(d, 1))
    load_linears([mod for mod in net if isinstance(mod, nn.Linear)], initial_weights(cfg, seed, d_in))
    return net
