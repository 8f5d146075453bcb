"""The clocks of a run: where its time goes, reported in run.json and the clock columns of
metrics.parquet (:data:`staircase.training.recorder.TIMING_COLUMNS`); they never change a
measured value. :class:`NullClock` stands in for :class:`MeasureClock` where no one reads it."""

from __future__ import annotations

import contextlib
import time

import numpy as np


class MeasureClock:
    """CPU seconds (of the training thread) spent in each part of the measurements: the loss
    ("loss": its forward pass on the training points, shared with the bound), the forward pass on
    the rank and error points with the error ("forward"), the Gram matrices and their eigenvalues
    ("spectra"), the bound's linear algebra ("bound"), and the rest ("other": recording, divergence
    checks). Together they are the tracking overhead of a run; run.json reports them."""

    PARTS = ("loss", "forward", "spectra", "bound", "other")

    def __init__(self):
        self.seconds = dict.fromkeys(self.PARTS, 0.0)
        self.count = 0
        self._last = 0.0

    def start(self) -> None:
        self._last = time.thread_time()

    def lap(self, part: str) -> None:
        now = time.thread_time()
        self.seconds[part] += now - self._last
        self._last = now

    def stop(self) -> None:
        self.lap("other")
        self.count += 1

    def total(self) -> float:
        return sum(self.seconds.values())

    def state(self) -> dict:
        return {"seconds": dict(self.seconds), "count": self.count}

    def load(self, state: dict) -> None:
        self.seconds, self.count = dict(state["seconds"]), int(state["count"])


class NullClock(MeasureClock):
    """A MeasureClock that reads no clock: every part stays at zero seconds, measurements are counted."""

    def start(self) -> None:
        pass

    def lap(self, part: str) -> None:
        pass


@contextlib.contextmanager
def timed(total: np.ndarray):
    """Add the wall and CPU seconds (of this thread) that the block took to ``total`` (2,), in place."""
    wall, cpu = time.perf_counter(), time.thread_time()
    yield
    total += (time.perf_counter() - wall, time.thread_time() - cpu)


__all__ = ["MeasureClock", "NullClock", "timed"]
