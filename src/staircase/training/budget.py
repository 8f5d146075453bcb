"""Budgets by progress (docs/regime.md, "The budget"): a run with ``train.until_loss_factor: F``
trains at least ``train.steps`` steps and then on, until every seed that has not diverged has a
training loss at most its step-0 loss / F, or until ``train.max_steps`` (the cap). The check runs at
the measurements, which beyond ``train.steps`` are log-spaced (``log.per_decade`` a decade), so a
long run costs few measurements. A run without the key trains exactly ``train.steps`` steps.

A seed whose loss did not fall by F is *not trained*: :func:`untrained_seeds` names them from a
run's metrics, and the audit leaves a cell with such a seed out of the regime map's count."""

from __future__ import annotations

import numpy as np
import pandas as pd

from staircase.core.schedule import log_schedule

PER_DECADE = 40  # log.per_decade's default: measurements per decade of steps beyond train.steps


def factor(train: dict) -> float | None:
    """The loss factor a run trains to (None: a fixed budget of ``train.steps``)."""
    value = train.get("until_loss_factor")
    return None if value is None else float(value)


def cap(train: dict) -> int:
    """The last step a run may train to: ``train.max_steps`` with a factor, else ``train.steps``."""
    return int(train["max_steps"]) if factor(train) is not None else int(train["steps"])


def measure_steps(train: dict, log: dict) -> np.ndarray:
    """The steps a run measures at: the log schedule to ``train.steps``; with a factor, then about
    ``log.per_decade`` log-spaced steps a decade up to the cap (the cap included)."""
    steps = int(train["steps"])
    dense = log_schedule(steps, log["dense_every"], log["dense_until"], log["sparse_every"])
    last = cap(train)
    if last <= steps:
        return dense
    decades = np.log10(last / max(steps, 1))
    count = max(int(np.ceil(decades * log.get("per_decade", PER_DECADE))), 1)
    later = np.unique(np.round(np.geomspace(max(steps, 1), last, count + 1)).astype(int))
    return np.unique(np.concatenate([dense, later[later > steps]]))


def problems(train: dict) -> list[tuple[str, str]]:
    """(key, problem) of a resolved train block's budget by progress: both keys or neither, and a cap
    not below train.steps."""
    if ("until_loss_factor" in train) != ("max_steps" in train):
        return [("train", "until_loss_factor and max_steps go together (a budget by progress and its cap)")]
    if factor(train) is not None and int(train["max_steps"]) < int(train["steps"]):
        least = f"train.steps {train['steps']}, the least a run trains"
        return [("train.max_steps", f"{train['max_steps']} is below {least}")]
    return []


def reached(start: np.ndarray, now: np.ndarray, ok: np.ndarray, loss_factor: float) -> bool:
    """Has every seed that has not diverged (``ok``) a loss at most its step-0 loss / factor?"""
    return bool(ok.any() and (now[ok] <= start[ok] / loss_factor).all())


def untrained_seeds(metrics: pd.DataFrame, train: dict) -> list[int]:
    """The seeds of a run whose last finite loss is above their step-0 loss / factor (none
    without a factor; a diverged seed is judged by the audit's health check, not here)."""
    loss_factor = factor(train)
    if loss_factor is None:
        return []
    out = []
    for seed, rows in metrics.sort_values("step").groupby("seed"):
        loss = rows["loss"].to_numpy(float)
        finite = loss[np.isfinite(loss)]
        if len(finite) == len(loss) and finite[-1] > finite[0] / loss_factor:
            out.append(int(seed))
    return out


__all__ = ["PER_DECADE", "cap", "factor", "measure_steps", "problems", "reached", "untrained_seeds"]
