"""Trained before judged (docs/regime.md, "The budget"): a regime-map cell trained with a budget by
progress (``train.until_loss_factor``, :mod:`staircase.training.budget`) whose healthy seeds did not
all reach the factor is *not trained*. Its A1 numbers stay in the table, drawn apart on the map, but
it is no "no staircase": the map's binomial test counts the trained cells only."""

from __future__ import annotations

from staircase.records.runs import Run
from staircase.training import budget

NOT_TRAINED = "not trained"


def untrained(run: Run) -> list[int]:
    """The healthy seeds of a run whose loss did not fall by its factor (none without a factor)."""
    healthy = set(run.healthy_seeds)
    return [s for s in budget.untrained_seeds(run.metrics, run.config.get("train", {})) if s in healthy]


def judge_trained_only(row: dict, run: Run) -> dict:
    """A cell's row with ``trained`` (every healthy seed reached the factor), ``steps_run`` (the steps
    it trained) and, where it is not trained, ``a1_pass`` None (left out of the count) and a status
    that names the seeds."""
    seeds = untrained(run)
    row = dict(row, trained=not seeds, steps_run=int(run.metrics["step"].max()))
    if seeds:
        loss_factor = budget.factor(run.config["train"])
        note = f"{NOT_TRAINED}: the loss of seed(s) {', '.join(map(str, seeds))} fell by less than x{loss_factor:g}"
        status = row.get("status", "ok")
        row.update(a1_pass=None, status=note if status == "ok" else f"{status}; {note}")
    return row


def not_trained(cells) -> list:
    """The rows of a cell table (itertuples) that are not trained."""
    if "trained" not in cells:
        return []
    return [c for c in cells.itertuples() if not c.trained]


def named(cells: list, prefix: str = "") -> str:
    """The audit's words for the cells not trained ("" when there are none)."""
    return f"{NOT_TRAINED} (left out): " + ", ".join(f"{prefix}{c.variant}" for c in cells) if cells else ""


__all__ = ["NOT_TRAINED", "judge_trained_only", "named", "not_trained", "untrained"]
