"""Benchmarks: the training engine against real peers, side by side in one run (``staircase bench``).

Every comparison trains the same problem for the same steps in the same precision (float32), each
contender in a fresh process with one thread (torch and numpy's BLAS), so that neither inherits
the other's warm caches, thread pools or memory. The contenders run interleaved, ``repeats`` times,
and the report gives the median of each repeat's ratio: the machines this runs on are often
shared, and a ratio of two runs taken back to back is far steadier than either time alone. Wall
time (what a user waits for) and the process's CPU time (what it costs; less disturbed by other
processes on a shared machine) are both recorded.

Comparisons (each writes ``<out>/<name>.csv``; ``<out>/summary.json`` gathers the ratios):

* ``naive``: our engine (``staircase.train.Trainer``: all seeds of a variant stacked in one
  process, measuring on the experiment's schedule) against a naive eager PyTorch loop: one
  ``nn.Sequential`` per seed, each in its own process, ``torch.optim.Adam`` with its defaults,
  ``loss.item()`` every step, and at every log step the epsilon-rank of the last hidden layer from
  an SVD of its features on the rank points (plus the relative L2 error). Throughput is training
  steps per second per model, over all seeds.
* ``overhead``: our engine with the experiment's measurement schedule against the same run
  measuring only at step 0 and at the end: the cost of tracking (spectra of every hidden layer,
  the loss lower bound, errors) as a fraction of the training time.
* ``gpu`` (only where CUDA is available): ``gpu_models`` stacked models on one GPU against the
  naive loop's single model on the same GPU.
* ``deepxde`` (added with the PDE tasks).

The pipeline's own wall time is measured by timing ``snakemake --cores 2`` (see PERFORMANCE.md).
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

from staircase.provenance import provenance, write_json

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

    from staircase.train import Trainer

    if schedule == "ends":
        cfg = _ends_only(cfg)
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
        "final_loss": [float(v) for v in rec["loss"][-1]],
        "final_rel_l2": [float(v) for v in rec["rel_l2"][-1]],
        "torch_threads": torch.get_num_threads(),
    }


class _Act:
    """The configured activation as an nn.Module, for the naive nn.Sequential."""

    @staticmethod
    def module(name: str):
        from torch import nn

        from staircase.models import get_activation

        builtin = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
        if name in builtin:
            return builtin[name]()
        fn = get_activation(name).fn

        class Act(nn.Module):
            def forward(self, x):
                return fn(x)

        return Act()


def run_naive(cfg: dict, seed: int, device: str = "cpu") -> dict:
    """What one would write by hand: one nn.Sequential, Adam, item() every step, and the
    epsilon-rank of the last hidden layer by SVD at every log step."""
    import torch
    from torch import nn

    from staircase.tasks import make_task
    from staircase.train import log_schedule

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    task_params = dict(cfg["task"])
    task = make_task(task_params.pop("name"), **task_params)
    m, tr, lg = cfg["model"], cfg["train"], cfg["log"]
    layers, d_in = [], task.d
    for _ in range(m["depth"]):
        layers += [nn.Linear(d_in, m["width"]), _Act.module(m["activation"])]
        d_in = m["width"]
    net = nn.Sequential(*layers, nn.Linear(d_in, 1)).to(device)
    features = net[:-1]
    opt = torch.optim.Adam(net.parameters(), lr=tr["lr"])
    data = task.train_data(device, torch.float32)
    x, y = data["x"], data["y"]
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
                loss_now = ((net(x)[:, 0] - y) ** 2).mean()
                history.append((step, loss_now.item(), rel.item(), int((s**2 > eps).sum())))
        if step == steps:
            break
        opt.zero_grad()
        loss = ((net(x)[:, 0] - y) ** 2).mean()
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


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if str(device).startswith("cuda") else platform.machine()


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


WORKERS = {"ours": run_ours, "naive": run_naive}


def worker_main(argv: list[str]) -> int:
    """Entry point of a worker process: ``python -m staircase.bench <kind> <json kwargs>``."""
    kind, kwargs = argv[0], json.loads(argv[1])
    result = WORKERS[kind](**kwargs)
    print("BENCH-RESULT " + json.dumps(result))
    return 0


def in_process(kind: str, env: dict | None = None, **kwargs) -> dict:
    """Run one contender in a fresh Python process with one thread; return its result."""
    full_env = {**os.environ, **SINGLE_THREAD_ENV, **(env or {})}
    src = str(Path(__file__).resolve().parents[1])
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, full_env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "staircase.bench", kind, json.dumps(kwargs)]
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


def compare_naive(cfg: dict, repeats: int, log=print) -> tuple[pd.DataFrame, dict]:
    """Our engine (all seeds stacked) vs the naive loop (one process per seed), interleaved."""
    rows, ratios_wall, ratios_cpu = [], [], []
    seeds = list(cfg["seeds"])
    for rep in range(repeats):
        ours = in_process("ours", cfg=cfg)
        naive = [in_process("naive", cfg=cfg, seed=s) for s in seeds]
        for r in [ours, *naive]:
            rows.append({"repeat": rep, **_flat(r)})
        steps = cfg["train"]["steps"]
        ours_tp = (steps * len(seeds) / ours["wall_s"], steps * len(seeds) / ours["cpu_s"])
        naive_tp = (
            steps * len(seeds) / sum(r["wall_s"] for r in naive),
            steps * len(seeds) / sum(r["cpu_s"] for r in naive),
        )
        ratios_wall.append(ours_tp[0] / naive_tp[0])
        ratios_cpu.append(ours_tp[1] / naive_tp[1])
        log(
            f"  repeat {rep}: ours {ours_tp[0]:.0f} steps/s per model ({ours['wall_s']:.1f} s for all seeds), "
            f"naive {naive_tp[0]:.0f} ({sum(r['wall_s'] for r in naive):.1f} s): "
            f"x{ratios_wall[-1]:.2f} wall, x{ratios_cpu[-1]:.2f} CPU"
        )
    df = pd.DataFrame(rows)
    summary = {
        "experiment": cfg["experiment"],
        "variant": cfg["variant"],
        "seeds": len(seeds),
        "steps": cfg["train"]["steps"],
        "speedup_wall_median": _median(ratios_wall),
        "speedup_cpu_median": _median(ratios_cpu),
        "speedup_wall_all": ratios_wall,
        "speedup_cpu_all": ratios_cpu,
        **_medians(df, "ours"),
        **_medians(df, "naive"),
    }
    return df, summary


def compare_overhead(cfg: dict, repeats: int, log=print) -> tuple[pd.DataFrame, dict]:
    """Tracking overhead: the default measurement schedule vs measuring at step 0 and the end."""
    rows, fractions_wall, fractions_cpu = [], [], []
    for rep in range(repeats):
        full = in_process("ours", cfg=cfg)
        ends = in_process("ours", cfg=cfg, schedule="ends")
        rows += [{"repeat": rep, **_flat(full)}, {"repeat": rep, **_flat(ends)}]
        fractions_wall.append(full["wall_s"] / ends["wall_s"] - 1)
        fractions_cpu.append(full["cpu_s"] / ends["cpu_s"] - 1)
        log(
            f"  repeat {rep}: {full['measurements']} measurements {full['wall_s']:.1f} s, "
            f"{ends['measurements']} measurements {ends['wall_s']:.1f} s: "
            f"overhead {100 * fractions_wall[-1]:.1f} % wall, {100 * fractions_cpu[-1]:.1f} % CPU"
        )
    df = pd.DataFrame(rows)
    summary = {
        "experiment": cfg["experiment"],
        "variant": cfg["variant"],
        "steps": cfg["train"]["steps"],
        "measurements": int(rows[0]["measurements"]),
        "overhead_wall_median": _median(fractions_wall),
        "overhead_cpu_median": _median(fractions_cpu),
        "overhead_wall_all": fractions_wall,
        "overhead_cpu_all": fractions_cpu,
    }
    return df, summary


def compare_gpu(cfg: dict, n_models: int, repeats: int, log=print) -> tuple[pd.DataFrame, dict]:
    """n_models stacked on one GPU (eagerly, and replaying a CUDA graph of the step) vs the naive
    loop's single model on the same GPU."""
    big = dict(copy.deepcopy(cfg), seeds=list(range(n_models)), device="cuda")
    graphed = dict(copy.deepcopy(big), train=dict(big["train"], cuda_graph=True))
    rows, ratios, ratios_graph, errors = [], [], [], []
    steps = cfg["train"]["steps"]
    for rep in range(repeats):
        naive = in_process("naive", cfg=cfg, seed=0, device="cuda")
        ours = in_process("ours", cfg=big)
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
        "n_models": n_models,
        "device_name": ours.get("device_name"),
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


