"""The comparisons of the benchmarks: each runs its contenders (contenders.py) in fresh processes
(worker.py), interleaved ``repeats`` times, and returns (a table of every run, a summary of
ratios; the median of the repeats' ratios, each with all of them):

* :func:`compare` - one problem: our engine with and without tracking against peers;
* :func:`compare_tracker` - the Tracker's overhead in a user's own loop;
* :func:`compare_schedules` - what each measurement schedule resolves and costs;
* :func:`compare_gpu` - stacked models on one GPU against one naive model.
"""

from __future__ import annotations

import copy
import json
import statistics

import numpy as np
import pandas as pd

from staircase.benchmarks.worker import in_process
from staircase.core import stairs
from staircase.core.schedule import log_schedule
from staircase.training.clocks import MeasureClock

CLOCKS = ("wall", "cpu")
RATIO_KINDS = ("tracking", "training")  # against our run with tracking, and without it


def median(values) -> float:
    values = [float(v) for v in values]
    return float(statistics.median(values)) if values else float("nan")


def _flat(result: dict) -> dict:
    """One worker's result as a table row: its per-model lists as JSON, with their medians."""
    out = dict(result)
    for key in ("final_loss", "final_rel_l2"):
        out[f"{key}_median"] = median(result[key])
        out[key] = json.dumps(result[key])
    return out


def _rows(rep: int, *results: dict) -> list[dict]:
    return [{"repeat": rep, **_flat(r)} for r in results]


def _medians(df: pd.DataFrame, contender: str, label: str) -> dict:
    sub = df[df.contender == contender]
    return {
        f"{label}_final_loss_median": median(sub["final_loss_median"]),
        f"{label}_final_rel_l2_median": median(sub["final_rel_l2_median"]),
        f"{label}_cpu_s_total_median": median(sub.groupby("repeat")["cpu_s"].sum()),
        f"{label}_wall_s_total_median": median(sub.groupby("repeat")["wall_s"].sum()),
    }


# ---- our engine against peers ----------------------------------------------------------------
def _add_overheads(ours: dict, ends: dict, overhead: dict, parts: dict) -> None:
    """One repeat's tracking overhead: our run over the same run measuring at the ends only, and
    within the one run, by part, each a fraction of its training CPU time."""
    for clock in CLOCKS:
        overhead[clock].append(ours[f"{clock}_s"] / ends[f"{clock}_s"] - 1)
    # the same, within the one run: CPU time outside training steps over CPU time in them
    overhead["inrun_cpu"].append(ours["cpu_s"] / ours["train_cpu_s"] - 1)
    for part in MeasureClock.PARTS:
        parts[part].append(ours[f"measure_{part}_cpu_s"] / ours["train_cpu_s"])
    # start-up of Trainer.train and the loop's bookkeeping: CPU time neither training nor measuring
    parts["outside"].append((ours["cpu_s"] - ours["train_cpu_s"] - ours["measure_cpu_s"]) / ours["train_cpu_s"])


def _run_peer(cfg: dict, peer: str, ours: dict, ends: dict, ratios: dict) -> tuple[list[dict], str]:
    """One repeat of a peer, one process per seed: its results, its ratios (added to ``ratios``)
    and its part of the repeat's log line."""
    env = {"DDE_BACKEND": "pytorch"} if peer == "deepxde" else None
    theirs = [in_process(peer, env=env, cfg=cfg, seed=s) for s in cfg["seeds"]]
    for clock in CLOCKS:
        total = sum(r[f"{clock}_s"] for r in theirs)
        ratios[(peer, "tracking", clock)].append(total / ours[f"{clock}_s"])
        ratios[(peer, "training", clock)].append(total / ends[f"{clock}_s"])
    line = (
        f"{peer} {sum(r['cpu_s'] for r in theirs):.1f} s CPU: x{ratios[(peer, 'tracking', 'cpu')][-1]:.2f} "
        f"(x{ratios[(peer, 'training', 'cpu')][-1]:.2f} against ours without tracking)"
    )
    return theirs, line


