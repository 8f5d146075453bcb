"""Audit input integrity: the runs of one experiment must be distinct data.

Two folders holding the same run under two variant names, or one seed listed twice, would be
pooled as twice the evidence (a Fisher p over copies is not a p-value). :func:`check` refuses
them with one line naming them. A seed's series is fingerprinted by its steps, loss and eps-rank:
independent trainings never agree to the last bit, while a copy, or a rerun of the same seed with
the same settings (training is deterministic), does.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from staircase.records.runs import Run
from staircase.workflow.config import ConfigError

FINGERPRINT_COLUMNS = ("step", "loss", "eps_rank")


def fingerprint(run: Run, seed: int) -> str:
    """A hash of one seed's measured series (steps, loss, eps-rank), sorted by step."""
    m = run.metrics[run.metrics["seed"] == seed].sort_values("step")
    cols = [c for c in FINGERPRINT_COLUMNS if c in m]
    return hashlib.sha256(np.ascontiguousarray(m[cols].to_numpy(float)).tobytes()).hexdigest()


def seed_problems(run: Run) -> list[str]:
    """Seeds listed twice in run.json, or measured twice at one step in metrics.parquet."""
    listed = [s for s in set(run.seeds) if run.seeds.count(s) > 1]
    twice = run.metrics.duplicated(["seed", "step"])
    measured = sorted({int(s) for s in run.metrics.loc[twice, "seed"]})
    return [f"{run.path}: seed {s} listed twice in run.json" for s in sorted(listed)] + [
        f"{run.path}: seed {s} measured twice at one step in metrics.parquet" for s in measured
    ]


def settings(run: Run) -> str:
    """The run's resolved settings without its names: equal for a copy under another name."""
    config = {k: v for k, v in run.config.items() if k not in ("experiment", "variant")}
    return json.dumps(config, sort_keys=True, default=str)


def copies(runs: list[Run]) -> list[str]:
    """Pairs (run/seed) whose series are identical under equal settings: one copied, or the same
    seed trained twice. Two variants whose settings differ but train identically (mini-batch SGD
    whose batch holds every point is gradient descent) are distinct cells of a design, not copies.
    Healthy seeds only: they are the evidence (a diverged seed's series is left out of every test)."""
    first: dict[tuple[str, str], tuple[Run, str]] = {}  # fingerprint and settings -> (run, "run/seed")
    found = []
    for run in runs:
        for seed in sorted(set(run.healthy_seeds)):
            name = f"{run.path}/seed{seed}"
            key = (fingerprint(run, seed), settings(run))
            if key in first and first[key][0] is not run:  # seeds of one run: seed_problems
                found.append(f"{first[key][1]} and {name} hold identical series")
            else:
                first.setdefault(key, (run, name))
    return found


def check(experiment: str, runs: list[Run]) -> None:
    """Raise :class:`ConfigError` (one line) when ``runs`` of ``experiment`` are not distinct data."""
    problems = [p for run in runs for p in seed_problems(run)] + copies(runs)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(
            f"staircase audit: experiment {experiment}: {problems[0]}{more}; the same data would count twice "
            "as evidence: remove the copy"
        )


__all__ = ["check", "copies", "fingerprint", "seed_problems"]
