"""The contenders of the benchmarks, each run inside its own worker process (worker.py):

* :func:`run_ours` - our engine (``staircase.training.trainer.Trainer``, every seed stacked), on the
  experiment's schedule, measuring at the ends only, or after every step;
* :func:`run_naive` - what one would write by hand: one ``nn.Sequential`` per seed, Adam, ``item()``
  every step, the epsilon-rank of the last hidden layer by SVD at every log step;
* :func:`run_deepxde` - DeepXDE (PyTorch backend) on the same PDE problem;
* :func:`run_user_loop` - a user's own loop with or without a :class:`staircase.training.tracker.Tracker`.

Each returns one JSON-able dict: the contender, its device, how many models it trained for how
many steps with how many measurements, its wall and CPU seconds, its final losses and errors.
All start from the same weights (initial.py).
"""

from __future__ import annotations

import copy
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from staircase.benchmarks.initial import initial_weights, load_linears, sequential, task_of
from staircase.core.schedule import log_schedule
from staircase.problems.pde import PDETask
from staircase.training.tracker import Tracker
from staircase.training.trainer import Trainer


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if str(device).startswith("cuda") else platform.machine()


def sync(device: str) -> None:
    """Wait for the device's queued work, so that a clock read after it counts that work."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class Stopwatch:
    """Wall and CPU seconds since it was made, each read after the device's queued work is done."""

    def __init__(self, device: str):
        self.device = device
        sync(device)
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        sync(self.device)
        return time.perf_counter() - self.t0, time.process_time() - self.c0


# ---- our engine ------------------------------------------------------------------------------
def with_schedule(cfg: dict, dense_every: int, dense_until: int) -> dict:
    """The same run on another measurement schedule (``sparse_every``: the run's steps)."""
    cfg = copy.deepcopy(cfg)
    steps = cfg["train"]["steps"]
    cfg["log"] = {"dense_every": dense_every, "dense_until": dense_until, "sparse_every": steps}
    return cfg


def ends_only(cfg: dict) -> dict:
    """The same run, measuring only at step 0 and at the last step."""
    return with_schedule(cfg, cfg["train"]["steps"], 0)


def every_step(cfg: dict) -> dict:
    """The same run, measuring after every step."""
    return with_schedule(cfg, 1, cfg["train"]["steps"])


SCHEDULES = {"default": lambda cfg: cfg, "ends": ends_only, "every": every_step}


def trajectory(trainer) -> dict:
    """The measured series the stair analysis reads: the eps-rank of the last hidden layer at the
    main eps and the loss, (seeds, measurements), for the schedule study."""
    return {
        "steps": [int(t) for t in trainer.rec.steps],
        "ranks": trainer.main_ranks().tolist(),
        "loss": np.stack(trainer.rec.scalars["loss"], axis=1).tolist(),
    }


def run_ours(cfg: dict, schedule: str = "default") -> dict:
    """Our engine on one variant: every seed stacked in this process; ``schedule``: the experiment's
    (``default``), measuring at the ``ends`` only, or after ``every`` step."""
    cfg = SCHEDULES[schedule](cfg)
    cfg = dict(cfg, train=dict(cfg["train"], checkpoint_every=0))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, checkpoint_dir=None, progress=False)
        sync(trainer.device)
        c0 = time.process_time()
        trainer.train()
        sync(trainer.device)
        cpu = time.process_time() - c0
    rec = trainer.rec.scalars
    return {
        "contender": "ours" if schedule == "default" else "ours_ends_only",
        "device": trainer.device,
        "device_name": device_name(trainer.device),
        "n_models": len(cfg["seeds"]),
        "steps": trainer.step,
        "measurements": len(trainer.rec.steps),
        "wall_s": trainer.elapsed,
        "cpu_s": cpu,
        # the time spent in training steps alone (Trainer.train_clock: measurements excluded)
        "train_wall_s": float(trainer.train_clock[0]),
        "train_cpu_s": float(trainer.train_clock[1]),
        # the measurements' CPU time by part (staircase.training.clocks.MeasureClock): where the tracking overhead goes
        **{f"measure_{part}_cpu_s": float(v) for part, v in trainer.measure_clock.seconds.items()},
        "measure_cpu_s": trainer.measure_clock.total(),
        "final_loss": [float(v) for v in rec["loss"][-1]],
        "final_rel_l2": [float(v) for v in rec["rel_l2"][-1]],
        "torch_threads": torch.get_num_threads(),
        **(trajectory(trainer) if schedule == "every" else {}),
    }