def _peer_summary(df: pd.DataFrame, peer: str, ratios: dict) -> dict:
    speedups = [(kind, clock) for kind in RATIO_KINDS for clock in ("cpu", "wall")]
    return {
        **{f"speedup_{kind}_{clock}_median": median(ratios[(peer, kind, clock)]) for kind, clock in speedups},
        **{f"speedup_{kind}_{clock}_all": ratios[(peer, kind, clock)] for kind, clock in speedups},
        **_medians(df, peer, "peer"),
    }


def compare(cfg: dict, peers: list[str], repeats: int, log=print) -> tuple[pd.DataFrame, dict]:
    """One problem, interleaved, ``repeats`` times: our engine measuring on the experiment's
    schedule (``ours``), the same run measuring only at step 0 and the end (``ours_ends_only``),
    and each peer with one process per seed. Ratios of summed times over the same steps x seeds
    are ratios of steps/s per model."""
    rows = []
    seeds, steps = list(cfg["seeds"]), cfg["train"]["steps"]
    ratios = {(p, kind, clock): [] for p in peers for kind in RATIO_KINDS for clock in CLOCKS}
    overhead = {"wall": [], "cpu": [], "inrun_cpu": []}
    parts = {part: [] for part in (*MeasureClock.PARTS, "outside")}
    for rep in range(repeats):
        ours = in_process("ours", cfg=cfg)
        ends = in_process("ours", cfg=cfg, schedule="ends")
        rows += _rows(rep, ours, ends)
        _add_overheads(ours, ends, overhead, parts)
        line = [
            f"  repeat {rep}: ours {steps * len(seeds) / ours['wall_s']:.0f} steps/s per model "
            f"({ours['measurements']} measurements; all seeds in {ours['cpu_s']:.1f} s CPU, "
            f"{ours['wall_s']:.1f} s wall), "
            f"tracking overhead {100 * overhead['inrun_cpu'][-1]:.1f} % CPU in-run, "
            f"{100 * overhead['cpu'][-1]:.1f} % against the run without"
        ]
        for peer in peers:
            theirs, said = _run_peer(cfg, peer, ours, ends, ratios)
            rows += _rows(rep, *theirs)
            line.append(said)
        log("; ".join(line))
    df = pd.DataFrame(rows)
    return df, {
        "experiment": cfg["experiment"],
        "variant": cfg["variant"],
        "task": cfg["task"]["name"],
        "seeds": len(seeds),
        "steps": steps,
        "measurements": int(ours["measurements"]),
        "overhead_inrun_cpu_median": median(overhead["inrun_cpu"]),
        "overhead_inrun_cpu_all": overhead["inrun_cpu"],
        "overhead_cpu_median": median(overhead["cpu"]),
        "overhead_wall_median": median(overhead["wall"]),
        "overhead_cpu_all": overhead["cpu"],
        "overhead_wall_all": overhead["wall"],
        # the in-run overhead by part, each a fraction of the training CPU time (medians of the repeats)
        "overhead_parts_median": {part: median(v) for part, v in parts.items()},
        "overhead_parts_all": parts,
        **_medians(df, "ours", "ours"),
        **_medians(df, "ours_ends_only", "ours_ends_only"),
        "peers": {peer: _peer_summary(df, peer, ratios) for peer in peers},
    }


# ---- the Tracker in a user's own loop --------------------------------------------------------
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
        rows += _rows(rep, plain, tracked)
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
        "overhead_cpu_median": median(overhead["cpu"]),
        "overhead_wall_median": median(overhead["wall"]),
        "overhead_cpu_all": overhead["cpu"],
        "overhead_wall_all": overhead["wall"],
        "overhead_inrun_cpu_median": median(inrun),
        "overhead_inrun_cpu_all": inrun,
        "overhead_parts_median": {part: median(v) for part, v in parts.items()},
        "same_final_losses": all(same),
        **_medians(df, "user_loop", "untracked"),
        **_medians(df, "user_loop_tracked", "tracked"),
    }


SCHEDULE_SPARSITY = (1, 2, 3, 5, 10, 20)  # the experiment's log schedule, and k times sparser

