"""What a run records at each measurement, as plain arrays (so that a checkpoint holds it cheaply):
the trainer (:mod:`staircase.training.trainer`) and the tracker (:mod:`staircase.training.tracker`)
fill it, :func:`staircase.records.writer.write_results` writes it."""

from __future__ import annotations

import numpy as np

# Clock readings: the only columns of metrics.parquet that differ between identical runs.
TIMING_COLUMNS = ("elapsed_s", "train_s", "train_cpu_s")


class Recorder:
    """Collects measurements at log steps: ``steps``; ``scalars``, per column one (S,) array per
    measurement; ``spectra``, per measurement one (S, n) array of Gram eigenvalues per hidden layer."""

    SCALARS = (
        "loss",
        "rel_l2",
        "lower_bound",
        "best_loss",
        "best_loss_top_r",
        "bound_rank",
        "bound_violation",
        "error_sq",
        "eps_bound",
        "eps_bound_top_r",
        "eps_bound_violation",
        "elapsed_s",
        "train_s",
        "train_cpu_s",
    )

    def __init__(self):
        self.steps: list[int] = []
        self.scalars: dict[str, list[np.ndarray]] = {k: [] for k in self.SCALARS}
        self.spectra: list[list[np.ndarray]] = []  # per step: one (S, n) array per layer

    def add(self, step: int, values, spectra: list[np.ndarray], ok: np.ndarray) -> None:
        """One measurement: ``values`` in the order of SCALARS; a seed that is not ``ok`` (it
        diverged) records NaN but for the clocks."""
        self.steps.append(step)
        for key, val in zip(self.SCALARS, values):
            self.scalars[key].append(val if key in TIMING_COLUMNS else np.where(ok, val, np.nan))
        self.spectra.append(spectra)

    def state(self) -> dict:
        return {"steps": self.steps, "scalars": self.scalars, "spectra": self.spectra}

    def load(self, state: dict) -> None:
        self.steps, self.scalars, self.spectra = state["steps"], state["scalars"], state["spectra"]


__all__ = ["TIMING_COLUMNS", "Recorder"]
