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
  by part (``staircase.training.clocks.MeasureClock``), steadier than a ratio of two processes;
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

The code, in the order a reader meets it: this module runs the selected comparisons
(:func:`run_benchmarks`, ``staircase bench``) and writes their tables and summary.json;
``comparisons.py`` holds the comparisons, ``contenders.py`` what each contender runs, from the
starting point of ``initial.py``, each in a fresh process (``worker.py``: ``python -m
staircase.benchmarks.worker <kind> <json kwargs>`` runs one), and ``report.py`` the text of the ratios.
"""

from __future__ import annotations

import copy
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from staircase.benchmarks import COMPARISONS
from staircase.benchmarks.comparisons import compare, compare_gpu, compare_schedules, compare_tracker
from staircase.benchmarks.report import report
from staircase.records.provenance import provenance, write_json
from staircase.workflow import config as cfgmod

__all__ = [
    "COMPARISONS",
    "POISSON_BENCH",
    "cpu_kind",
    "deepxde_available",
    "machine",
    "report",
    "run_benchmarks",
]


# the CPU features that change the speed of small float32 / float64 kernels the most: a number
# from a CPU with AVX-512 is not one from a CPU without it (PERFORMANCE.md keeps a row per kind)
SPEED_FLAGS = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "avx2", "fma", "avx")


def cpu_kind(cpuinfo: str | None = None) -> dict:
    """The CPU's model name, vendor and speed flags (SPEED_FLAGS present), from /proc/cpuinfo (or
    lscpu / platform where it is missing), and a short ``kind`` label for tables."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():  # the first processor's block is enough: all cores are alike here
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or _lscpu_model() or platform.processor() or "unknown"
    flags = [f for f in SPEED_FLAGS if f in fields.get("flags", "").split()]
    top = next((f for f in ("avx512f", "avx2", "avx") if f in flags), "no AVX")
    vendor = fields.get("vendor_id", "")
    return {"cpu_model": model, "cpu_vendor": vendor, "cpu_flags": flags, "cpu_kind": f"{model} ({top})"}


def _lscpu_model() -> str | None:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), None)


def machine() -> dict:
    """The machine the benchmarks ran on: provenance, CPU model and speed flags, cores, load."""
    return {
        **provenance("cuda" if torch.cuda.is_available() else "cpu"),
        **cpu_kind(),
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


@dataclass
class _Bench:
    """One ``staircase bench``: its two problems, its settings, and the summary it writes as it goes."""

    config: dict
    fit: dict
    pde: dict
    out: Path
    repeats: int
    gpu_models: int
    log: Callable
    summary: dict

    def write_summary(self) -> None:
        write_json(self.out / "summary.json", self.summary)

    def save(self, name: str, df: pd.DataFrame, result: dict) -> None:
        df.to_csv(self.out / f"{name}.csv", index=False)
        self.summary[name] = result
        self.write_summary()


def _bench_against_peers(run: _Bench, name: str) -> None:
    """``fit`` or ``pde``: our engine against its peers (DeepXDE left out, and said so, where it
    cannot be imported)."""
    cfg = run.fit if name == "fit" else run.pde
    peers = list(PEERS[name])
    if "deepxde" in peers and (why := deepxde_available()):
        run.log(f"{name}: DeepXDE left out: {why}")
        run.summary.setdefault("skipped", {})[f"{name}_deepxde"] = why
        peers.remove("deepxde")
    run.log(
        f"{name}: our engine vs {', '.join(peers)} on {cfg['experiment']}/{cfg['variant']} "
        f"({cfg['task']['name']}, {len(cfg['seeds'])} seeds, {cfg['train']['steps']} steps)"
    )
    run.save(name, *compare(cfg, peers, run.repeats, run.log))


def _bench_gpu(run: _Bench) -> None:
    if not torch.cuda.is_available():
        run.log("gpu: skipped (no CUDA device)")
        run.summary["gpu"] = {"skipped": "no CUDA device"}
        run.write_summary()
        return
    run.log(f"gpu: {run.gpu_models} stacked models vs one naive model on {run.fit['experiment']}")
    run.save("gpu", *compare_gpu(run.fit, run.gpu_models, run.repeats, run.log))


def _bench_schedule(run: _Bench) -> None:
    analysis = run.config.get("analysis", {})
    for key, cfg in (("schedule_fit", run.fit), ("schedule_pde", run.pde)):
        run.log(f"{key}: what each measurement schedule resolves on {cfg['experiment']}/{cfg['variant']}")
        run.save(key, *compare_schedules(cfg, analysis, run.log))


def _bench_tracker(run: _Bench) -> None:
    fit = run.fit
    run.log(
        f"tracker: a plain PyTorch loop on {fit['experiment']}/{fit['variant']} with and without "
        f"staircase.Tracker ({len(fit['seeds'])} seeds, {fit['train']['steps']} steps)"
    )
    run.save("tracker", *compare_tracker(fit, run.repeats, run.log))


# every comparison of ``staircase bench --only`` and what runs it
RUNNERS = {
    "fit": lambda run: _bench_against_peers(run, "fit"),
    "pde": lambda run: _bench_against_peers(run, "pde"),
    "gpu": _bench_gpu,
    "schedule": _bench_schedule,
    "tracker": _bench_tracker,
}


def _problems(config: dict, experiment: str, pde_experiment: str, steps: int | None) -> tuple[dict, dict]:
    """The fitting and the PDE problem: the first variants of the two experiments (the PDE one
    ``POISSON_BENCH`` where the config has none), with ``steps`` training steps if given."""
    fit = _first_variant(config, experiment)
    if fit is None:
        raise ValueError(f"bench: config has no experiment {experiment!r}")
    pde = _first_variant(config, pde_experiment) or copy.deepcopy(POISSON_BENCH)
    if steps:
        for cfg in (fit, pde):
            cfg["train"] = dict(cfg["train"], steps=steps)
    return fit, pde


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
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fit, pde = _problems(config, experiment, pde_experiment, steps)
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
    run = _Bench(config, fit, pde, out, repeats, gpu_models, log, summary)
    for name in only:
        RUNNERS[name](run)
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    run.write_summary()
    log(report(summary))
    return summary
