"""The checks of a resolved run config's training methods, without torch.

The config's validation runs them before any job, in every Snakemake command (a dry run too); they
live apart from :mod:`staircase.training.methods`, which builds the optimisers and imports torch
(about 2.2 s a command; PERFORMANCE.md, "The floor"). ``methods`` re-exports them.
"""

from __future__ import annotations

from staircase.problems import TASKS, make_task
from staircase.problems.pde import PDETask

MONOTONE_ACTIVATIONS = ("tanh", "relu", "sigmoid", "gelu")


def check_run_config(cfg: dict) -> list[tuple[str, str]]:
    """Problems with a resolved run config's methods, as (key, problem) pairs (empty if fine)."""
    problems = []
    m, t = cfg["model"], cfg["train"]
    if m.get("init", "default") == "structured":
        if m["activation"] not in MONOTONE_ACTIVATIONS:
            problems.append(
                (
                    "model.init",
                    f"structured init needs a monotone activation {list(MONOTONE_ACTIVATIONS)}, "
                    f"not {m['activation']!r} (shifted copies of one sine span two functions)",
                )
            )
        if m.get("architecture", "mlp") == "fourier":
            problems.append(("model.init", "structured init needs a first layer acting on x, not a Fourier embedding"))
    if m.get("norm", "none") == "batch":
        task = TASKS.get(cfg["task"]["name"])
        if task is not None and issubclass(task, PDETask):
            problems.append(
                (
                    "model.norm",
                    "batch normalisation would normalise interior and boundary points with different statistics",
                )
            )
    if t["optimizer"] == "adam_lbfgs":
        switch = (t.get("lbfgs") or {}).get("switch_step")
        if switch is None:
            problems.append(("train.lbfgs.switch_step", "required by optimizer adam_lbfgs"))
        elif switch > t["steps"]:
            problems.append(("train.lbfgs.switch_step", f"{switch} is beyond train.steps {t['steps']}"))
    if t.get("batch_size") is not None:
        if t["optimizer"] in ("lbfgs", "adam_lbfgs"):
            problems.append(
                (
                    "train.batch_size",
                    f"mini-batches need a first-order optimiser, not {t['optimizer']!r} "
                    "(its line search needs one fixed loss)",
                )
            )
        else:
            problems.extend(_batch_problems(cfg))
    schedule = t.get("schedule") or {}
    if schedule.get("name") == "step" and "step_size" not in schedule:
        problems.append(("train.schedule.step_size", "required by schedule 'step'"))
    if schedule and t["optimizer"] == "lbfgs":
        problems.append(("train.schedule", "L-BFGS takes no learning-rate schedule (its line search sets the step)"))
    return problems


def _batch_problems(cfg: dict) -> list[tuple[str, str]]:
    """train.batch_size beyond the points a batch is drawn from (builds the task's point sets)."""
    params = dict(cfg["task"])
    try:
        task = make_task(params.pop("name"), **params)
        n = task.batch_points()
    except (ValueError, TypeError, KeyError):
        return []  # the task's own problem is reported by the task check
    size = cfg["train"]["batch_size"]
    if size > n:
        return [("train.batch_size", f"{size} is more than the {n} points a batch is drawn from")]
    return []
