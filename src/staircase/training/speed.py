"""The training loop's speed features, each one opt-in and each leaving every recorded series as
the plain loop's, bit for bit (tests/test_speed.py trains with each on and off; PERFORMANCE.md
says what each one saves):

* ``fast_optimizer_step`` - first-order steps through :class:`staircase.training.fastopt.FastStep`,
  the optimiser's own kernel without ``torch.optim``'s per-call bookkeeping;
* ``keep_freed_memory`` - glibc keeps freed heap memory (:mod:`staircase.training.hostmem`), so a
  step's temporaries do not page-fault back in;
* ``shared_forward`` - within one measurement, the loss and the bound system share their forward
  pass on the training points (:class:`SharedForward`);
* ``measure_clock`` - CPU seconds of the measurements by part (:class:`staircase.training.clocks.MeasureClock`,
  run.json's ``measure_cpu_s``); off, they read zero;
* ``cuda_graph`` - on a GPU, capture one training step and replay it (:class:`CudaGraphStep`;
  ``train.cuda_graph``, off by default);
* ``full_float32`` - on a GPU, matmuls in full float32, not TF32, which would swamp PDE residuals and
  small eigenvalues: a matter of accuracy more than speed, set here because it is process-wide too.

:func:`enable` is the one call the trainer makes: the options of a job's config, with the
process-wide ones applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from staircase.training import hostmem
from staircase.training.clocks import MeasureClock, NullClock


@dataclasses.dataclass(frozen=True)
class Speed:
    """Which speed features a job uses; the defaults are the pipeline's (``cuda_graph`` comes from
    ``train.cuda_graph``, and only on a GPU)."""

    fast_optimizer_step: bool = True
    keep_freed_memory: bool = True
    shared_forward: bool = True
    measure_clock: bool = True
    cuda_graph: bool = False
    full_float32: bool = True

    @classmethod
    def from_config(cls, cfg: dict, device: str) -> Speed:
        return cls(cuda_graph=device == "cuda" and bool(cfg["train"].get("cuda_graph", False)))

    def apply_to_process(self, device: str) -> None:
        """The process-wide settings: the allocator's, and the GPU's matmul precision."""
        if self.keep_freed_memory:
            hostmem.keep_freed_memory()
        if self.full_float32 and device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def measured_model(self, model):
        """The model as one measurement's loss and bound system see it."""
        return SharedForward(model) if self.shared_forward else model

    def new_measure_clock(self) -> MeasureClock:
        return MeasureClock() if self.measure_clock else NullClock()


def enable(cfg: dict, device: str, speed: Speed | None = None) -> Speed:
    """The speed features of a job (``speed``, or the config's), with the process-wide ones applied."""
    speed = Speed.from_config(cfg, device) if speed is None else speed
    speed.apply_to_process(device)
    return speed


class SharedForward:
    """The model as seen by a task during one measurement: a forward pass (or a forward
    Laplacian) on a tensor it has already seen is served from the first one (the loss and then
    the bound system both evaluate the training points), with the hidden layers kept. Everything
    else is the model's."""

    def __init__(self, model):
        self._model = model
        self._seen: dict[tuple[str, int], tuple] = {}  # (what, id(x)) -> (x, result)

    def _memo(self, what: str, x: torch.Tensor, compute):
        hit = self._seen.get((what, id(x)))
        if hit is None or hit[0] is not x:
            hit = self._seen[(what, id(x))] = (x, compute())
        return hit[1]

    def __getattr__(self, name):
        attr = getattr(self._model, name)
        if name == "forward_laplacian":
            return lambda x: self._memo("laplacian", x, lambda: attr(x))
        return attr

    def __call__(self, x: torch.Tensor, return_hidden: bool = False):
        out, hidden = self._memo("forward", x, lambda: self._model(x, return_hidden=True))
        return (out, hidden) if return_hidden else out


class CudaGraphStep:
    """A training step replayed as a CUDA graph (small stacked MLPs are bound by kernel launches):
    the first ``WARMUP`` calls run ``step`` eagerly on a side stream (as capture requires), the next
    one captures it, and every call from there on replays it: the same kernels on the same
    (static) tensors. ``on_replay`` does what the step does in Python (e.g. count it)."""

    WARMUP = 3

    def __init__(self, step: Callable[[], object], on_replay: Callable[[], None]):
        self.step, self.on_replay = step, on_replay
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warmup_left = self.WARMUP

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
            self.on_replay()
        elif self.warmup_left > 0:
            self.warmup_left -= 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.step()
            torch.cuda.current_stream().wait_stream(side)
        else:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.step()  # gradients are set to None first: allocated in the graph's pool
            graph.replay()  # capturing ran nothing: this is the step itself
            self.graph = graph


__all__ = ["CudaGraphStep", "SharedForward", "Speed", "enable"]
