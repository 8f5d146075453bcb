"""Training methods compared against a plain baseline (claims A6 and A7): optimisers, learning-rate
schedules, initialisations, and first-layer pre-training. Architectures live in
``staircase.networks.architectures``. Every method keeps the stacked models (leading model axis, one per
seed) exactly independent: a model's trajectory is the one it would have if trained alone.

Optimisers (``train.optimizer``)
--------------------------------
* ``sgd``   - plain gradient descent on the full batch, ``lr``; ``train.momentum`` (heavy ball,
  PyTorch convention) turns it into SGD with momentum. ``train.weight_decay`` is coupled L2.
* ``adam``  - Adam (PyTorch defaults beta = (0.9, 0.999), eps = 1e-8); ``weight_decay`` coupled L2.
* ``adamw`` - AdamW: decoupled weight decay ``train.weight_decay`` (PyTorch default 1e-2).
* ``lbfgs`` - L-BFGS, exact per model (``BatchedLBFGS`` below): per-model history of
  ``train.lbfgs.history`` pairs and a per-model backtracking (Armijo) line search from the step
  length ``train.lr`` (1.0 is the natural choice). One training step is one L-BFGS iteration: one
  gradient plus the line search's loss evaluations, so compare it with the others by time.
* ``adam_lbfgs`` - Adam (``train.lr``, with the schedule) for ``train.lbfgs.switch_step`` steps,
  then L-BFGS with step length ``train.lbfgs.lr`` (default 1.0) for the remaining steps.

Adam and SGD step on the sum of the per-model losses: the gradient of model s's parameter slice is
that of its own loss, and both update element-wise, so the models stay independent. PyTorch's
``torch.optim.LBFGS`` on the same sum would couple them (one history, one line search, one step
length for all); ``BatchedLBFGS`` keeps history, direction, step length and line-search decisions
per model, and evaluates all models' trial points in one stacked forward pass.

Mini-batches (``train.batch_size``; sgd, adam, adamw)
-----------------------------------------------------
Without it every step takes the loss on all training points (full-batch gradient descent for
``sgd``). With it, each step's loss is the task's loss on ``batch_size`` points drawn without
replacement, afresh at every step (``Task.minibatch``: fitting tasks draw training points, PDE tasks
interior collocation points and use their boundary points in full). Each stacked seed draws its own
batches from its own ``torch.Generator`` (:func:`batch_generator`, seeded from the seed alone and
independent of the initialisation's stream), so the promise above holds: a seed's batches, and so
its trajectory, are those it would have trained alone. Sharing one batch across the stack would
have been cheaper by nothing measurable and would have tied each seed's run to its companions. The
generators' states are checkpointed, so a resumed run draws the same batches as an uninterrupted
one. Measurements always use every point.

Learning-rate schedules (``train.schedule``; first-order optimisers only)
--------------------------------------------------------------------------
The learning rate of update t (t = 0, 1, ...) is ``lr * lr_factor(t)`` with, over a horizon of T
steps (``train.steps``, or ``train.lbfgs.switch_step`` for adam_lbfgs) and W = ``warmup_steps``:

* warm-up: for t < W the factor is (t + 1) / W; afterwards the schedule below runs on t - W over
  the remaining T - W steps;
* ``constant``: 1;
* ``step``: ``gamma ** floor(t / step_size)``;
* ``cosine``: ``min_factor + (1 - min_factor) (1 + cos(pi t / T)) / 2``.

Initialisations (``model.init``)
--------------------------------
Per linear layer with fan_in inputs and fan_out outputs, drawn from the seed's own generator:

* ``default``: PyTorch's nn.Linear default, W and b uniform in +-1/sqrt(fan_in) (exactly what
  ``staircase.networks.mlp.StackedMLP`` draws);
* ``xavier``: W uniform in +-sqrt(6 / (fan_in + fan_out)) (Glorot, gain 1), b = 0;
* ``kaiming``: W normal with std sqrt(2 / fan_in) (He, fan-in mode, gain sqrt(2)), b = 0;
* ``structured``: the first hidden layer is built so its n neurons are epsilon-linearly
  independent: neuron i is sigma(s u_i . (x - c_i)) with centres c_i spread uniformly over the
  domain Omega (a scrambled Halton sequence), random unit directions u_i, and a scale growing with
  the width, ``s = model.init_scale * (n^(1/d) - 1) / |Omega|^(1/d)`` (about the inverse spacing of
  the centres, so neighbouring ramps overlap only a little). Later layers get the default init.
  Needs a monotone activation (a sine of one frequency spans only two functions) and a first layer
  that acts on x (not on a Fourier embedding).

First-layer pre-training (``train.pretrain``)
---------------------------------------------
Before ordinary training, ``pretrain.steps`` Adam steps (learning rate ``pretrain.lr``) on the
first hidden layer's weights and biases only, maximising ``log det(M + ridge I)`` where M is the
Gram matrix of the first layer's neurons on the task's rank quadrature (the matrix whose
eigenvalues define the epsilon-rank). The log-determinant rewards every eigenvalue, so it spreads
the neurons apart; ``ridge`` keeps it finite when M is singular. It uses no target information.
Its time counts towards the run's clocks (``train_s``, ``train_cpu_s``, ``elapsed_s``), not to its
steps; ``run.json`` records the epsilon-rank of every layer before and after it.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from staircase.training.fastopt import FastStep
from staircase.training.run_checks import MONOTONE_ACTIVATIONS, check_run_config  # noqa: F401  (re-exported)

OPTIMIZERS = ("sgd", "adam", "adamw", "lbfgs", "adam_lbfgs")
SCHEDULES = ("constant", "step", "cosine")


# ---- learning-rate schedules ---------------------------------------------------------------------
def lr_factor(t: int, schedule: dict | None, horizon: int) -> float:
    """The factor multiplying ``train.lr`` at update t (0-based); see the module docstring."""
    schedule = schedule or {}
    warmup = int(schedule.get("warmup_steps", 0))
    if t < warmup:
        return (t + 1) / warmup
    t, horizon = t - warmup, max(horizon - warmup, 1)
    name = schedule.get("name", "constant")
    if name == "constant":
        return 1.0
    if name == "step":
        return float(schedule.get("gamma", 0.5)) ** (t // int(schedule["step_size"]))
    if name == "cosine":
        lo = float(schedule.get("min_factor", 0.0))
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(t, horizon) / horizon))
    raise ValueError(f"train.schedule.name: unknown schedule {name!r}; choose one of {list(SCHEDULES)}")


# ---- mini-batches ---------------------------------------------------------------------------------
def batch_generator(seed: int) -> torch.Generator:
    """The generator of a seed's mini-batches: seeded from the seed alone (so a seed draws the same
    batches in any stack) through numpy's SeedSequence with a fixed tag, so its stream is not the
    initialisation's (``torch.Generator().manual_seed(seed)``)."""
    state = np.random.SeedSequence([int(seed), 0x62617463]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def draw_batches(generators, n_points: int, batch_size: int) -> torch.Tensor:
    """(S, batch_size) indices: for each seed, ``batch_size`` of ``n_points`` without replacement."""
    return torch.stack([torch.randperm(n_points, generator=g)[:batch_size] for g in generators])


# ---- optimisers ----------------------------------------------------------------------------------
def make_optimizer(params, train_cfg: dict) -> torch.optim.Optimizer:
    """A first-order optimiser: ``sgd`` (with ``momentum``), ``adam`` or ``adamw``."""
    name, lr = train_cfg["optimizer"], train_cfg["lr"]
    if name == "adam_lbfgs":
        name = "adam"
    params = list(params)
    # fused: one kernel for all parameters instead of a loop over them (the same update); capturable:
    # the step counters stay on the GPU, so that a CUDA graph can replay the step (train.cuda_graph)
    fast = {"fused": True}
    adam_fast = dict(fast, capturable=bool(train_cfg.get("cuda_graph")) and params[0].is_cuda)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=train_cfg.get("weight_decay", 0.0), **adam_fast)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=train_cfg.get("weight_decay", 1e-2), **adam_fast)
    if name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=train_cfg.get("momentum", 0.0),
            weight_decay=train_cfg.get("weight_decay", 0.0),
            **fast,
        )
    raise ValueError(f"train.optimizer: unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")


