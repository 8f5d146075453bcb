"""Benchmarks: the training engine against real peers, side by side in one run (``staircase bench``).

Every comparison trains the same problem for the same steps in the same precision (float32), each
contender in a fresh process with one thread (torch and numpy's BLAS), starting from the same
initial weights, so that the contenders follow the same trajectory up to rounding and only their
speed differs. They run interleaved, ``repeats`` times, and the report gives the median of each
repeat's ratio: the machines this runs on are often shared, and a ratio of two runs taken back to
back is far steadier than either time alone. Each process records its wall time (what a user
waits for) and its CPU time (what it costs; on a shared machine the steadier of the two, as it
does not count the time the process waited for a core).

Comparisons (``fit``, ``pde``, ``gpu``, ``schedule``, ``tracker``; each writes ``<out>/<name>.csv`` with every
run, and ``<out>/summary.json`` gathers the ratios):

* every problem: our engine (``staircase.training.trainer.Trainer``: all seeds of a variant stacked in one
  process) measuring on the experiment's schedule, and the same run measuring only at step 0 and
  at the end: their ratio is the tracking overhead (spectra of every hidden layer, the loss lower
  bound, the error) as a fraction of the training time; within the tracking run, the same overhead
  by part (``train.MeasureClock``), steadier than a ratio of two processes;
* peer ``naive`` (``fit`` and ``pde``): a naive eager PyTorch loop, one ``nn.Sequential`` per
  seed, each in its own process, ``torch.optim.Adam`` with its defaults, ``loss.item()`` every
  step, at every log step the epsilon-rank of the last hidden layer from an SVD of its features
  on the rank points (and the error); for the PDE the Laplacian by autograd double backward.
  Compared with our tracking run (both track);
* peer ``deepxde`` (``pde``): DeepXDE (PyTorch backend; ``envs/bench.txt``) on the same problem:
  same collocation and boundary points, loss weights, network, initial weights, Adam, learning
  rate and steps. It tracks no rank, so the like-for-like ratio is against our run without
  tracking; the relative L2 error after the same steps is reported for both;
* ``gpu`` (only where CUDA is available): ``gpu_models`` stacked models on one GPU (eager, and
  replaying a CUDA graph of the step) against the naive loop's single model on the same GPU;
* ``schedule`` (``schedule_fit``, ``schedule_pde``): what each measurement schedule resolves and
  costs, from one run of each problem measured after every step (``compare_schedules``);
* ``tracker``: the overhead of :class:`staircase.training.tracker.Tracker` in a user's own PyTorch loop of
  the fitting problem (one ``nn.Sequential`` per seed, lock-step, Adam), measuring on the
  experiment's rank quadrature and schedule, against the same loop untracked (``compare_tracker``).

The fitting problem is the first variant of the ``fit1d`` experiment of config.yaml, the PDE
problem the first variant of its ``poisson2d`` experiment (``POISSON_BENCH`` below if it has none).
The pipeline's own wall time is measured by timing ``snakemake --cores 2`` (PERFORMANCE.md).
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.core import stairs
from staircase.core.schedule import log_schedule
from staircase.networks.mlp import StackedMLP, get_activation
from staircase.problems import make_task
from staircase.problems.pde import PDETask
from staircase.records.provenance import provenance, write_json
from staircase.training.tracker import Tracker
from staircase.training.trainer import MeasureClock, Trainer
from staircase.workflow import config as cfgmod

# one thread everywhere, for every contender: one per job is how the pipeline runs on CPU
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


# ---- the contenders (each runs inside a worker process) --------------------------------------
def _ends_only(cfg: dict) -> dict:
    """The same run, measuring only at step 0 and at the last step."""
    cfg = copy.deepcopy(cfg)
    steps = cfg["train"]["steps"]
    cfg["log"] = {"dense_every": steps, "dense_until": 0, "sparse_every": steps}
    return cfg


def run_ours(cfg: dict, schedule: str = "default") -> dict:
    """Our engine on one variant: every seed stacked in this process."""
    import torch

    if schedule == "ends":
        cfg = _ends_only(cfg)
    elif schedule == "every":
        cfg = _every_step(cfg)
    cfg = dict(cfg, train=dict(cfg["train"], checkpoint_every=0))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, checkpoint_dir=None, progress=False)
        _sync(trainer.device)
        c0 = time.process_time()
        trainer.train()
        _sync(trainer.device)
        cpu = time.process_time() - c0
    rec = trainer.rec.scalars
    return {
        "contender": "ours" if schedule == "default" else "ours_ends_only",
        "device": trainer.device,
        "device_name": _device_name(trainer.device),
        "n_models": len(cfg["seeds"]),
        "steps": trainer.step,
        "measurements": len(trainer.rec.steps),
        "wall_s": trainer.elapsed,
        "cpu_s": cpu,
        # the time spent in training steps alone (Trainer.train_clock: measurements excluded)
        "train_wall_s": float(trainer.train_clock[0]),
        "train_cpu_s": float(trainer.train_clock[1]),
        # the measurements' CPU time by part (train.MeasureClock): where the tracking overhead goes
        **{f"measure_{part}_cpu_s": float(v) for part, v in trainer.measure_clock.seconds.items()},
        "measure_cpu_s": trainer.measure_clock.total(),
        "final_loss": [float(v) for v in rec["loss"][-1]],
        "final_rel_l2": [float(v) for v in rec["rel_l2"][-1]],
        "torch_threads": torch.get_num_threads(),
        **(_trajectory(trainer) if schedule == "every" else {}),
    }


def _every_step(cfg: dict) -> dict:
    """The same run, measuring after every step."""
    cfg = copy.deepcopy(cfg)
    steps = cfg["train"]["steps"]
    cfg["log"] = {"dense_every": 1, "dense_until": steps, "sparse_every": steps}
    return cfg


def _trajectory(trainer) -> dict:
    """The measured series the stair analysis reads: the eps-rank of the last hidden layer at the
    main eps and the loss, (seeds, measurements), for the schedule study."""
    return {
        "steps": [int(t) for t in trainer.rec.steps],
        "ranks": trainer.main_ranks().tolist(),
        "loss": np.stack(trainer.rec.scalars["loss"], axis=1).tolist(),
    }


class _Act:
    """The configured activation as an nn.Module, for the naive nn.Sequential."""

    @staticmethod
    def module(name: str):
        from torch import nn

        builtin = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
        if name in builtin:
            return builtin[name]()
        fn = get_activation(name).fn

        class Act(nn.Module):
            def forward(self, x):
                return fn(x)

        return Act()


def _make_task(cfg: dict):
    params = dict(cfg["task"])
    return make_task(params.pop("name"), **params)


def initial_weights(cfg: dict, seed: int, d_in: int) -> list[tuple]:
    """The initial (W (fan_in, fan_out), b (fan_out,)) of every layer of our engine's model for
    ``seed``: the peers start from exactly these, so that every contender follows the same
    trajectory up to rounding, and speed is the only difference."""
    import torch

    m = cfg["model"]
    net = StackedMLP([seed], d_in, m["width"], m["depth"], m["activation"], dtype=torch.float32)
    return [(w[0].detach().clone(), b[0, 0].detach().clone()) for w, b in zip(net.weights, net.biases)]


def _load_linears(linears, weights) -> None:
    import torch

    with torch.no_grad():
        for lin, (w, b) in zip(linears, weights):
            lin.weight.copy_(w.T)
            lin.bias.copy_(b)


def _sequential(cfg: dict, seed: int, d_in: int):
    """The experiment's MLP as a plain nn.Sequential starting from our engine's weights of ``seed``."""
    from torch import nn

    m = cfg["model"]
    layers, d = [], d_in
    for _ in range(m["depth"]):
        layers += [nn.Linear(d, m["width"]), _Act.module(m["activation"])]
        d = m["width"]
    net = nn.Sequential(*layers, nn.Linear(d, 1))
    _load_linears([mod for mod in net if isinstance(mod, nn.Linear)], initial_weights(cfg, seed, d_in))
    return net


def run_user_loop(cfg: dict, tracked: bool, device: str = "cpu") -> dict:
    """A user's own training loop of a fitting experiment: one nn.Sequential per seed (our engine's
    initial weights), all trained in lock-step in this process by torch.optim.Adam on the MSE, with
    (``tracked``) or without a :class:`staircase.training.tracker.Tracker` measuring on the experiment's rank
    quadrature and log schedule with its exact solution (A3's bound). The same loop otherwise: the
    ratio of the two is the tracker's overhead."""
    import torch

    torch.set_num_threads(1)
    task = _make_task(cfg)
    tr, lg = cfg["train"], cfg["log"]
    nets = [_sequential(cfg, s, task.d).to(device) for s in cfg["seeds"]]
    opts = [torch.optim.Adam(net.parameters(), lr=tr["lr"]) for net in nets]
    data = task.train_data(device, torch.float32)
    x, y = data["x"], data["y"][:, None]
    steps = tr["steps"]
    with tempfile.TemporaryDirectory() as tmp:
        tracker = None
        if tracked:
            xr, wr = task.rank_points()
            tracker = Tracker(
                nets,
                xr,
                None if cfg["rank"]["normalisation"] == "mean" else wr,
                eps=cfg["rank"]["eps"],
                main_eps=cfg["rank"]["main_eps"],
                target=task.exact(xr),
                schedule={**lg, "steps": steps},
                seeds=cfg["seeds"],
                out=Path(tmp) / "runs" / cfg["experiment"] / cfg["variant"],
            )
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
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
        if tracker is not None:
            tracker.close()
        _sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "contender": "user_loop_tracked" if tracked else "user_loop",
        "device": device,
        "device_name": _device_name(device),
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


def run_naive(cfg: dict, seed: int, device: str = "cpu") -> dict:
    """What one would write by hand: one nn.Sequential, Adam, item() every step, and the
    epsilon-rank of the last hidden layer by SVD at every log step. For a PDE task the Laplacian
    comes from autograd (double backward), the usual way."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    task = _make_task(cfg)
    tr, lg = cfg["train"], cfg["log"]
    net = _sequential(cfg, seed, task.d).to(device)
    features = net[:-1]
    opt = torch.optim.Adam(net.parameters(), lr=tr["lr"])
    data = task.train_data(device, torch.float32)
    if isinstance(task, PDETask):
        x_int, f, x_bd, g = data["x_int"], data["f"], data["x_bd"], data["g"]

        def loss_fn():
            x = x_int.clone().requires_grad_(True)
            u = net(x)
            (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
            lap = sum(torch.autograd.grad(grad[:, k].sum(), x, create_graph=True)[0][:, k] for k in range(task.d))
            r_int = task.operator(u[:, 0], lap) - f
            return (r_int**2).mean() + task.boundary_weight * ((net(x_bd)[:, 0] - g) ** 2).mean()
    else:
        x, y = data["x"], data["y"]

        def loss_fn():
            return ((net(x)[:, 0] - y) ** 2).mean()

    xr, wr = task.rank_points()
    if cfg["rank"]["normalisation"] == "mean":
        wr = np.full(len(xr), 1.0 / len(xr))
    xr = torch.as_tensor(xr, dtype=torch.float32, device=device)
    sw = torch.as_tensor(np.sqrt(wr), dtype=torch.float32, device=device)[:, None]
    xe = task.error_points()
    fe = torch.as_tensor(task.exact(xe), dtype=torch.float32, device=device)
    xe = torch.as_tensor(xe, dtype=torch.float32, device=device)
    eps = float(cfg["rank"]["main_eps"])
    steps = tr["steps"]
    log = set(int(s) for s in log_schedule(steps, lg["dense_every"], lg["dense_until"], lg["sparse_every"]))
    losses, history = [], []
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(steps + 1):
        if step in log:
            with torch.no_grad():
                s = torch.linalg.svdvals(features(xr) * sw)
                rel = torch.linalg.vector_norm(net(xe)[:, 0] - fe) / torch.linalg.vector_norm(fe)
            history.append((step, loss_fn().item(), rel.item(), int((s**2 > eps).sum())))
        if step == steps:
            break
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    _sync(device)
    return {
        "contender": "naive",
        "device": device,
        "device_name": _device_name(device),
        "n_models": 1,
        "seed": seed,
        "steps": steps,
        "measurements": len(history),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "final_loss": [history[-1][1]],
        "final_rel_l2": [history[-1][2]],
        "torch_threads": torch.get_num_threads(),
    }


def run_deepxde(cfg: dict, seed: int, display_every: int = 1000) -> dict:
    """DeepXDE (PyTorch backend) on the same PDE problem: the same interior collocation points
    (as anchors), the same boundary points and values (a PointSetBC), the same loss weights,
    network, initial weights, optimizer, learning rate and steps, float32, one thread. The source
    f is precomputed per training point (DeepXDE's auxiliary variables), as our engine does."""
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde as dde
    import torch

    torch.set_num_threads(1)
    if dde.backend.backend_name != "pytorch":
        raise RuntimeError(f"DeepXDE runs on backend {dde.backend.backend_name!r}; set DDE_BACKEND=pytorch")
    dde.config.set_default_float("float32")
    task = _make_task(cfg)
    if not isinstance(task, PDETask):
        raise ValueError(f"the DeepXDE comparison needs a PDE task, not {cfg['task']['name']!r}")
    m, tr = cfg["model"], cfg["train"]
    dde.config.set_random_seed(seed)

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
    _load_linears(net.linears, initial_weights(cfg, seed, task.d))
    model = dde.Model(data, net)
    model.compile("adam", lr=tr["lr"], loss_weights=[1.0, task.boundary_weight])
    steps = tr["steps"]
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
        "device_name": _device_name("cpu"),
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


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if str(device).startswith("cuda") else platform.machine()


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


WORKERS = {"ours": run_ours, "naive": run_naive, "deepxde": run_deepxde, "user_loop": run_user_loop}


def worker_main(argv: list[str]) -> int:
    """Entry point of a worker process: ``python -m staircase.benchmarks.bench <kind> <json kwargs>``."""
    kind, kwargs = argv[0], json.loads(argv[1])
    result = WORKERS[kind](**kwargs)
    print("BENCH-RESULT " + json.dumps(result))
    return 0


def in_process(kind: str, env: dict | None = None, **kwargs) -> dict:
    """Run one contender in a fresh Python process with one thread; return its result."""
    full_env = {**os.environ, **SINGLE_THREAD_ENV, **(env or {})}
    src = str(Path(__file__).resolve().parents[2])
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, full_env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "staircase.benchmarks.bench", kind, json.dumps(kwargs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH-RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker {kind} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("BENCH-RESULT ") :])
    result["process_wall_s"] = wall  # including interpreter start and imports
    return result


# ---- the comparisons -------------------------------------------------------------------------
def _median(values) -> float:
    values = [float(v) for v in values]
    return float(statistics.median(values)) if values else float("nan")


def compare(cfg: dict, peers: list[str], repeats: int, log=print) -> tuple[pd.DataFrame, dict]:
    """One problem, interleaved, ``repeats`` times: our engine measuring on the experiment's
    schedule (``ours``), the same run measuring only at step 0 and the end (``ours_ends_only``),
    and each peer with one process per seed. Ratios of summed times over the same steps x seeds
    are ratios of steps/s per model."""
    rows = []
    seeds, steps = list(cfg["seeds"]), cfg["train"]["steps"]
    ratios = {(p, kind, clock): [] for p in peers for kind in ("tracking", "training") for clock in ("wall", "cpu")}
    overhead = {"wall": [], "cpu": [], "inrun_cpu": []}
    parts = {part: [] for part in (*MeasureClock.PARTS, "outside")}
    for rep in range(repeats):
        ours = in_process("ours", cfg=cfg)
        ends = in_process("ours", cfg=cfg, schedule="ends")
        rows += [{"repeat": rep, **_flat(r)} for r in (ours, ends)]
        for clock in ("wall", "cpu"):
            overhead[clock].append(ours[f"{clock}_s"] / ends[f"{clock}_s"] - 1)
        # the same, within the one run: CPU time outside training steps over CPU time in them
        overhead["inrun_cpu"].append(ours["cpu_s"] / ours["train_cpu_s"] - 1)
        for part in MeasureClock.PARTS:
            parts[part].append(ours[f"measure_{part}_cpu_s"] / ours["train_cpu_s"])
        # start-up of Trainer.train and the loop's bookkeeping: CPU time neither training nor measuring
        parts["outside"].append((ours["cpu_s"] - ours["train_cpu_s"] - ours["measure_cpu_s"]) / ours["train_cpu_s"])
        line = [
            f"  repeat {rep}: ours {steps * len(seeds) / ours['wall_s']:.0f} steps/s per model "
            f"({ours['measurements']} measurements; all seeds in {ours['cpu_s']:.1f} s CPU, "
            f"{ours['wall_s']:.1f} s wall), "
            f"tracking overhead {100 * overhead['inrun_cpu'][-1]:.1f} % CPU in-run, "
            f"{100 * overhead['cpu'][-1]:.1f} % against the run without"
        ]
        for peer in peers:
            env = {"DDE_BACKEND": "pytorch"} if peer == "deepxde" else None
            theirs = [in_process(peer, env=env, cfg=cfg, seed=s) for s in seeds]
            rows += [{"repeat": rep, **_flat(r)} for r in theirs]
            for clock in ("wall", "cpu"):
                total = sum(r[f"{clock}_s"] for r in theirs)
                ratios[(peer, "tracking", clock)].append(total / ours[f"{clock}_s"])
                ratios[(peer, "training", clock)].append(total / ends[f"{clock}_s"])
            line.append(
                f"{peer} {sum(r['cpu_s'] for r in theirs):.1f} s CPU: x{ratios[(peer, 'tracking', 'cpu')][-1]:.2f} "
                f"(x{ratios[(peer, 'training', 'cpu')][-1]:.2f} against ours without tracking)"
            )
        log("; ".join(line))
    df = pd.DataFrame(rows)
    summary = {
        "experiment": cfg["experiment"],
        "variant": cfg["variant"],
        "task": cfg["task"]["name"],
        "seeds": len(seeds),
        "steps": steps,
        "measurements": int(ours["measurements"]),
        "overhead_inrun_cpu_median": _median(overhead["inrun_cpu"]),
        "overhead_inrun_cpu_all": overhead["inrun_cpu"],
        "overhead_cpu_median": _median(overhead["cpu"]),
        "overhead_wall_median": _median(overhead["wall"]),
        "overhead_cpu_all": overhead["cpu"],
        "overhead_wall_all": overhead["wall"],
        # the in-run overhead by part, each a fraction of the training CPU time (medians of the repeats)
        "overhead_parts_median": {part: _median(v) for part, v in parts.items()},
        "overhead_parts_all": parts,
        **_medians(df, "ours", "ours"),
        **_medians(df, "ours_ends_only", "ours_ends_only"),
        "peers": {},
    }
    for peer in peers:
        summary["peers"][peer] = {
            **{
                f"speedup_{kind}_{clock}_median": _median(ratios[(peer, kind, clock)])
                for kind in ("tracking", "training")
                for clock in ("cpu", "wall")
            },
            **{
                f"speedup_{kind}_{clock}_all": ratios[(peer, kind, clock)]
                for kind in ("tracking", "training")
                for clock in ("cpu", "wall")
            },
            **_medians(df, peer, "peer"),
        }
    return df, summary


def compare_tracker(cfg: dict, repeats: int, log=print) -> tuple[pd.DataFrame, dict]:
    """The tracker's overhead: a user's own training loop (``run_user_loop``) with and without a
    Tracker, interleaved ``repeats`` times, each in a fresh process with one thread. The overhead is
    the ratio of their CPU (wall) times minus 1, the median of the repeats; within the tracked run,
    the measurements' CPU time by part over the rest. Both runs must end with the same losses (the
    tracker does not change training)."""
    rows, overhead, inrun, same = [], {"cpu": [], "wall": []}, [], []
    parts = {part: [] for part in ("loss", "forward", "spectra", "bound", "other")}
    for rep in range(repeats):
        plain = in_process("user_loop", cfg=cfg, tracked=False)
        tracked = in_process("user_loop", cfg=cfg, tracked=True)
        rows += [{"repeat": rep, **_flat(r)} for r in (plain, tracked)]
        for clock in ("cpu", "wall"):
            overhead[clock].append(tracked[f"{clock}_s"] / plain[f"{clock}_s"] - 1)
        rest = tracked["cpu_s"] - tracked["measure_cpu_s"]
        inrun.append(tracked["measure_cpu_s"] / rest)
        for part in parts:
            parts[part].append(tracked[f"measure_{part}_cpu_s"] / rest)
        same.append(plain["final_loss"] == tracked["final_loss"])
        log(
            f"  repeat {rep}: untracked loop {plain['cpu_s']:.1f} s CPU, tracked {tracked['cpu_s']:.1f} s "
            f"({tracked['measurements']} measurements): overhead {100 * overhead['cpu'][-1]:.1f} % CPU "
            f"[{100 * overhead['wall'][-1]:.1f} % wall], in-run {100 * inrun[-1]:.1f} %; same final losses: {same[-1]}"
        )
    df = pd.DataFrame(rows)
    return df, {
        "experiment": cfg["experiment"],
        "variant": cfg["variant"],
        "seeds": len(cfg["seeds"]),
        "steps": cfg["train"]["steps"],
        "rank_points": int(cfg["task"].get("rank_points", 0)),
        "measurements": int(tracked["measurements"]),
        "overhead_cpu_median": _median(overhead["cpu"]),
        "overhead_wall_median": _median(overhead["wall"]),
        "overhead_cpu_all": overhead["cpu"],
        "overhead_wall_all": overhead["wall"],
        "overhead_inrun_cpu_median": _median(inrun),
        "overhead_inrun_cpu_all": inrun,
        "overhead_parts_median": {part: _median(v) for part, v in parts.items()},
        "same_final_losses": all(same),
        **_medians(df, "user_loop", "untracked"),
        **_medians(df, "user_loop_tracked", "tracked"),
    }


SCHEDULE_SPARSITY = (1, 2, 3, 5, 10, 20)  # the experiment's log schedule, and k times sparser


def compare_schedules(cfg: dict, analysis: dict, log=print) -> tuple[pd.DataFrame, dict]:
    """What each measurement schedule buys, and costs: one run of the problem measured after every
    step (our engine, one process), then the staircase as each candidate schedule would have seen
    it, by taking that run's measurements at the schedule's steps. Candidates: the experiment's
    ``log:`` schedule and k times sparser ones (``dense_every`` and ``sparse_every`` times k, for k
    in ``SCHEDULE_SPARSITY``). For each: its number of measurements, its tracking overhead
    estimated as that number times the mean CPU cost of one measurement over the training CPU time,
    and the stairs the analysis (``analysis:`` options of the config) finds per seed, also as a
    fraction of those it finds measuring after every step."""
    steps = cfg["train"]["steps"]
    run = in_process("ours", cfg=cfg, schedule="every")
    per_measurement, train_cpu = run["measure_cpu_s"] / run["measurements"], run["train_cpu_s"]
    every = np.asarray(run["steps"])
    ranks, loss = np.asarray(run["ranks"]), np.asarray(run["loss"])
    options = stairs.config_options(analysis)

    def seen_by(schedule: np.ndarray) -> dict:
        idx = np.searchsorted(every, schedule)
        per_seed = [stairs.analyse(schedule, r[idx], l[idx], **options).summary() for r, l in zip(ranks, loss)]
        return {
            "stairs": [int(a["n_stairs"]) for a in per_seed],
            "spearman": _median([a["spearman"] for a in per_seed]),
            "fraction_aligned": _median([a["fraction_aligned"] for a in per_seed]),
        }

    reference = seen_by(every)
    lg = cfg["log"]
    candidates = [("every step", 0, every)]
    for k in SCHEDULE_SPARSITY:
        sched = log_schedule(steps, lg["dense_every"] * k, lg["dense_until"], lg["sparse_every"] * k)
        candidates.append((f"log x{k}" if k > 1 else "log (config)", k, sched))
    rows = []
    for label, k, sched in candidates:
        seen = reference if k == 0 else seen_by(np.asarray(sched))
        rows.append(
            {
                "schedule": label,
                "sparsity": k,
                "dense_every": lg["dense_every"] * k if k else 1,
                "sparse_every": lg["sparse_every"] * k if k else 1,
                "measurements": len(sched),
                "overhead_estimated": len(sched) * per_measurement / train_cpu,
                "stairs_median": _median(seen["stairs"]),
                "stairs_per_seed": json.dumps(seen["stairs"]),
                # NaN when even measuring every step finds no stair
                "stairs_found": _median(seen["stairs"]) / _median(reference["stairs"])
                if _median(reference["stairs"]) > 0
                else float("nan"),
                "spearman_median": seen["spearman"],
                "fraction_aligned_median": seen["fraction_aligned"],
            }
        )
        r = rows[-1]
        log(
            f"  {label}: {r['measurements']} measurements, overhead ~{100 * r['overhead_estimated']:.1f} %, "
            f"stairs {seen['stairs']} ({100 * r['stairs_found']:.0f} % of those seen every step)"
        )
    df = pd.DataFrame(rows)
    summary = {
        "experiment": cfg["experiment"],
        "variant": cfg["variant"],
        "steps": steps,
        "seeds": len(cfg["seeds"]),
        "measurement_cpu_ms": 1e3 * per_measurement,
        "step_cpu_ms": 1e3 * train_cpu / steps,
        "schedules": rows,
    }
    return df, summary


def compare_gpu(cfg: dict, n_models: int, repeats: int, log=print) -> tuple[pd.DataFrame, dict]:
    """n_models stacked on one GPU (eagerly, and replaying a CUDA graph of the step) vs the naive
    loop's single model on the same GPU."""
    big = dict(copy.deepcopy(cfg), seeds=list(range(n_models)), device="cuda")
    graphed = dict(copy.deepcopy(big), train=dict(big["train"], cuda_graph=True))
    rows, ratios, ratios_graph, errors = [], [], [], []
    steps = cfg["train"]["steps"]
    device_name = None
    for rep in range(repeats):
        naive = in_process("naive", cfg=cfg, seed=0, device="cuda")
        ours = in_process("ours", cfg=big)
        device_name = ours["device_name"]
        rows += [{"repeat": rep, **_flat(naive)}, {"repeat": rep, **_flat(ours)}]
        naive_tp = steps / naive["wall_s"]
        ratios.append(steps * n_models / ours["wall_s"] / naive_tp)
        try:
            ours_g = in_process("ours", cfg=graphed)
            rows.append({"repeat": rep, **_flat(dict(ours_g, contender="ours_cuda_graph"))})
            ratios_graph.append(steps * n_models / ours_g["wall_s"] / naive_tp)
        except RuntimeError as err:  # recorded, not fatal: the eager engine is the reference
            errors.append(str(err)[-500:])
        log(
            f"  repeat {rep}: {n_models} stacked models vs one naive model: x{ratios[-1]:.1f} throughput"
            + (f", x{ratios_graph[-1]:.1f} with a CUDA graph" if len(ratios_graph) > rep else "")
        )
    df = pd.DataFrame(rows)
    return df, {
        "experiment": cfg["experiment"],
        "n_models": n_models,
        "device_name": device_name,
        "speedup_wall_median": _median(ratios),
        "speedup_wall_all": ratios,
        "speedup_cuda_graph_wall_median": _median(ratios_graph),
        "speedup_cuda_graph_wall_all": ratios_graph,
        "cuda_graph_errors": errors,
    }


def _flat(result: dict) -> dict:
    out = dict(result)
    for key in ("final_loss", "final_rel_l2"):
        out[f"{key}_median"] = _median(result[key])
        out[key] = json.dumps(result[key])
    return out


def _medians(df: pd.DataFrame, contender: str, label: str) -> dict:
    sub = df[df.contender == contender]
    return {
        f"{label}_final_loss_median": _median(sub["final_loss_median"]),
        f"{label}_final_rel_l2_median": _median(sub["final_rel_l2_median"]),
        f"{label}_cpu_s_total_median": _median(sub.groupby("repeat")["cpu_s"].sum()),
        f"{label}_wall_s_total_median": _median(sub.groupby("repeat")["wall_s"].sum()),
    }


def machine() -> dict:
    import torch

    info = provenance("cuda" if torch.cuda.is_available() else "cpu")
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), None)
    except (OSError, subprocess.SubprocessError):
        model = None
    return {
        **info,
        "cpu_model": model or platform.processor(),
        "nproc": os.cpu_count(),
        "load_average": os.getloadavg(),
        "torch_threads_per_process": 1,
    }


