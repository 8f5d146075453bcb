"""``optimizer.zero_grad()`` and ``optimizer.step()`` without torch.optim's per-call bookkeeping.

Each ``torch.optim`` call wraps a little arithmetic in a lot of Python: a profiler record, hook
dispatch, a grad-mode guard, and ``_init_group`` rebuilding the lists of parameters, gradients
and state on every step. For a small stacked MLP on one CPU core that was ~0.4 ms a step, 15 % of
the whole step. :class:`FastStep` calls the same functional kernel the optimizer's ``step`` calls
(``torch.optim.adam.adam`` / ``torch.optim.sgd.sgd``), on the optimizer's own state tensors and
with the hyper-parameters read from its ``param_groups`` at every call (so learning-rate
schedules still apply): the update is bit for bit the optimizer's own (tests/test_fastopt.py).

It takes the fast path only where that is exactly equivalent: plain ``Adam`` (no amsgrad) and
``SGD``, no step hooks, every parameter with a gradient, state already created. Otherwise (the
first step, which creates the state; any other optimizer, e.g. L-BFGS with a closure) it calls the
optimizer itself.
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam as _adam
from torch.optim.sgd import sgd as _sgd


class FastStep:
    def __init__(self, optimizer: torch.optim.Optimizer):
        self.opt = optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self._lists: list | None = None  # per group: the state tensors, built after the first step
        kind = type(optimizer)
        self.kind = (
            "adam"
            if kind is torch.optim.Adam and not any(g["amsgrad"] for g in optimizer.param_groups)
            else "sgd"
            if kind is torch.optim.SGD
            else None
        )

    def zero_grad(self) -> None:
        if self.kind is None:
            self.opt.zero_grad(set_to_none=True)
            return
        for p in self.params:
            p.grad = None

    def _fast_ok(self) -> bool:
        opt = self.opt
        hooks = opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
        return self.kind is not None and not hooks and all(p.grad is not None for p in self.params)

    def _build(self) -> list | None:
        lists = []
        for group in self.opt.param_groups:
            states = [self.opt.state.get(p) for p in group["params"]]
            if self.kind == "adam":
                if any(not s for s in states):
                    return None
                complex_ = any(torch.is_complex(p) for p in group["params"])
                lists.append(
                    (
                        [s["exp_avg"] for s in states],
                        [s["exp_avg_sq"] for s in states],
                        [s["step"] for s in states],
                        complex_,
                    )
                )
            elif group["momentum"] == 0:  # plain SGD keeps no state
                lists.append(([None] * len(states),))
            else:
                bufs = [(s or {}).get("momentum_buffer") for s in states]
                if any(b is None for b in bufs):
                    return None
                lists.append((bufs,))
        return lists

    @torch.no_grad()
    def step(self) -> None:
        if not self._fast_ok():
            self.opt.step()
            self._lists = None
            return
        if self._lists is None:
            self._lists = self._build()
            if self._lists is None:  # state not created yet: the optimizer's own first step does it
                self.opt.step()
                return
        for group, lists in zip(self.opt.param_groups, self._lists):
            params = group["params"]
            grads = [p.grad for p in params]
            if self.kind == "adam":
                exp_avgs, exp_avg_sqs, steps, complex_ = lists
                beta1, beta2 = group["betas"]
                _adam(
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    [],
                    steps,
                    foreach=group["foreach"],
                    capturable=group["capturable"],
                    differentiable=group["differentiable"],
                    fused=group["fused"],
                    has_complex=complex_,
                    decoupled_weight_decay=group["decoupled_weight_decay"],
                    amsgrad=False,
                    beta1=beta1,
                    beta2=beta2,
                    lr=group["lr"],
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                )
            else:
                (bufs,) = lists
                _sgd(
                    params,
                    grads,
                    bufs,
                    foreach=group["foreach"],
                    fused=group["fused"],
                    weight_decay=group["weight_decay"],
                    momentum=group["momentum"],
                    lr=group["lr"],
                    dampening=group["dampening"],
                    nesterov=group["nesterov"],
                    maximize=group["maximize"],
                )

    def state_changed(self) -> None:
        """Call after ``optimizer.load_state_dict``: the state tensors are new objects."""
        self._lists = None
