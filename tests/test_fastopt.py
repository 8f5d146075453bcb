"""FastStep must reproduce the optimizer's own update bit for bit, and fall back where it cannot."""

from __future__ import annotations

import pytest
import torch

from staircase.networks.mlp import StackedMLP
from staircase.training.fastopt import FastStep

X = torch.linspace(-1, 1, 32)[:, None]
Y = torch.sin(3 * X[:, 0])

OPTIMIZERS = {
    "adam_fused": lambda p: torch.optim.Adam(p, lr=1e-2, fused=True),
    "adam_loop": lambda p: torch.optim.Adam(p, lr=1e-2, foreach=False),
    "adam_weight_decay": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, fused=True),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, fused=True),
    "sgd_plain": lambda p: torch.optim.SGD(p, lr=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2),  # not on the fast path: falls back
    "adam_amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True),  # likewise
}


def _train(make_opt, fast: bool, steps=25):
    model = StackedMLP([0, 1], 1, 8, 2, "tanh")
    opt = make_opt(model.parameters())
    stepper = FastStep(opt)
    for i in range(steps):
        if i == 10:  # a learning-rate change between steps (as a schedule would make) is honoured
            opt.param_groups[0]["lr"] *= 0.5
        if fast:
            stepper.zero_grad()
        else:
            opt.zero_grad(set_to_none=True)
        ((model(X)[..., 0] - Y) ** 2).mean(-1).sum().backward()
        stepper.step() if fast else opt.step()
    return model, opt, stepper


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fast_step_is_the_optimizers_step(name):
    ref, ref_opt, _ = _train(OPTIMIZERS[name], fast=False)
    got, got_opt, stepper = _train(OPTIMIZERS[name], fast=True)
    for p, q in zip(ref.parameters(), got.parameters()):
        assert torch.equal(p, q)
    assert str(ref_opt.state_dict()) == str(got_opt.state_dict())  # the state too (resume)
    expect_fast = name not in ("adamw", "adam_amsgrad")
    assert (stepper.kind is not None) == expect_fast