# ---- a user's own loop, with and without the Tracker ----------------------------------------
def _tracker(cfg: dict, task, nets, out: Path) -> Tracker:
    """A Tracker measuring on the experiment's rank quadrature and log schedule, with its exact
    solution (A3's bound)."""
    xr, wr = task.rank_points()
    return Tracker(
        nets,
        xr,
        None if cfg["rank"]["normalisation"] == "mean" else wr,
        eps=cfg["rank"]["eps"],
        main_eps=cfg["rank"]["main_eps"],
        target=task.exact(xr),
        schedule={**cfg["log"], "steps": cfg["train"]["steps"]},
        seeds=cfg["seeds"],
        out=out / "runs" / cfg["experiment"] / cfg["variant"],
        progress=False,  # the benchmark prints its own lines
    )


def _lock_step(nets, opts, x, y, steps: int, tracker: Tracker | None) -> list:
    """Train every net ``steps`` Adam steps on the MSE, in lock-step; the tracker (if any) sees
    every step's losses. Returns the final losses."""
    for step in range(steps + 1):
        losses = [((net(x) - y) ** 2).mean() for net in nets]
        if tracker is not None:
            tracker.step(step, losses)
        if step == steps:
            break
        for opt, loss in zip(opts, losses):
            opt.zero_grad()
            loss.backward()
            opt.step()
    return losses


def run_user_loop(cfg: dict, tracked: bool, device: str = "cpu") -> dict:
    """A user's own training loop of a fitting experiment: one nn.Sequential per seed (our engine's
    initial weights), all trained in lock-step in this process by torch.optim.Adam on the MSE, with
    (``tracked``) or without a :class:`staircase.training.tracker.Tracker` measuring on the experiment's rank
    quadrature and log schedule with its exact solution (A3's bound). The same loop otherwise: the
    ratio of the two is the tracker's overhead."""
    torch.set_num_threads(1)
    task = task_of(cfg)
    nets = [sequential(cfg, s, task.d).to(device) for s in cfg["seeds"]]
    opts = [torch.optim.Adam(net.parameters(), lr=cfg["train"]["lr"]) for net in nets]
    data = task.train_data(device, torch.float32)
    steps = cfg["train"]["steps"]
    with tempfile.TemporaryDirectory() as tmp:
        tracker = _tracker(cfg, task, nets, Path(tmp)) if tracked else None
        clock = Stopwatch(device)
        losses = _lock_step(nets, opts, data["x"], data["y"][:, None], steps, tracker)
        if tracker is not None:
            tracker.close()
        wall, cpu = clock.read()
    return {
        "contender": "user_loop_tracked" if tracked else "user_loop",
        "device": device,
        "device_name": device_name(device),
        "n_models": len(nets),
        "steps": steps,
        "measurements": tracker.clock.count if tracker else 0,
        "wall_s": wall,
        "cpu_s": cpu,
        **({f"measure_{k}_cpu_s": v for k, v in tracker.clock.seconds.items()} if tracker else {}),
        "measure_cpu_s": tracker.clock.total() if tracker else 0.0,
        "final_loss": [float(v) for v in losses],
        "final_rel_l2": [float("nan")] * len(nets),
        "torch_threads": torch.get_num_threads(),
    }