class BatchedLBFGS:
    """L-BFGS for S stacked models, exactly independent per model.

    ``params`` are tensors whose leading axis is the model axis; ``step(loss_fn)`` takes a function
    returning the per-model losses (S,) and does one iteration for every model: the gradient at
    the current point, the two-loop recursion over that model's own history (initial Hessian
    gamma I with gamma = s.y / y.y of its newest pair), and a backtracking line search on that
    model's own loss (start at ``lr``, or min(1, 1/|g|_1) lr on a model's first iteration as
    PyTorch does; halve until the Armijo condition f(x + t d) <= f(x) + c1 t g.d holds; after
    ``max_line_search`` halvings the model stays put and forgets its history). A pair (s, y)
    enters a model's history only if s.y > 1e-10 (keeps the inverse-Hessian estimate positive
    definite). All trial points are evaluated in one stacked forward pass; a model's decisions
    depend only on its own losses and gradients.
    """

    def __init__(self, params, lr: float = 1.0, history: int = 10, max_line_search: int = 25, c1: float = 1e-4):
        self.params = [p for p in params if p.requires_grad]
        self.n_models = self.params[0].shape[0]
        if any(p.shape[0] != self.n_models for p in self.params):
            raise ValueError("BatchedLBFGS: every parameter needs the same leading model axis")
        self.lr, self.m, self.max_ls, self.c1 = float(lr), int(history), int(max_line_search), float(c1)
        p0 = self.params[0]
        n_flat = sum(p[0].numel() for p in self.params)
        kw = dict(dtype=p0.dtype, device=p0.device)
        self.s_hist = torch.zeros(self.n_models, self.m, n_flat, **kw)
        self.y_hist = torch.zeros(self.n_models, self.m, n_flat, **kw)
        self.rho = torch.zeros(self.n_models, self.m, **kw)
        self.count = torch.zeros(self.n_models, dtype=torch.long, device=p0.device)
        self.head = torch.zeros(self.n_models, dtype=torch.long, device=p0.device)
        self.prev_x: torch.Tensor | None = None
        self.prev_g: torch.Tensor | None = None
        self.n_evals = 0  # loss evaluations (gradient ones included), for reporting

    # flat per-model views
    def _flat(self, tensors) -> torch.Tensor:
        return torch.cat([t.reshape(self.n_models, -1) for t in tensors], dim=1)

    @torch.no_grad()
    def _assign(self, x: torch.Tensor) -> None:
        i = 0
        for p in self.params:
            k = p[0].numel()
            p.copy_(x[:, i : i + k].reshape(p.shape))
            i += k

    def _forget(self, mask: torch.Tensor) -> None:
        self.count[mask] = 0
        self.head[mask] = 0
        self.rho[mask] = 0

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(self.n_models, device=g.device)
        q = g.clone()
        saved = []
        for k in range(self.m):  # newest to oldest, each model along its own ring buffer
            idx = (self.head - 1 - k) % self.m
            rho = self.rho[rows, idx] * (k < self.count)
            s, y = self.s_hist[rows, idx], self.y_hist[rows, idx]
            a = rho * (s * q).sum(-1)
            q -= a[:, None] * y
            saved.append((a, rho, s, y))
        newest = (self.head - 1) % self.m
        s, y = self.s_hist[rows, newest], self.y_hist[rows, newest]
        yy = (y * y).sum(-1)
        gamma = torch.where((self.count > 0) & (yy > 0), (s * y).sum(-1) / yy.clamp_min(1e-300), torch.ones_like(yy))
        r = gamma[:, None] * q
        for a, rho, s, y in reversed(saved):
            b = rho * (y * r).sum(-1)
            r += s * (a - b)[:, None]
        return -r

    def step(self, loss_fn) -> torch.Tensor:
        for p in self.params:
            p.grad = None
        loss = loss_fn()
        loss.sum().backward()
        self.n_evals += 1
        with torch.no_grad():
            f = loss.detach()
            x = self._flat(self.params).detach().clone()
            g = self._flat([p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params])
            g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
            if self.prev_x is not None:  # the pair of the previous iteration enters the history
                s, y = x - self.prev_x, g - self.prev_g
                ok = (s * y).sum(-1) > 1e-10
                rows = torch.nonzero(ok).flatten()
                slot = self.head[rows]
                self.s_hist[rows, slot] = s[rows]
                self.y_hist[rows, slot] = y[rows]
                self.rho[rows, slot] = 1.0 / (s[rows] * y[rows]).sum(-1)
                self.head[rows] = (slot + 1) % self.m
                self.count[rows] = torch.clamp(self.count[rows] + 1, max=self.m)
            d = self._direction(g)
            gtd = (g * d).sum(-1)
            uphill = ~(gtd < 0)  # not a descent direction (or NaN): steepest descent, fresh history
            if uphill.any():
                self._forget(uphill)
                d[uphill] = -g[uphill]
                gtd = (g * d).sum(-1)
            fresh = self.count == 0
            g_l1 = g.abs().sum(-1)
            t = torch.where(
                fresh, self.lr * torch.clamp(1.0 / g_l1.clamp_min(1e-300), max=1.0), torch.full_like(f, self.lr)
            )
            done = gtd >= 0  # zero gradient: nothing to do
            for _ in range(self.max_ls):
                self._assign(x + torch.where(done, torch.zeros_like(t), t)[:, None] * d)
                with torch.enable_grad():  # PDE losses may differentiate with respect to x
                    trial = loss_fn().detach()
                self.n_evals += 1
                accept = ~done & torch.isfinite(trial) & (trial <= f + self.c1 * t * gtd)
                done |= accept
                if bool(done.all()):
                    break
                t = torch.where(done, t, 0.5 * t)
            stuck = ~done
            t = torch.where(stuck | (gtd >= 0), torch.zeros_like(t), t)
            self._forget(stuck)
            self._assign(x + t[:, None] * d)
            self.prev_x, self.prev_g = x, g
        return f

    def state_dict(self) -> dict:
        keys = ("s_hist", "y_hist", "rho", "count", "head", "prev_x", "prev_g", "n_evals")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