# ---- measurement schedules -------------------------------------------------------------------
SCHEDULE_SPARSITY = (1, 2, 3, 5, 10, 20)  # the experiment's log schedule, and k times sparser


def _stairs_seen(run: dict, schedule: np.ndarray, options: dict) -> dict:
    """The stairs the analysis finds per seed in an every-step ``run`` taken at ``schedule``'s steps
    only, and the median Spearman correlation and fraction aligned."""
    idx = np.searchsorted(np.asarray(run["steps"]), schedule)
    per_seed = [
        stairs.analyse(schedule, r[idx], l[idx], **options).summary()
        for r, l in zip(np.asarray(run["ranks"]), np.asarray(run["loss"]))
    ]
    return {
        "stairs": [int(a["n_stairs"]) for a in per_seed],
        "spearman": median([a["spearman"] for a in per_seed]),
        "fraction_aligned": median([a["fraction_aligned"] for a in per_seed]),
    }


def _schedule_candidates(cfg: dict, every: np.ndarray) -> list[tuple[str, int, np.ndarray]]:
    """(label, sparsity k, steps) of every step (k = 0), the experiment's log schedule and k times
    sparser ones."""
    steps, lg = cfg["train"]["steps"], cfg["log"]
    candidates = [("every step", 0, every)]
    for k in SCHEDULE_SPARSITY:
        sched = log_schedule(steps, lg["dense_every"] * k, lg["dense_until"], lg["sparse_every"] * k)
        candidates.append((f"log x{k}" if k > 1 else "log (config)", k, sched))
    return candidates


def _schedule_row(label: str, k: int, sched, lg: dict, seen: dict, reference: dict, overhead: float) -> dict:
    found, found_every = median(seen["stairs"]), median(reference["stairs"])
    return {
        "schedule": label,
        "sparsity": k,
        "dense_every": lg["dense_every"] * k if k else 1,
        "sparse_every": lg["sparse_every"] * k if k else 1,
        "measurements": len(sched),
        "overhead_estimated": overhead,
        "stairs_median": found,
        "stairs_per_seed": json.dumps(seen["stairs"]),
        # NaN when even measuring every step finds no stair
        "stairs_found": found / found_every if found_every > 0 else float("nan"),
        "spearman_median": seen["spearman"],
        "fraction_aligned_median": seen["fraction_aligned"],
    }


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
    options = stairs.config_options(analysis)
    reference = _stairs_seen(run, every, options)
    rows = []
    for label, k, sched in _schedule_candidates(cfg, every):
        seen = reference if k == 0 else _stairs_seen(run, np.asarray(sched), options)
        overhead = len(sched) * per_measurement / train_cpu
        rows.append(_schedule_row(label, k, sched, cfg["log"], seen, reference, overhead))
        r = rows[-1]
        log(
            f"  {label}: {r['measurements']} measurements, overhead ~{100 * r['overhead_estimated']:.1f} %, "
            f"stairs {seen['stairs']} ({100 * r['stairs_found']:.0f} % of those seen every step)"
        )
    return pd.DataFrame(rows), {
        "experiment": cfg["experiment"],
        "variant": cfg["variant"],
        "steps": steps,
        "seeds": len(cfg["seeds"]),
        "measurement_cpu_ms": 1e3 * per_measurement,
        "step_cpu_ms": 1e3 * train_cpu / steps,
        "schedules": rows,
    }


# ---- stacked models on a GPU -----------------------------------------------------------------
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
        rows += _rows(rep, naive, ours)
        naive_tp = steps / naive["wall_s"]
        ratios.append(steps * n_models / ours["wall_s"] / naive_tp)
        try:
            ours_g = in_process("ours", cfg=graphed)
            rows += _rows(rep, dict(ours_g, contender="ours_cuda_graph"))
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
        "speedup_wall_median": median(ratios),
        "speedup_wall_all": ratios,
        "speedup_cuda_graph_wall_median": median(ratios_graph),
        "speedup_cuda_graph_wall_all": ratios_graph,
        "cuda_graph_errors": errors,
    }