# ---- the naive loop --------------------------------------------------------------------------
def _naive_loss(task, net, data):
    """The training loss of one nn.Sequential, written the usual way: for a PDE task, the Laplacian
    by autograd (double backward)."""
    if not isinstance(task, PDETask):
        x, y = data["x"], data["y"]
        return lambda: ((net(x)[:, 0] - y) ** 2).mean()
    x_int, f, x_bd, g = data["x_int"], data["f"], data["x_bd"], data["g"]

    def loss_fn():
        x = x_int.clone().requires_grad_(True)
        u = net(x)
        (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        lap = sum(torch.autograd.grad(grad[:, k].sum(), x, create_graph=True)[0][:, k] for k in range(task.d))
        r_int = task.operator(u[:, 0], lap) - f
        return (r_int**2).mean() + task.boundary_weight * ((net(x_bd)[:, 0] - g) ** 2).mean()

    return loss_fn


def _naive_probe(cfg: dict, task, net, device: str):
    """What the naive loop measures at a log step, as a function: (relative L2 error, eps-rank of the
    last hidden layer at the main eps by an SVD of its features, weighted, on the rank points)."""
    features = net[:-1]
    xr, wr = task.rank_points()
    if cfg["rank"]["normalisation"] == "mean":
        wr = np.full(len(xr), 1.0 / len(xr))
    xr = torch.as_tensor(xr, dtype=torch.float32, device=device)
    sw = torch.as_tensor(np.sqrt(wr), dtype=torch.float32, device=device)[:, None]
    xe = task.error_points()
    fe = torch.as_tensor(task.exact(xe), dtype=torch.float32, device=device)
    xe = torch.as_tensor(xe, dtype=torch.float32, device=device)
    eps = float(cfg["rank"]["main_eps"])

    @torch.no_grad()
    def probe() -> tuple[torch.Tensor, int]:
        s = torch.linalg.svdvals(features(xr) * sw)
        rel = torch.linalg.vector_norm(net(xe)[:, 0] - fe) / torch.linalg.vector_norm(fe)
        return rel, int((s**2 > eps).sum())

    return probe


def run_naive(cfg: dict, seed: int, device: str = "cpu") -> dict:
    """What one would write by hand: one nn.Sequential, Adam, item() every step, and the
    epsilon-rank of the last hidden layer by SVD at every log step. For a PDE task the Laplacian
    comes from autograd (double backward), the usual way."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    task = task_of(cfg)
    tr, lg = cfg["train"], cfg["log"]
    net = sequential(cfg, seed, task.d).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=tr["lr"])
    loss_fn = _naive_loss(task, net, task.train_data(device, torch.float32))
    probe = _naive_probe(cfg, task, net, device)
    steps = tr["steps"]
    log = set(int(s) for s in log_schedule(steps, lg["dense_every"], lg["dense_until"], lg["sparse_every"]))
    losses, history = [], []
    clock = Stopwatch(device)
    for step in range(steps + 1):
        if step in log:
            rel, rank = probe()
            history.append((step, loss_fn().item(), rel.item(), rank))
        if step == steps:
            break
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    wall, cpu = clock.read()
    return {
        "contender": "naive",
        "device": device,
        "device_name": device_name(device),
        "n_models": 1,
        "seed": seed,
        "steps": steps,
        "measurements": len(history),
        "wall_s": wall,
        "cpu_s": cpu,
        "final_loss": [history[-1][1]],
        "final_rel_l2": [history[-1][2]],
        "torch_threads": torch.get_num_threads(),
    }


# ---- DeepXDE -------------------------------------------------------------------------------
def _deepxde_model(dde, cfg: dict, task, seed: int):
    """The DeepXDE model of the PDE problem: the same interior collocation points (as anchors), the
    same boundary points and values (a PointSetBC), loss weights, network and initial weights."""
    m, tr = cfg["model"], cfg["train"]

    def pde(x, u, f):
        lap = sum(dde.grad.hessian(u, x, i=k, j=k) for k in range(task.d))
        return task.operator(u, lap) - f

    xi, xb = task.interior_points(), task.boundary_points()
    bc = dde.icbc.PointSetBC(xb, task.boundary_values(xb)[:, None])
    box = np.array(task.bounds)
    geom = dde.geometry.Hypercube(box[:, 0], box[:, 1]) if task.d > 1 else dde.geometry.Interval(*box[0])
    data = dde.data.PDE(
        geom,
        pde,
        [bc],
        num_domain=0,
        num_boundary=0,
        anchors=xi,
        auxiliary_var_function=lambda x: task.source(x)[:, None],
    )
    net = dde.nn.FNN([task.d] + [m["width"]] * m["depth"] + [1], m["activation"], "Glorot uniform")
    load_linears(net.linears, initial_weights(cfg, seed, task.d))
    model = dde.Model(data, net)
    model.compile("adam", lr=tr["lr"], loss_weights=[1.0, task.boundary_weight])
    return model


def run_deepxde(cfg: dict, seed: int, display_every: int = 1000) -> dict:
    """DeepXDE (PyTorch backend) on the same PDE problem: the same interior collocation points
    (as anchors), the same boundary points and values (a PointSetBC), the same loss weights,
    network, initial weights, optimizer, learning rate and steps, float32, one thread. The source
    f is precomputed per training point (DeepXDE's auxiliary variables), as our engine does."""
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde as dde  # an optional peer (envs/bench.txt), loaded only by its worker process

    torch.set_num_threads(1)
    if dde.backend.backend_name != "pytorch":
        raise RuntimeError(f"DeepXDE runs on backend {dde.backend.backend_name!r}; set DDE_BACKEND=pytorch")
    dde.config.set_default_float("float32")
    task = task_of(cfg)
    if not isinstance(task, PDETask):
        raise ValueError(f"the DeepXDE comparison needs a PDE task, not {cfg['task']['name']!r}")
    dde.config.set_random_seed(seed)
    model = _deepxde_model(dde, cfg, task, seed)
    steps = cfg["train"]["steps"]
    t0, c0 = time.perf_counter(), time.process_time()
    model.train(iterations=steps, display_every=display_every, verbose=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    xe = task.error_points()
    ue = task.exact(xe)
    rel = float(np.linalg.norm(model.predict(xe)[:, 0] - ue) / np.linalg.norm(ue))
    loss = float(np.sum(model.train_state.loss_train))  # DeepXDE's losses carry the loss weights
    return {
        "contender": "deepxde",
        "deepxde_version": dde.__version__,
        "device": "cpu",
        "device_name": device_name("cpu"),
        "n_models": 1,
        "seed": seed,
        "steps": steps,
        "measurements": steps // display_every + 1,
        "wall_s": wall,
        "cpu_s": cpu,
        "final_loss": [loss],
        "final_rel_l2": [rel],
        "torch_threads": torch.get_num_threads(),
    }