class Method:
    """Optimiser(s) and learning-rate schedule of one run. ``step(loss_fn)`` does one training
    step: ``loss_fn()`` returns the per-model losses (S,) of the current parameters, and the
    return value is that (detached). ``state_dict``/``load_state_dict`` cover everything needed
    to resume."""

    def __init__(self, model, train_cfg: dict, fast_step: bool = True):
        name = train_cfg["optimizer"]
        if name not in OPTIMIZERS:
            raise ValueError(f"train.optimizer: unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")
        params = list(model.parameters())
        lbfgs = dict(train_cfg.get("lbfgs") or {})
        self.switch_step = None
        self.first = self.second = self.scheduler = None
        if name == "lbfgs":
            self.first = BatchedLBFGS(
                params,
                lr=train_cfg["lr"],
                history=lbfgs.get("history", 10),
                max_line_search=lbfgs.get("max_line_search", 25),
            )
        else:
            self.first = make_optimizer(params, train_cfg)
            horizon = train_cfg["steps"]
            if name == "adam_lbfgs":
                self.switch_step = int(lbfgs["switch_step"])
                horizon = self.switch_step
                self.second = BatchedLBFGS(
                    params,
                    lr=lbfgs.get("lr", 1.0),
                    history=lbfgs.get("history", 10),
                    max_line_search=lbfgs.get("max_line_search", 25),
                )
            schedule = train_cfg.get("schedule")
            if schedule and (schedule.get("name", "constant") != "constant" or schedule.get("warmup_steps", 0)):
                self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                    self.first, lambda t: lr_factor(t, schedule, horizon)
                )
        # fast_step: the first-order step without torch.optim's per-call bookkeeping (the same update;
        # staircase.training.speed)
        self.first_order = not isinstance(self.first, BatchedLBFGS)
        self.fast = FastStep(self.first) if fast_step and self.first_order else None
        self.t = 0

    @property
    def graph_safe(self) -> bool:
        """Whether a CUDA graph of one step replays every later step exactly: a first-order
        optimiser at a constant learning rate (a schedule changes it from Python)."""
        return self.first_order and self.second is None and self.scheduler is None

    @property
    def current(self):
        if self.second is not None and self.t >= self.switch_step:
            return self.second
        return self.first

    def step(self, loss_fn) -> torch.Tensor:
        opt = self.current
        if isinstance(opt, BatchedLBFGS):
            loss = opt.step(loss_fn)
        else:
            stepper = self.fast or opt  # the same update either way
            stepper.zero_grad()  # set to None, both
            loss = loss_fn()
            loss.sum().backward()
            stepper.step()
            if self.scheduler is not None:
                self.scheduler.step()
            loss = loss.detach()
        self.t += 1
        return loss

    def count_replayed_step(self) -> None:
        """A step replayed from a CUDA graph (staircase.training.speed.CudaGraphStep) ran no Python: count it."""
        self.t += 1

    def lr(self) -> float:
        opt = self.current
        return opt.lr if isinstance(opt, BatchedLBFGS) else opt.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {
            "t": self.t,
            "first": self.first.state_dict(),
            "second": self.second.state_dict() if self.second is not None else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.t = state["t"]
        self.first.load_state_dict(state["first"])
        if self.fast is not None:
            self.fast.state_changed()
        if self.second is not None:
            self.second.load_state_dict(state["second"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])


def make_method(model, train_cfg: dict, fast_step: bool = True) -> Method:
    return Method(model, train_cfg, fast_step)


# ---- first-layer pre-training --------------------------------------------------------------------
def first_layer_parameters(model) -> list[torch.nn.Parameter]:
    """The weights and bias of the first hidden layer (architectures may define their own)."""
    if hasattr(model, "first_layer_parameters"):
        return list(model.first_layer_parameters())
    return [model.weights[0], model.biases[0]]


def logdet_objective(hidden0: torch.Tensor, weights: torch.Tensor, ridge: float) -> torch.Tensor:
    """Per-model log det(M + ridge I), M the float64 Gram matrix of the first layer's neurons
    (S, N, n) with quadrature weights (N,)."""
    phi = hidden0.to(torch.float64)
    m = (phi * weights[:, None]).transpose(-1, -2) @ phi
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    return torch.logdet(m + ridge * eye)


def pretrain_first_layer(model, x: torch.Tensor, weights, cfg: dict) -> dict:
    """Maximise log det(M + ridge I) of the first hidden layer's Gram matrix over the first
    layer's parameters only (Adam, ``cfg['steps']`` steps, ``cfg['lr']``). Each model's objective
    depends only on its own parameters, so the stacked models stay independent. Returns the
    objective per model before and after, and the wall and CPU seconds it took."""
    steps, lr, ridge = int(cfg.get("steps", 0)), float(cfg.get("lr", 1e-2)), float(cfg.get("ridge", 1e-6))
    objective = cfg.get("objective", "logdet")
    if objective != "logdet":
        raise ValueError(f"train.pretrain.objective: unknown objective {objective!r}; choose one of ['logdet']")
    params = first_layer_parameters(model)
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64), device=x.device)
    opt = torch.optim.Adam(params, lr=lr)
    wall0, cpu0 = time.perf_counter(), time.thread_time()

    def value():
        _, hidden = model(x, return_hidden=True)
        return logdet_objective(hidden[0], w, ridge)

    with torch.no_grad():
        before = value().cpu().numpy()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        (-value()).sum().backward()
        opt.step()
    for p in params:
        p.grad = None
    with torch.no_grad():
        after = value().cpu().numpy()
    return {
        "steps": steps,
        "lr": lr,
        "ridge": ridge,
        "objective": objective,
        "logdet_before": before.tolist(),
        "logdet_after": after.tolist(),
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.thread_time() - cpu0,
    }