def _medians(df: pd.DataFrame, contender: str) -> dict:
    sub = df[df.contender == contender]
    return {
        f"{contender}_final_loss_median": _median(sub["final_loss_median"]),
        f"{contender}_final_rel_l2_median": _median(sub["final_rel_l2_median"]),
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


def run_benchmarks(
    config: dict,
    out: Path,
    only: list[str] | None = None,
    repeats: int = 3,
    experiment: str = "fit1d",
    gpu_models: int = 32,
    log=print,
) -> dict:
    """Run the selected comparisons, write their tables and summary.json, and return the summary."""
    import torch

    from staircase import config as cfgmod

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = next(iter(cfgmod.variants(config, experiment).values()))
    cfg = dict(cfg, device="cpu")
    only = only or ["naive", "overhead", "gpu"]
    summary: dict = {"machine": machine(), "repeats": repeats, "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    def _save(name, df, result):
        df.to_csv(out / f"{name}.csv", index=False)
        summary[name] = result
        write_json(out / "summary.json", summary)

    if "naive" in only:
        log(f"naive loop vs our engine on {experiment} ({len(cfg['seeds'])} seeds, {cfg['train']['steps']} steps)")
        _save("naive", *compare_naive(cfg, repeats, log))
    if "overhead" in only:
        log(f"tracking overhead on {experiment}: the experiment's schedule vs step 0 and the end only")
        _save("overhead", *compare_overhead(cfg, repeats, log))
    if "gpu" in only:
        if torch.cuda.is_available():
            log(f"GPU: {gpu_models} stacked models vs one naive model on {experiment}")
            _save("gpu", *compare_gpu(cfg, gpu_models, repeats, log))
        else:
            log("GPU: skipped (no CUDA device)")
            summary["gpu"] = {"skipped": "no CUDA device"}
            write_json(out / "summary.json", summary)
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_json(out / "summary.json", summary)
    log(report(summary))
    return summary


def report(summary: dict) -> str:
    """The ratios, one line each, with the targets of the performance issue."""
    lines = ["", "benchmark ratios (median over repeats; see summary.json for every repeat)"]
    if "naive" in summary:
        s = summary["naive"]
        lines.append(
            f"  {s['experiment']}: engine vs naive loop, steps/s per model: x{s['speedup_wall_median']:.2f} wall, "
            f"x{s['speedup_cpu_median']:.2f} CPU (target >= 2); final rel. L2 error "
            f"{s['ours_final_rel_l2_median']:.3g} (ours) vs {s['naive_final_rel_l2_median']:.3g} (naive)"
        )
    if "overhead" in summary:
        s = summary["overhead"]
        lines.append(
            f"  {s['experiment']}: tracking overhead, {s['measurements']} measurements in {s['steps']} steps: "
            f"{100 * s['overhead_wall_median']:.1f} % wall, {100 * s['overhead_cpu_median']:.1f} % CPU (target <= 3 %)"
        )
    if "gpu" in summary:
        s = summary["gpu"]
        if "skipped" in s:
            lines.append(f"  GPU: skipped ({s['skipped']})")
        else:
            lines.append(
                f"  GPU: {s['n_models']} stacked models vs one naive model: x{s['speedup_wall_median']:.1f} "
                f"throughput, x{s['speedup_cuda_graph_wall_median']:.1f} with a CUDA graph (target >= 20)"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