# The 2-D Poisson problem of the PDE comparisons when config.yaml has no experiment of that name:
# -Delta u = f on [-1, 1]^2, u a sum of two sine products, nonzero on the boundary.
POISSON_BENCH = {
    "experiment": "poisson2d_bench",
    "variant": "base",
    "scale": "small",
    "device": "cpu",
    "task": {
        "name": "poisson2d",
        "wavevectors": [[1.0, 2.0], [3.0, 0.0]],
        "amplitudes": [1.0, -0.5],
        "phases": [[0.25, 0.0], [0.0, 0.5]],
        "interior_points": 32,
        "boundary_points": 33,
        "rank_points": 41,
        "boundary_weight": 10.0,
    },
    "model": {"activation": "tanh", "width": 40, "depth": 3},
    "train": {"optimizer": "adam", "lr": 1.0e-3, "steps": 2000},
    "rank": {"eps": [1.0e-2, 1.0e-3, 1.0e-4], "main_eps": 1.0e-3, "normalisation": "integral"},
    "log": {"dense_every": 10, "dense_until": 500, "sparse_every": 50},
    "seeds": [0, 1, 2],
}

COMPARISONS = ("fit", "pde", "gpu", "schedule", "tracker")
PEERS = {"fit": ["naive"], "pde": ["naive", "deepxde"]}


