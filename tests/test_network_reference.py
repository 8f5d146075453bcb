"""Every stacked network class against a saved reference, to a few float eps of its scale: initial parameters,
forward pass (with the hidden layers), forward Laplacian and the weight gradient of a loss built on it.

The reference (tests/data/network_reference.npz) was written by the code before the networks shared
a base class and one forward Laplacian (issue 18); regenerate it only for an intended change of
numbers: ``PYTHONPATH=src python tests/test_network_reference.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from staircase.networks.architectures import (
    ConfigurableMLP,
    StackedFourierMLP,
    StackedModifiedMLP,
    StackedResMLP,
    build_model,
)
from staircase.networks.bias_free import BiasFreeNet
from staircase.networks.mlp import StackedMLP

REFERENCE = Path(__file__).parent / "data" / "network_reference.npz"
SEEDS = [3, 0]
BOUNDS = [(-1.0, 1.0), (0.0, 2.0)]

# name -> a function building the model (d_in = 2)
MODELS = {
    "mlp_tanh": lambda: StackedMLP(SEEDS, 2, 5, 2, "tanh"),
    "mlp_sin": lambda: StackedMLP(SEEDS, 2, 5, 3, "sin"),
    "mlp_gelu_f64": lambda: StackedMLP(SEEDS, 2, 4, 2, "gelu", d_out=2, dtype=torch.float64),
    "mlp_relu_depth1": lambda: StackedMLP(SEEDS, 2, 6, 1, "relu"),
    "mlp_sigmoid": lambda: StackedMLP(SEEDS, 2, 4, 2, "sigmoid"),
    "configurable_xavier": lambda: ConfigurableMLP(SEEDS, 2, 5, 2, "tanh", init="xavier"),
    "configurable_kaiming_layer": lambda: ConfigurableMLP(SEEDS, 2, 5, 2, "sin", init="kaiming", norm="layer"),
    "configurable_structured": lambda: ConfigurableMLP(
        SEEDS, 2, 5, 2, "tanh", init="structured", init_scale=1.5, bounds=BOUNDS
    ),
    "configurable_batch": lambda: ConfigurableMLP(SEEDS, 2, 5, 2, "tanh", norm="batch"),
    "resnet": lambda: StackedResMLP(SEEDS, 2, 5, 3, "tanh"),
    "resnet_layer": lambda: StackedResMLP(SEEDS, 2, 5, 2, "gelu", norm="layer"),
    "fourier": lambda: StackedFourierMLP(SEEDS, 2, 5, 2, "tanh", n_features=3, sigma=2.0),
    "modified": lambda: StackedModifiedMLP(SEEDS, 2, 5, 3, "tanh"),
    "modified_structured": lambda: StackedModifiedMLP(SEEDS, 2, 5, 2, "sin", init="structured", bounds=BOUNDS),
    "built_gain": lambda: build_model(
        {"architecture": "mlp", "width": 5, "depth": 2, "activation": "tanh", "init_gain": 0.1}, SEEDS, 2, BOUNDS
    ),
    "built_modified_gain": lambda: build_model(
        {"architecture": "modified_mlp", "width": 4, "depth": 2, "activation": "tanh", "init_gain": 0.5},
        SEEDS,
        2,
        BOUNDS,
    ),
}

BIAS_FREE = {
    "bias_free": lambda: BiasFreeNet(SEEDS, [4, 5, 5, 1], [True, False, False]),
    "bias_free_skip": lambda: BiasFreeNet(
        SEEDS, [4, 5, 5, 5, 5, 1], [True, True, True, False, False], skip=True, init_scale=0.5
    ),
    "bias_free_f32": lambda: BiasFreeNet(SEEDS, [3, 4, 2], [True, False], dtype=torch.float32),
}


def _points(dtype, d=2, n=7):
    gen = torch.Generator().manual_seed(11)
    return torch.rand((n, d), generator=gen, dtype=torch.float64).to(dtype)


def _record_model(name, model) -> dict[str, np.ndarray]:
    rec = {f"{name}/param/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}
    x = _points(next(model.parameters()).dtype)
    out, hidden = model(x, return_hidden=True)
    rec[f"{name}/out"] = out.detach().numpy()
    for l, h in enumerate(hidden):
        rec[f"{name}/hidden{l}"] = h.detach().numpy()
    der = model.forward_laplacian(x)
    rec[f"{name}/lap_out"] = der.lap_out.detach().numpy()
    rec[f"{name}/grad_out"] = der.grad_out.detach().numpy()
    for l, lh in enumerate(der.lap_hidden):
        rec[f"{name}/lap_hidden{l}"] = lh.detach().numpy()
    ((der.lap_out**2).sum() + (der.out**2).sum()).backward()
    for k, p in model.named_parameters():
        rec[f"{name}/grad/{k}"] = p.grad.numpy().copy()
    return rec


def _record_bias_free(name, net) -> dict[str, np.ndarray]:
    rec = {f"{name}/param/{k}": v.detach().numpy().copy() for k, v in net.state_dict().items()}
    x = _points(net.weights[0].dtype, d=net.sizes[0])
    out, inputs, pre = net(x, keep=True)
    rec[f"{name}/out"] = out.detach().numpy()
    for l, (a, z) in enumerate(zip(inputs, pre)):
        rec[f"{name}/input{l}"] = a.detach().numpy()
        rec[f"{name}/pre{l}"] = z.detach().numpy()
    for l, m in enumerate(net.matrices()):
        rec[f"{name}/matrix{l}"] = m.numpy()
    return rec


def record(name: str) -> dict[str, np.ndarray]:
    if name in MODELS:
        return _record_model(name, MODELS[name]())
    return _record_bias_free(name, BIAS_FREE[name]())


@pytest.mark.parametrize("name", [*MODELS, *BIAS_FREE])
def test_matches_saved_reference(name):
    with np.load(REFERENCE) as ref:
        expected = {k: ref[k] for k in ref.files if k.startswith(f"{name}/")}
    got = record(name)
    assert sorted(got) == sorted(expected)
    for key, value in got.items():
        assert value.dtype == expected[key].dtype, key
        # bit for bit is a promise on one CPU kind only: float32 kernels pick other instructions on
        # another CPU (the saved reference differs by ~1e-8 on an AMD EPYC), so a few float eps
        # (of each array's scale: gradients of size 1e3 cancel to entries of size 1)
        eps = np.finfo(value.dtype).eps if np.issubdtype(value.dtype, np.floating) else 0
        # a gradient's scale is that of all the model's gradients (batch norm's bias gradients are 0 + rounding)
        family = [k for k in expected if "/grad/" in k] if "/grad/" in key else [key]
        scale = max(float(np.max(np.abs(expected[k]), initial=1.0)) for k in family) if eps else 0.0
        np.testing.assert_allclose(value, expected[key], rtol=64 * eps, atol=64 * eps * scale, err_msg=key, strict=True)


if __name__ == "__main__":
    arrays = {}
    for name in [*MODELS, *BIAS_FREE]:
        arrays.update(record(name))
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, **arrays)
    print(f"{len(arrays)} arrays -> {REFERENCE}", file=sys.stderr)
