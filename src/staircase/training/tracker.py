"""The eps-rank of your own PyTorch model, tracked from its own training loop.

:class:`Tracker` records, at the steps of a schedule, every tracked hidden layer's Gram spectrum on
a quadrature, its eps-ranks and the peer metrics, and writes them in the results format of
``staircase train`` (:mod:`staircase.records.writer`), so ``staircase audit --runs`` and the notebooks read
the run as one of the pipeline's::

    tracker = Tracker(net, x, w, target=y, out="results/runs/my_model/base")
    for step in range(2001):
        loss = ((net(x) - y) ** 2).mean()
        tracker.step(step, loss)         # measures when the schedule says so
        opt.zero_grad(); loss.backward(); opt.step()
    tracker.close()                      # metrics.parquet, ranks.parquet, spectra.npz, run.json

or ``with Tracker(...) as tracker:`` around the loop, which closes it. Nothing measured is lost
to a crash: the run is written after the first measurement and then at most ``save_every_s``
seconds after each measurement (or 20 times the last write's duration, when writing a long run
takes longer: writing stays under 5 % of the run; ``save_every_s=0``: after every measurement,
whatever it costs), and an exception inside the ``with`` block (Ctrl-C too), or a
script that ends without ``close()``, writes what was measured. Such a run is readable and
auditable; run.json says ``"complete": false`` and why it stopped (``stopped``), and
``staircase audit --runs`` notes it. A progress line (tqdm, on stderr) shows the step, the loss and
the last layer's eps-rank; ``progress=False`` silences it. run.json's ``git_commit`` is the commit
of the repository the user's script sits in (``package_git_commit``: staircase's own). A re-run
into the same ``out`` replaces the previous run and removes its ``audit/``.

What it does not change: a measurement is a separate forward pass on the quadrature points, in
eval mode and under ``torch.no_grad``, with forward hooks on the tracked modules that exist only
for that pass; the training batch, the autograd graph, the random number generators and every
module's train/eval flag are left as they were. Between measurements ``step`` costs a set lookup.

The hidden features of a layer are the outputs of a module (flattened to (N, n)); by default the
inputs of every ``nn.Linear`` of an ``nn.Sequential`` but the first (for ``Linear, Tanh, Linear,
Tanh, Linear``: both ``Tanh`` outputs). Any other model names them with ``layers=``: modules,
module paths (``"blocks.0.act"``, ``"act#1"`` for the second call of a shared module), a pattern
(``"blocks.*"``: whole residual blocks) or a function ``features(model, x)`` for functional
activations (:mod:`staircase.training.tracker_layers`). With ``target`` (u* at the points) it
records the relative L2 error on the quadrature and claim A3's bound on the squared L2 error from
the eps-rank's own Gram matrix (``error_sq``, ``eps_bound``...); with ``train_data`` (the points
and targets of a mean-squared-error loss), the training loss's own lower bound (``lower_bound``...).
Both bounds need the output map: the output must be ``output_layer`` (an ``nn.Linear``) applied
to the last tracked layer. Where that is not known or not true (a residual sum after the last
tracked layer), the first measurement leaves the bounds out, warns, and says why in run.json
(``bound_note``); the audit then judges no A3. What it does not know is NaN.

Several models (one per seed, the same architecture) trained in the same loop are one run: pass
them as a list and their losses as a list; the audit needs at least two healthy seeds per claim.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from torch import nn
from tqdm.auto import tqdm

from staircase.core import rank as rk
from staircase.core.bounds import eps_bounds_from_features, loss_lower_bounds
from staircase.core.schedule import log_schedule
from staircase.records import writer as results
from staircase.records.provenance import git_state
from staircase.training.clocks import MeasureClock
from staircase.training.recorder import Recorder
from staircase.training.tracker_layers import (
    TrackerError,
    call_feature_function,
    catch_outputs,
    is_feature_function,
    module_name,
    resolve,
    sequential_head,
    sequential_layers,
)

DEFAULT_EPS = (1.0e-1, 1.0e-2, 1.0e-3, 1.0e-4, 1.0e-6)
DEFAULT_SCHEDULE = {"dense_every": 10, "dense_until": 1000, "sparse_every": 50}  # the pipeline's fit1d log:
SCHEDULE_FORMS = (
    "give None (every 10 steps to 1000, then every 50), an int k (every k steps), a dict of dense_every, "
    "dense_until, sparse_every (and steps), a list of steps, or a function step -> bool"
)


class Schedule:
    """When to measure: ``None`` (every 10 steps to 1000, then every 50: the pipeline's default),
    an int k (every k steps), a dict of :func:`staircase.core.schedule.log_schedule`'s keys
    (``dense_every, dense_until, sparse_every``, optionally ``steps`` to end it), a sequence of
    steps, or a callable step -> bool. Step 0 is always measured."""

    def __init__(self, spec=None):
        self.spec = DEFAULT_SCHEDULE if spec is None else spec
        self._steps: set[int] | None = None
        self._fn: Callable[[int], bool] | None = None
        if callable(self.spec):
            self._fn = self.spec
        elif isinstance(self.spec, dict):
            self._set_log(self.spec)
        elif isinstance(self.spec, int | np.integer) and not isinstance(self.spec, bool):
            if self.spec < 1:
                raise TrackerError(f"Tracker: schedule={self.spec}: measure every k >= 1 steps")
            k = int(self.spec)
            self._fn = lambda s: s % k == 0
        elif isinstance(self.spec, list | tuple | range | set | np.ndarray) and all(
            isinstance(s, int | np.integer) for s in self.spec
        ):
            self._steps = {int(s) for s in self.spec}
        else:
            raise TrackerError(f"Tracker: schedule={self.spec!r}: {SCHEDULE_FORMS}")

    def _set_log(self, spec: dict) -> None:
        unknown = set(spec) - {*DEFAULT_SCHEDULE, "steps"}
        if unknown:
            raise TrackerError(f"Tracker: schedule has unknown key(s) {sorted(unknown)}: {SCHEDULE_FORMS}")
        lg = {**DEFAULT_SCHEDULE, **spec}
        if not all(isinstance(v, int | np.integer) and v >= 1 for v in lg.values()):
            raise TrackerError(f"Tracker: schedule={spec!r}: every value must be a whole number >= 1")
        de, du, se = int(lg["dense_every"]), int(lg["dense_until"]), int(lg["sparse_every"])
        if "steps" in lg:
            self._steps = {int(s) for s in log_schedule(int(lg["steps"]), de, du, se)}
        else:
            self._fn = lambda s: s % de == 0 if s <= du else s % se == 0

    def __call__(self, step: int) -> bool:
        return step == 0 or (step in self._steps if self._steps is not None else bool(self._fn(step)))

    def describe(self):
        if isinstance(self.spec, dict | int):
            return self.spec
        if self._steps is not None:
            return sorted(self._steps)
        return getattr(self.spec, "__name__", "callable")


def _as_numpy(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().to("cpu", torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _points(points) -> np.ndarray:
    x = _as_numpy(points, "points")
    return x[:, None] if x.ndim == 1 else x


def _scalar_target(target, n: int, name: str) -> np.ndarray:
    y = _as_numpy(target, name).reshape(-1)
    if y.shape != (n,):
        raise TrackerError(f"Tracker: {name} has {y.size} values, expected one per point ({n})")
    return y


class Tracker:
    """Records the eps-ranks of a PyTorch model's hidden layers during its training (module docs).

    model: an ``nn.Module`` or a list of them (one per seed, same architecture, trained together);
    points (N, d) (or (N,)) and weights (N,): the quadrature of the Gram matrices (``staircase.
    quadrature`` has trapezoid, Gauss-Legendre, Monte Carlo and quasi-Monte Carlo rules; weights
    None means 1/N, the ``mean`` normalisation); eps: the list of eps of the ranks table, main_eps
    the one of the ``eps_rank`` column and the bounds; layers: the hidden features, in order
    (:mod:`staircase.training.tracker_layers`: modules, module paths, a pattern, or a function of
    the model and the points; module objects one list per model when several are tracked; default:
    :func:`sequential_layers`); schedule: see :class:`Schedule`; out: the run directory,
    ``<results>/runs/<experiment>/<variant>`` (experiment and variant default to its last two
    parts); target: u* at the points (rel_l2 and A3's bound); output_layer: the ``nn.Linear``
    giving the output from the last tracked layer (default: an nn.Sequential's last nn.Linear);
    train_data: (x, y) of a mean-squared-error training loss, for its own lower bound; seeds:
    labels of the models (default 0, 1, ...); config: settings to record in run.json's config
    (e.g. the optimiser's); blas_threads: numpy's BLAS threads during a measurement (small
    eigenproblems only slow down with more); progress: the progress line; total_steps: the last
    step, for the progress line's bar; save_every_s: the most seconds between a measurement and
    the run on disk holding it (the first measurement is written at once; a run whose write takes
    longer than save_every_s / 20 is written every 20 writes' time).

    Example, a residual block with a functional activation (the bound needs the output layer to
    read the last tracked features, here the block's output)::

        class Res(nn.Module):
            def __init__(self):
                super().__init__()
                self.inp, self.mid, self.head = nn.Linear(1, 16), nn.Linear(16, 16), nn.Linear(16, 1)

            def forward(self, x):
                h = torch.tanh(self.inp(x))
                return self.head(h + torch.tanh(self.mid(h)))

        def features(net, x):
            h = torch.tanh(net.inp(x))
            return {"h": h, "block": h + torch.tanh(net.mid(h))}

        with Tracker(net, x, w, layers=features, output_layer=net.head, target=y, out="runs/res/base") as tr:
            ...  # the training loop, calling tr.step(step, loss)
    """

    def __init__(
        self,
        model: nn.Module | Sequence[nn.Module],
        points,
        weights=None,
        *,
        eps: Sequence[float] = DEFAULT_EPS,
        main_eps: float = 1.0e-3,
        layers=None,
        schedule=None,
        out: str | Path = "results/runs/my_model/base",
        target=None,
        output_layer: nn.Module | Sequence[nn.Module] | None = None,
        train_data: tuple | None = None,
        seeds: Sequence[int] | None = None,
        experiment: str | None = None,
        variant: str | None = None,
        config: dict | None = None,
        blas_threads: int | None = 1,
        progress: bool = True,
        total_steps: int | None = None,
        save_every_s: float = 5.0,
    ):
        self.models = list(model) if isinstance(model, list | tuple | nn.ModuleList) else [model]
        self._tensors: dict[tuple, torch.Tensor] = {}
        self._set_quadrature(points, weights, eps, main_eps)
        self._set_models(seeds, layers)
        self.schedule = Schedule(schedule)
        self.out = Path(out)
        self.experiment = experiment or self.out.parent.name or "my_model"
        self.variant = variant or self.out.name or "base"
        self._set_bound_inputs(target, output_layer, train_data)
        self.user_config = dict(config or {})
        self._blas = (ThreadpoolController(), int(blas_threads)) if blas_threads else None
        self.rec = Recorder()
        self.clock = MeasureClock()
        self.measure_wall = 0.0
        self.diverged_at = np.full(len(self.models), -1)
        self.bound_eps = float("nan")
        self.widths: list[int] | None = None
        self.device = str(self._device(self.models[0])[0])
        self.closed = False
        self.save_every_s = float(save_every_s)
        self._saved_at, self._save_cost = -np.inf, 0.0
        self._script = script_provenance()
        self._bar = tqdm(
            total=total_steps, desc=f"{self.experiment}/{self.variant}", unit="step", disable=not progress, leave=True
        )
        self._forget_previous_run()
        atexit.register(self._save_at_exit)
        self._t0, self._c0 = time.perf_counter(), time.thread_time()

    # ---- set-up helpers -------------------------------------------------------------------------
    def _set_models(self, seeds, layers) -> None:
        if not self.models:
            raise TrackerError("Tracker: no model given")
        n_models = len(self.models)
        self.seeds = [int(s) for s in (seeds if seeds is not None else range(n_models))]
        if len(self.seeds) != n_models:
            raise TrackerError(f"Tracker: {len(self.seeds)} seeds for {n_models} models")
        specs = self._layer_specs(layers)
        self.layers = [spec if is_feature_function(spec) else resolve(m, spec) for m, spec in zip(self.models, specs)]
        if is_feature_function(specs[0]):  # what a function returns is known once it ran
            names, features = self._probe(specs[0])
            self.layer_names, depths = names, {len(features)}
        else:
            self.layer_names = [layer.name for layer in self.layers[0]]
            depths = {len(ls) for ls in self.layers}
        if len(depths) != 1:
            raise TrackerError(f"Tracker: the models have different numbers of tracked layers {sorted(depths)}")
        self.depth = depths.pop()

    def _layer_specs(self, layers) -> list:
        """One ``layers=`` spec per model: a spec that names layers by path or by function serves
        every model; module objects belong to one model, so several models need one list each."""
        n = len(self.models)
        if layers is None or isinstance(layers, str | nn.Module) or is_feature_function(layers):
            return [layers] * n  # (one module is refused by resolve, in one line)
        layers = list(layers)
        if layers and isinstance(layers[0], list | tuple):
            if len(layers) != n:
                raise TrackerError(f"Tracker: layers for {len(layers)} model(s), but {n} model(s) tracked")
            return layers
        if n > 1 and not all(isinstance(item, str) for item in layers):
            raise TrackerError(
                f"Tracker: layers for 1 model, but {n} model(s) tracked: give one list of modules per model, "
                "or module paths (strings) that name them in every model"
            )
        return [layers] * n

    @torch.no_grad()
    def _probe(self, fn) -> tuple[list[str], list[torch.Tensor]]:
        """A function's feature names and features on the quadrature, the first model in eval mode."""
        model = self.models[0]
        with _eval_mode(model):
            return call_feature_function(fn, model, self._tensor(self.x, model))

    def _set_quadrature(self, points, weights, eps, main_eps) -> None:
        self.x = _points(points)
        n = len(self.x)
        self.normalisation = "mean" if weights is None else "integral"
        self.w = np.full(n, 1.0 / n) if weights is None else _as_numpy(weights, "weights").reshape(-1)
        if self.w.shape != (n,):
            raise TrackerError(f"Tracker: {self.w.size} weights for {n} points")
        self.eps = _eps_list(eps)
        if isinstance(main_eps, bool) or not isinstance(main_eps, int | float | np.floating | np.integer):
            raise TrackerError(f"Tracker: main_eps={main_eps!r}: one positive number, e.g. main_eps=1e-3")
        self.main_eps = float(main_eps)
        if min(self.eps + [self.main_eps]) <= 0:
            raise TrackerError(f"Tracker: eps must be positive, got {self.eps} and main_eps {self.main_eps}")

    def _set_bound_inputs(self, target, output_layer, train_data) -> None:
        """What the bounds need: u* at the points (A3's bound), the output layer, the training data.
        Without a known output layer the bounds are left out, with a note (``bound_note``)."""
        self.target = None if target is None else _scalar_target(target, len(self.x), "target")
        self.heads: list[nn.Module | None] = [None] * len(self.models)
        self.bound_note: str | None = None
        self.train_x = self.train_y = None
        if train_data is not None:
            tx, ty = train_data
            self.train_x = _points(tx)
            self.train_y = _scalar_target(ty, len(self.train_x), "train_data's targets")
        if self.target is None and train_data is None:
            return
        heads = self._per_model(output_layer, sequential_head, "output_layer")
        if any(h is None for h in heads):
            self._leave_bounds_out(
                "no output layer known: give output_layer= (the nn.Linear mapping the last tracked layer to the output)"
            )
        elif not all(isinstance(h, nn.Linear) and h.out_features == 1 for h in heads):
            self._leave_bounds_out("output_layer is not an nn.Linear with one output")
        else:
            self.heads = heads

    def _leave_bounds_out(self, why: str, stacklevel: int = 4) -> None:
        """No bounds in this run, with the note saying why (run.json ``bound_note``, and a warning
        pointing at the user's line: Tracker(...), or step() at the first measurement)."""
        self.bound_note = f"A3's bound and the loss's bound left out: {why}"
        self.heads = [None] * len(self.models)
        warnings.warn(f"Tracker: {self.bound_note}", stacklevel=stacklevel)

    def _per_model(self, given, default, what: str) -> list:
        """One module per model: ``given`` (a module, or a list, one per model), else ``default(model)``."""
        n = len(self.models)
        if given is None:
            return [default(m) for m in self.models]
        items = list(given) if isinstance(given, list | tuple) else [given]
        if len(items) != n:
            raise TrackerError(
                f"Tracker: {what} for {len(items)} model(s), but {n} model(s) tracked: give one per model"
            )
        return items

    def _forget_previous_run(self) -> None:
        """A re-run into the same folder: the previous run's audit describes another run."""
        if (self.out / "run.json").exists() and (self.out / "audit").is_dir():
            shutil.rmtree(self.out / "audit")

    @staticmethod
    def _device(model: nn.Module) -> tuple[torch.device, torch.dtype]:
        p = next((p for p in model.parameters() if p.is_floating_point()), None)
        return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.get_default_dtype())

    def _tensor(self, x: np.ndarray, model: nn.Module) -> torch.Tensor:
        """``x`` on the model's device and in its dtype; the tracker's own point sets are converted
        once (a cache by id() alone would hand a later array at a recycled address a stale tensor)."""
        device, dtype = self._device(model)
        if x is not self.x and x is not self.train_x:
            return torch.as_tensor(x, device=device, dtype=dtype)
        key = (x is self.x, str(device), dtype)
        if key not in self._tensors:
            self._tensors[key] = torch.as_tensor(x, device=device, dtype=dtype)
        return self._tensors[key]

    # ---- the loop's calls ---------------------------------------------------------------------------
    def step(self, step: int, loss=None) -> bool:
        """Measure the models as they are now (after ``step`` updates) if the schedule says so; ``loss``:
        their training loss at this state (a number or 0-d tensor, or one per model), read only when
        measuring. Returns whether it measured."""
        if not self.schedule(int(step)) or (self.rec.steps and self.rec.steps[-1] == int(step)):
            return False
        self.measure(step, loss)
        return True

    def measure(self, step: int, loss=None) -> None:
        """Measure now, whatever the schedule (steps must increase); the run on disk follows within
        ``save_every_s`` seconds."""
        if self.closed:
            raise RuntimeError("Tracker: measure after close()")
        step = int(step)
        if self.rec.steps and step <= self.rec.steps[-1]:
            raise TrackerError(f"Tracker: step {step} after step {self.rec.steps[-1]}: steps must increase")
        wall0 = time.perf_counter()
        self._started = (wall0, time.thread_time(), self.clock.total())  # the clocks outside measurements
        if self._blas is not None:
            controller, threads = self._blas
            with controller.limit(limits=threads, user_api="blas"):
                self._measure(step, loss)
        else:
            self._measure(step, loss)
        self._show_progress(step)
        # writing rewrites every measurement so far: at most one write per 20 writes' time keeps its
        # cost under 5 % of the run when a long run's write takes longer than save_every_s / 20
        interval = max(self.save_every_s, 20 * self._save_cost) if self.save_every_s > 0 else 0.0
        if time.perf_counter() - self._saved_at >= interval:
            self._save(complete=False, stopped=f"running, or stopped without close() after step {step}")
        self.measure_wall += time.perf_counter() - wall0

    def close(self) -> Path:
        """Write the run (metrics.parquet, ranks.parquet, spectra.npz, run.json) to ``out``; returns it."""
        if not self.rec.steps:
            raise RuntimeError("Tracker: nothing measured; call step(step, loss) in the training loop")
        self._save(complete=True, stopped=None)
        self._finish()
        return self.out

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        """Close on a normal exit; on an exception (Ctrl-C too), write what was measured, marked
        incomplete, and let the exception go on."""
        if self.closed:
            return
        if kind is None:
            self.close()
        elif self.rec.steps:
            self._save(complete=False, stopped=f"interrupted by {kind.__name__} after step {self.rec.steps[-1]}")
            self._finish()

    def _save_at_exit(self) -> None:
        """The interpreter ends with the tracker open (close() forgotten, or an exception outside a with block)."""
        if not self.closed and self.rec.steps:
            self._save(complete=False, stopped=f"the script ended without close() after step {self.rec.steps[-1]}")
            self._finish()

    def _finish(self) -> None:
        self.closed = True
        self._bar.close()
        atexit.unregister(self._save_at_exit)

    def _save(self, complete: bool, stopped: str | None) -> None:
        """Write every measurement so far; run.json says whether the run is complete, and if not why."""
        start = time.perf_counter()
        elapsed = start - self._t0
        train_cpu = time.thread_time() - self._c0 - self.clock.total()
        self.device = str(self._device(self.models[0])[0])  # where the models are now
        results.write_results(
            self.out,
            self.rec,
            self.clock,
            config=self.run_config(),
            seeds=self.seeds,
            depth=self.depth,
            eps=self.eps,
            main_eps=self.main_eps,
            bound_eps=self.bound_eps,
            normalisation=self.normalisation,
            train_clock=(elapsed - self.measure_wall, train_cpu),
            diverged_at=self.diverged_at,
            steps_done=int(self.rec.steps[-1]),
            elapsed=elapsed,
            device=self.device,
            extra={"complete": complete, "stopped": stopped, "bound_note": self.bound_note, **self._script},
        )
        self._saved_at = time.perf_counter()
        self._save_cost = self._saved_at - start

    def _show_progress(self, step: int) -> None:
        """The progress line: the step, the median loss and last layer's eps-rank over the models."""
        bar = self._bar
        if bar.disable:
            return
        loss = self.rec.scalars["loss"][-1]
        rank = results.main_ranks(self.rec.spectra[-1:], self.main_eps)[:, 0]
        postfix = {"loss": f"{np.nanmedian(loss):.3g}" if np.isfinite(loss).any() else "-"}
        postfix["eps_rank"] = f"{np.nanmedian(rank):.0f}" if np.isfinite(rank).any() else "-"
        bar.set_postfix(postfix, refresh=False)
        bar.update(step - bar.n)

    @torch.no_grad()
    def hidden(self, points) -> list[torch.Tensor]:
        """The tracked layers' features of every model on ``points`` (N, d) or (N,), as a measurement
        sees them: one (S, N, n_l) tensor per layer. ``staircase.benchmarks.quadcheck.rank_table(tracker.hidden,
        rules, tracker.eps)`` compares quadrature rules on the models as they are now."""
        x = _points(points)
        per_model = [self._forward(i, x)[0] for i in range(len(self.models))]
        return [
            torch.stack([h[layer].to(per_model[0][layer].device) for h in per_model]) for layer in range(self.depth)
        ]

    def run_config(self) -> dict:
        """run.json's ``config``: what the audit and the notebooks read (experiment, variant, rank,
        model depth), what was tracked, and the user's own settings."""
        model = self.models[0]
        head = self.heads[0]
        return {
            "experiment": self.experiment,
            "variant": self.variant,
            "scale": "user",
            "seeds": self.seeds,
            "device": self.device,
            "model": {
                "class": type(model).__name__,
                "depth": self.depth,
                "width": self.widths[-1] if self.widths else None,
                "widths": self.widths,
                "layers": self.layer_names,
                "output_layer": None if head is None else module_name(model, head),
                "parameters": int(sum(p.numel() for p in model.parameters())),
            },
            "rank": {"eps": self.eps, "main_eps": self.main_eps, "normalisation": self.normalisation},
            "train": {"steps": int(self.rec.steps[-1]) if self.rec.steps else 0},
            "tracker": {
                "points": len(self.x),
                "dim": int(self.x.shape[1]),
                "weights_sum": float(self.w.sum()),
                "schedule": self.schedule.describe(),
                "target": self.target is not None,
                "train_points": None if self.train_x is None else len(self.train_x),
            },
            **self.user_config,
        }

    # ---- one measurement ----------------------------------------------------------------------------
    def _losses(self, loss) -> np.ndarray:
        n = len(self.models)
        if loss is None:
            return np.full(n, np.nan)
        if isinstance(loss, torch.Tensor) and loss.dim() == 1:
            values = loss.detach().to("cpu", torch.float64).numpy()
        elif isinstance(loss, list | tuple | np.ndarray):
            values = np.array([float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for v in loss])
        else:
            values = np.array([float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)])
        if values.shape != (n,):
            raise TrackerError(f"Tracker: {values.size} loss value(s) for {n} model(s)")
        return values

    def _forward(self, i: int, x: np.ndarray) -> tuple[list[torch.Tensor], torch.Tensor, tuple | None]:
        """A separate forward pass of model i on ``x`` in eval mode (no_grad), the tracked modules'
        outputs caught by hooks that exist for this pass only; every module's mode restored after.
        Returns (hidden features (N, n_l) each, output, (head input, head output) or None)."""
        model, head, layers = self.models[i], self.heads[i], self.layers[i]
        caught: dict = {}

        def head_hook(module, args, output):  # returns None: a hook's return value would replace the output
            caught["head"] = (args[0], output)

        def run_model():
            handle = head.register_forward_hook(head_hook) if head is not None else None
            try:
                return model(xt)
            finally:
                if handle is not None:
                    handle.remove()

        with _eval_mode(model):
            xt = self._tensor(x, model)
            if is_feature_function(layers):
                hidden = call_feature_function(layers, model, xt)[1]
                out = run_model() if self.target is not None or head is not None else None
            else:
                hidden, out = catch_outputs(model, layers, run_model)
        if len(hidden) != self.depth:
            raise TrackerError(f"Tracker: {len(hidden)} tracked layers in this forward pass, {self.depth} before")
        return [h.reshape(len(x), -1) for h in hidden], out, caught.get("head")

    @torch.no_grad()
    def _measure(self, step: int, loss) -> None:
        clock = self.clock
        clock.start()
        n_models = len(self.models)
        losses = self._losses(loss)
        clock.lap("loss")
        passes = [self._forward(i, self.x) for i in range(n_models)]
        rel = self._relative_errors(passes)
        self._check_widths(passes)
        finite = np.array([all(bool(torch.isfinite(h).all()) for h in p[0]) for p in passes])
        bad_loss = ~np.isfinite(losses) if loss is not None else np.zeros(n_models, dtype=bool)
        self.diverged_at[(self.diverged_at < 0) & (bad_loss | ~finite)] = step  # NaN from here on, as the trainer
        ok = self.diverged_at < 0
        live = np.flatnonzero(ok)
        clock.lap("forward")
        if not self.rec.steps and self.heads[0] is not None:  # the first measurement decides: bounds or a note
            problem = next(filter(None, (self._head_mismatch(passes[i], self.heads[i]) for i in live)), None)
            if problem:
                self._leave_bounds_out(problem, stacklevel=6)
        bounded = self.target is not None and len(live) and self.heads[0] is not None
        spectra, last_eigh = self._spectra(passes, live, bounded)
        clock.lap("spectra")
        eps_bound = np.full((4, n_models), np.nan)
        if bounded:
            phi, coef = self._head_features(passes, live)
            values, vectors = last_eigh
            for s, r in zip(
                live, eps_bounds_from_features(values, vectors, phi, coef, self.target, self.w, self.main_eps)
            ):
                eps_bound[:, s] = (r.loss, r.lower_bound, r.best_loss_top_r, r.violated)
        bound = self._loss_bound(live)
        clock.lap("bound")
        clocks = (np.full(n_models, t) for t in self._clock_readings())
        self.rec.add(step, (losses, rel, *bound, *eps_bound, *clocks), spectra, ok)
        clock.stop()

    def _relative_errors(self, passes) -> np.ndarray:
        """Per model, the relative L2 error on the quadrature (NaN without a target)."""
        n_models, n = len(self.models), len(self.x)
        if self.target is None:
            return np.full(n_models, np.nan)
        outputs = np.full((n_models, n), np.nan)
        for i, (_, out, _) in enumerate(passes):
            if out.numel() != n:
                raise TrackerError(f"Tracker: target given, but the model's output has shape {tuple(out.shape)}")
            outputs[i] = out.detach().reshape(-1).to("cpu", torch.float64).numpy()
        w, y = self.w, self.target
        return np.sqrt((w * (outputs - y) ** 2).sum(axis=1) / (w * y * y).sum())

    def _check_widths(self, passes) -> None:
        """The tracked layers' widths: the first measurement's, the same for every model ever after."""
        if self.widths is None:
            self.widths = [h.shape[1] for h in passes[0][0]]
        if any([h.shape[1] for h in p[0]] != self.widths for p in passes):
            raise TrackerError("Tracker: the tracked layers' widths differ between models or changed during training")

    def _spectra(self, passes, live: np.ndarray, bounded) -> tuple[list[np.ndarray], tuple | None]:
        """Per tracked layer, the (S, n) sorted Gram eigenvalues (NaN for the models not ``live``);
        and, with ``bounded``, the last layer's eigendecomposition (A3's bound uses it)."""
        spectra, last_eigh = [], None
        for layer in range(self.depth):
            spec = np.full((len(self.models), self.widths[layer]), np.nan)
            if len(live):
                gram = np.stack([rk.gram(passes[i][0][layer], self.w) for i in live])
                if bounded and layer == self.depth - 1:
                    last_eigh = np.linalg.eigh(gram)
                    spec[live] = last_eigh[0][..., ::-1]
                else:
                    spec[live] = rk.spectrum_of_gram(gram)
            spectra.append(spec)
        return spectra, last_eigh

    def _loss_bound(self, live: np.ndarray) -> np.ndarray:
        """(5, S): the mean-squared training loss's own lower bound (NaN without ``train_data``)."""
        bound = np.full((5, len(self.models)), np.nan)
        if self.train_x is None or not len(live) or self.heads[0] is None:
            return bound
        train_passes = {i: self._forward(i, self.train_x) for i in live}
        phi, coef = self._head_features(train_passes, live)
        m = len(self.train_x)
        features = np.concatenate([np.ones(phi.shape[:-1] + (1,)), phi], axis=-1)
        # the bound's eps in the loss's quadrature (weights 1/M): Gram eigenvalues scale with the total weight
        self.bound_eps = self.main_eps / float(np.sum(self.w))
        for s, r in zip(live, loss_lower_bounds(features, self.train_y, coef, np.full(m, 1.0 / m), self.bound_eps)):
            bound[:, s] = (r.lower_bound, r.best_loss, r.best_loss_top_r, r.rank, r.violated)
        return bound

    def _clock_readings(self) -> tuple[float, float, float]:
        """elapsed_s, train_s, train_cpu_s now: training time up to this measurement, outside the earlier ones."""
        elapsed = time.perf_counter() - self._t0
        wall0, cpu0, measured_cpu = self._started
        return elapsed, wall0 - self._t0 - self.measure_wall, cpu0 - self._c0 - measured_cpu

    def _head_features(self, passes, live) -> tuple[np.ndarray, np.ndarray]:
        """(S_live, N, n) float64 features that the output layer reads, and its coefficients
        (S_live, 1 + n): bias, then weights. Checks that the head reads the last tracked layer and
        gives the model's output, so that the bound is about the model's output."""
        phi, coef = [], []
        for i in live:
            head = self.heads[i]
            problem = self._head_mismatch(passes[i], head)
            if problem:
                raise TrackerError(f"Tracker: {problem}")
            last = passes[i][0][-1]
            weight = head.weight.detach().to("cpu", torch.float64).reshape(-1)
            bias = head.bias.detach().to("cpu", torch.float64).reshape(-1) if head.bias is not None else torch.zeros(1)
            coef.append(torch.cat([bias, weight]).numpy())
            phi.append(last.detach().to("cpu", torch.float64).numpy())
        return np.stack(phi), np.stack(coef)

    @staticmethod
    def _head_mismatch(forward_pass, head) -> str | None:
        """Why the bounds would not be about the model's output (None: they are): the output layer
        must read the last tracked layer's features and give the model's output."""
        hidden, out, caught = forward_pass
        if caught is None:
            return "output_layer did not run in the model's forward pass"
        head_in, head_out = caught
        last = hidden[-1]
        reads_last = head_in.numel() == last.numel() and (
            head_in.reshape(last.shape).data_ptr() == last.data_ptr() or torch.equal(head_in.reshape(last.shape), last)
        )
        if not reads_last:
            return "output_layer does not read the last tracked layer's output (track the features it reads)"
        if out is None or not torch.equal(head_out.reshape(-1), out.reshape(-1)):
            return "the model's output is not output_layer's output"
        return None


def _eps_list(eps) -> list[float]:
    """The ranks table's eps: a list of positive numbers (one number is a common slip: say so)."""
    if isinstance(eps, int | float | np.number) and not isinstance(eps, bool):
        raise TrackerError(
            f"Tracker: eps={eps!r} is one number: eps is a list (eps=[{eps!r}]); main_eps= is the one of the bounds"
        )
    try:
        return [float(e) for e in eps]
    except (TypeError, ValueError):
        raise TrackerError(
            f"Tracker: eps={eps!r}: expected a list of positive numbers, e.g. eps=[1e-2, 1e-3]"
        ) from None


class _eval_mode:
    """Every module of ``model`` in eval mode inside the block, its own mode restored after."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc):
        for m, mode in self.modes:
            m.training = mode


def script_provenance() -> dict:
    """run.json's code version: the commit of the repository the user's script sits in (the
    working directory when there is no script), and staircase's own as ``package_git_commit``."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    folder = Path(script).resolve().parent if script else Path.cwd()
    package = git_state()
    return {
        **git_state(folder),
        "script": str(Path(script).resolve()) if script else None,
        "package_git_commit": package["git_commit"],
        "package_git_dirty": package["git_dirty"],
    }


__all__ = ["DEFAULT_EPS", "Schedule", "Tracker", "TrackerError", "sequential_head", "sequential_layers"]