def _first_variant(config: dict, name: str) -> dict | None:
    if name not in config.get("experiments", {}):
        return None
    return dict(next(iter(cfgmod.variants(config, name).values())), device="cpu")


def deepxde_available() -> str | None:
    """None if DeepXDE can be imported with its PyTorch backend, else why not."""
    env = {**os.environ, "DDE_BACKEND": "pytorch"}
    cmd = [sys.executable, "-c", "import deepxde; assert deepxde.backend.backend_name == 'pytorch'"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    return "DeepXDE not installed (make bench installs envs/bench.txt)"


def run_benchmarks(
    config: dict,
    out: Path,
    only: list[str] | None = None,
    repeats: int = 3,
    experiment: str = "fit1d",
    pde_experiment: str = "poisson2d",
    gpu_models: int = 32,
    steps: int | None = None,
    log=print,
) -> dict:
    """Run the selected comparisons (default: all of ``COMPARISONS``), write their tables and
    summary.json, and return the summary. ``steps`` overrides the training steps of both problems
    (for a quick run; the documented numbers use the configured ones)."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fit = _first_variant(config, experiment)
    if fit is None:
        raise ValueError(f"bench: config has no experiment {experiment!r}")
    pde = _first_variant(config, pde_experiment) or copy.deepcopy(POISSON_BENCH)
    if steps:
        for cfg in (fit, pde):
            cfg["train"] = dict(cfg["train"], steps=steps)
    only = list(only or COMPARISONS)
    unknown = set(only) - set(COMPARISONS)
    if unknown:
        raise ValueError(f"bench: unknown comparison(s) {sorted(unknown)}; choose from {list(COMPARISONS)}")
    summary: dict = {
        "machine": machine(),
        "repeats": repeats,
        "problems": {"fit": fit, "pde": pde},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }

    def _save(name, df, result):
        df.to_csv(out / f"{name}.csv", index=False)
        summary[name] = result
        write_json(out / "summary.json", summary)

    for name in only:
        if name == "gpu":
            if not torch.cuda.is_available():
                log("gpu: skipped (no CUDA device)")
                summary["gpu"] = {"skipped": "no CUDA device"}
                write_json(out / "summary.json", summary)
                continue
            log(f"gpu: {gpu_models} stacked models vs one naive model on {fit['experiment']}")
            _save("gpu", *compare_gpu(fit, gpu_models, repeats, log))
            continue
        if name == "tracker":
            log(
                f"tracker: a plain PyTorch loop on {fit['experiment']}/{fit['variant']} with and without "
                f"staircase.Tracker ({len(fit['seeds'])} seeds, {fit['train']['steps']} steps)"
            )
            _save("tracker", *compare_tracker(fit, repeats, log))
            continue
        if name == "schedule":
            analysis = config.get("analysis", {})
            for key, cfg in (("schedule_fit", fit), ("schedule_pde", pde)):
                log(f"{key}: what each measurement schedule resolves on {cfg['experiment']}/{cfg['variant']}")
                _save(key, *compare_schedules(cfg, analysis, log))
            continue
        cfg = fit if name == "fit" else pde
        peers = list(PEERS[name])
        if "deepxde" in peers and (why := deepxde_available()):
            log(f"{name}: DeepXDE left out: {why}")
            summary.setdefault("skipped", {})[f"{name}_deepxde"] = why
            peers.remove("deepxde")
        log(
            f"{name}: our engine vs {', '.join(peers)} on {cfg['experiment']}/{cfg['variant']} "
            f"({cfg['task']['name']}, {len(cfg['seeds'])} seeds, {cfg['train']['steps']} steps)"
        )
        _save(name, *compare(cfg, peers, repeats, log))
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_json(out / "summary.json", summary)
    log(report(summary))
    return summary


def report(summary: dict) -> str:
    """The ratios, one line each, with the targets of the performance issue."""
    lines = ["", "benchmark ratios: steps/s per model, ours over theirs (median of the repeats, CPU time [wall])"]
    for name in ("fit", "pde"):
        s = summary.get(name)
        if s is None:
            continue
        what = f"{s['experiment']} ({s['steps']} steps, {s['seeds']} seeds)"
        for peer, p in s["peers"].items():
            lines.append(
                f"  {what}: vs {peer}: x{p['speedup_tracking_cpu_median']:.2f} "
                f"[x{p['speedup_tracking_wall_median']:.2f}] with our tracking on, "
                f"x{p['speedup_training_cpu_median']:.2f} "
                f"[x{p['speedup_training_wall_median']:.2f}] without (target >= 2); rel. L2 error "
                f"{s['ours_final_rel_l2_median']:.3g} (ours) vs {p['peer_final_rel_l2_median']:.3g}"
            )
        lines.append(
            f"  {what}: tracking overhead ({s['measurements']} measurements): "
            f"{100 * s['overhead_inrun_cpu_median']:.1f} % of the training CPU time within the run; "
            f"{100 * s['overhead_cpu_median']:.1f} % [{100 * s['overhead_wall_median']:.1f} %] against the run "
            "measuring at the ends only (target <= 3 %)"
        )
        if "overhead_parts_median" in s:
            p = s["overhead_parts_median"]
            lines.append(
                f"    of which eps-rank {100 * (p['forward'] + p['spectra']):.1f} % (forward pass on the rank and "
                f"error points {100 * p['forward']:.1f} %, Gram spectra {100 * p['spectra']:.1f} %), loss "
                f"{100 * p['loss']:.1f} %, loss lower bound {100 * p['bound']:.1f} %, recording "
                f"{100 * p['other']:.1f} %, outside the measurements (start-up, loop) {100 * p['outside']:.1f} %"
            )
    for name in ("schedule_fit", "schedule_pde"):
        s = summary.get(name)
        if s is None:
            continue
        lines.append(
            f"  {s['experiment']}: measurement schedules (one measurement {s['measurement_cpu_ms']:.1f} ms CPU, "
            f"one step {s['step_cpu_ms']:.2f} ms): measurements, estimated overhead, stairs found"
        )
        for r in s["schedules"]:
            lines.append(
                f"    {r['schedule']:>12}: {r['measurements']:5d}, {100 * r['overhead_estimated']:6.1f} %, "
                f"{r['stairs_per_seed']} ({100 * r['stairs_found']:.0f} % of every step's)"
            )
    t = summary.get("tracker")
    if t is not None:
        p = t["overhead_parts_median"]
        lines.append(
            f"  {t['experiment']} ({t['steps']} steps, {t['seeds']} seeds): staircase.Tracker in a plain PyTorch loop "
            f"({t['measurements']} measurements on {t['rank_points']} points): overhead "
            f"x{1 + t['overhead_cpu_median']:.3f} CPU [x{1 + t['overhead_wall_median']:.3f} wall] against the "
            f"untracked loop, {100 * t['overhead_inrun_cpu_median']:.1f} % in-run (forward {100 * p['forward']:.1f} %, "
            f"spectra {100 * p['spectra']:.1f} %, bound {100 * p['bound']:.1f} %); training unchanged: "
            f"{t['same_final_losses']}"
        )
    for key, why in summary.get("skipped", {}).items():
        lines.append(f"  {key}: skipped ({why})")
    g = summary.get("gpu")
    if g is not None:
        if "skipped" in g:
            lines.append(f"  gpu: skipped ({g['skipped']})")
        else:
            lines.append(
                f"  gpu ({g['device_name']}): {g['n_models']} stacked models vs one naive model: "
                f"x{g['speedup_wall_median']:.1f} throughput, x{g['speedup_cuda_graph_wall_median']:.1f} with a "
                "CUDA graph (target >= 20)"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
