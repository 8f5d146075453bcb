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

What it does not change: a measurement is a separate forward pass on the quadrature points, in
eval mode and under ``torch.no_grad``, with forward hooks on the tracked modules that exist only
for that pass; the training batch, the autograd graph, the random number generators and every
module's train/eval flag are left as they were. Between measurements ``step`` costs a set lookup.

The hidden features of a layer are the outputs of a module (flattened to (N, n)); by default the
inputs of every ``nn.Linear`` of an ``nn.Sequential`` but the first (for ``Linear, Tanh, Linear,
Tanh, Linear``: both ``Tanh`` outputs). With ``target`` (u* at the points) it records the relative
L2 error on the quadrature and claim A3's bound on the squared L2 error from the eps-rank's own
Gram matrix (``error_sq``, ``eps_bound``...: the output must be ``output_layer`` applied to the last
tracked layer); with ``train_data`` (the points and targets of a mean-squared-error loss), the
training loss's own lower bound (``lower_bound``...). What it does not know is NaN.

Several models (one per seed, the same architecture) trained in the same loop are one run: pass
them as a list and their losses as a list; the audit needs at least two healthy seeds per claim.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from torch import nn

from staircase.core import rank as rk
from staircase.core.bounds import eps_bounds_from_features, loss_lower_bounds
from staircase.core.schedule import log_schedule
from staircase.records import writer as results
from staircase.training.clocks import MeasureClock
from staircase.training.recorder import Recorder

DEFAULT_EPS = (1.0e-1, 1.0e-2, 1.0e-3, 1.0e-4, 1.0e-6)
DEFAULT_SCHEDULE = {"dense_every": 10, "dense_until": 1000, "sparse_every": 50}  # the pipeline's fit1d log:


def sequential_layers(model: nn.Module) -> list[nn.Module]:
    """The hidden layers of an ``nn.Sequential``: the module before every ``nn.Linear`` but the
    first, whose output that linear layer reads (``Linear, Tanh, Linear, Tanh, Linear``: both Tanh)."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"Tracker: a {type(model).__name__} is not an nn.Sequential: name the modules whose outputs are "
            "the hidden features, layers=[...] (and output_layer= for the bound)"
        )
    mods = list(model)
    found = [mods[i - 1] for i, m in enumerate(mods) if isinstance(m, nn.Linear) and i > 0]
    if not found:
        raise ValueError("Tracker: this nn.Sequential has no nn.Linear reading a hidden layer; name them: layers=[...]")
    return found


def sequential_head(model: nn.Module) -> nn.Module | None:
    """The output layer of an ``nn.Sequential`` ending in an ``nn.Linear`` with one output, else None."""
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Linear):
        return model[-1] if model[-1].out_features == 1 else None
    return None


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
            lg = {**DEFAULT_SCHEDULE, **self.spec}
            if "steps" in lg:
                steps = log_schedule(int(lg["steps"]), lg["dense_every"], lg["dense_until"], lg["sparse_every"])
                self._steps = {int(s) for s in steps}
            else:
                de, du, se = int(lg["dense_every"]), int(lg["dense_until"]), int(lg["sparse_every"])
                self._fn = lambda s: s % de == 0 if s <= du else s % se == 0
        elif isinstance(self.spec, int | np.integer):
            if self.spec < 1:
                raise ValueError(f"Tracker: schedule every {self.spec} steps: must be >= 1")
            k = int(self.spec)
            self._fn = lambda s: s % k == 0
        else:
            self._steps = {int(s) for s in self.spec}

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
        raise ValueError(f"Tracker: {name} has {y.size} values, expected one per point ({n})")
    return y


class Tracker:
    """Records the eps-ranks of a PyTorch model's hidden layers during its training (module docs).

    model: an ``nn.Module`` or a list of them (one per seed, same architecture, trained together);
    points (N, d) (or (N,)) and weights (N,): the quadrature of the Gram matrices (``staircase.
    quadrature`` has trapezoid, Gauss-Legendre, Monte Carlo and quasi-Monte Carlo rules; weights
    None means 1/N, the ``mean`` normalisation); eps: the eps of the ranks table, main_eps the one
    of the ``eps_rank`` column and the bounds; layers: the modules whose outputs are the hidden
    features, in order (a list, or one list per model; default: :func:`sequential_layers`);
    schedule: see :class:`Schedule`; out: the run directory, ``<results>/runs/<experiment>/<variant>``
    (experiment and variant default to its last two parts); target: u* at the points (rel_l2 and
    A3's bound); output_layer: the module giving the output from the last tracked layer (default:
    an nn.Sequential's last nn.Linear); train_data: (x, y) of a mean-squared-error training loss,
    for its own lower bound; seeds: labels of the models (default 0, 1, ...); config: settings to
    record in run.json's config (e.g. the optimiser's); blas_threads: numpy's BLAS threads during a
    measurement (small eigenproblems only slow down with more).
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
    ):
        self._set_models(model, seeds, layers)
        self._set_quadrature(points, weights, eps, main_eps)
        self.schedule = Schedule(schedule)
        self.out = Path(out)
        self.experiment = experiment or self.out.parent.name or "my_model"
        self.variant = variant or self.out.name or "base"
        self._set_bound_inputs(target, output_layer, train_data)
        self.user_config = dict(config or {})
        self._blas = (ThreadpoolController(), int(blas_threads)) if blas_threads else None
        self._tensors: dict[tuple, torch.Tensor] = {}
        self.rec = Recorder()
        self.clock = MeasureClock()
        self.measure_wall = 0.0
        self.diverged_at = np.full(len(self.models), -1)
        self.bound_eps = float("nan")
        self.widths: list[int] | None = None
        self.device = str(self._device(self.models[0])[0])
        self.closed = False
        self._t0, self._c0 = time.perf_counter(), time.thread_time()

    # ---- set-up helpers -------------------------------------------------------------------------
    def _set_models(self, model, seeds, layers) -> None:
        self.models = list(model) if isinstance(model, list | tuple | nn.ModuleList) else [model]
        if not self.models:
            raise ValueError("Tracker: no model given")
        n_models = len(self.models)
        self.seeds = [int(s) for s in (seeds if seeds is not None else range(n_models))]
        if len(self.seeds) != n_models:
            raise ValueError(f"Tracker: {len(self.seeds)} seeds for {n_models} models")
        self.layers = self._per_model(layers, sequential_layers, "layers")
        depths = {len(ls) for ls in self.layers}
        if len(depths) != 1:
            raise ValueError(f"Tracker: the models have different numbers of tracked layers {sorted(depths)}")
        self.depth = depths.pop()

    def _set_quadrature(self, points, weights, eps, main_eps) -> None:
        self.x = _points(points)
        n = len(self.x)
        self.normalisation = "mean" if weights is None else "integral"
        self.w = np.full(n, 1.0 / n) if weights is None else _as_numpy(weights, "weights").reshape(-1)
        if self.w.shape != (n,):
            raise ValueError(f"Tracker: {self.w.size} weights for {n} points")
        self.eps = [float(e) for e in eps]
        self.main_eps = float(main_eps)
        if min(self.eps + [self.main_eps]) <= 0:
            raise ValueError(f"Tracker: eps must be positive, got {self.eps} and main_eps {self.main_eps}")

    def _set_bound_inputs(self, target, output_layer, train_data) -> None:
        """What the bounds need: u* at the points (A3's bound), the output layer, the training data."""
        self.target = None if target is None else _scalar_target(target, len(self.x), "target")
        self.heads: list[nn.Module | None] = [None] * len(self.models)
        if self.target is not None or train_data is not None:
            heads = self._per_model(output_layer, sequential_head, "output_layer", single=True)
            if any(h is None for h in heads):
                raise ValueError(
                    "Tracker: the bounds need the output layer: give output_layer= (the module mapping the last "
                    "tracked layer to the scalar output)"
                )
            self.heads = heads
        self.train_x = self.train_y = None
        if train_data is not None:
            tx, ty = train_data
            self.train_x = _points(tx)
            self.train_y = _scalar_target(ty, len(self.train_x), "train_data's targets")

    def _per_model(self, given, default, what: str, single: bool = False) -> list:
        """One entry per model: ``given`` as a module (``single``) or a list of modules, one per model
        when several models are tracked, else ``default(model)``."""
        n = len(self.models)
        if given is None:
            return [default(m) for m in self.models]
        if single:
            items = list(given) if isinstance(given, list | tuple) else [given]
        else:
            given = list(given)
            nested = bool(given) and isinstance(given[0], list | tuple)
            items = [list(g) for g in given] if nested else [given]
        if len(items) != n:
            raise ValueError(f"Tracker: {what} for {len(items)} model(s), but {n} model(s) tracked: give one per model")
        return items

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
        """Measure now, whatever the schedule (steps must increase)."""
        if self.closed:
            raise RuntimeError("Tracker: measure after close()")
        step = int(step)
        if self.rec.steps and step <= self.rec.steps[-1]:
            raise ValueError(f"Tracker: step {step} after step {self.rec.steps[-1]}: steps must increase")
        wall0 = time.perf_counter()
        self._started = (wall0, time.thread_time(), self.clock.total())  # the clocks outside measurements
        if self._blas is not None:
            controller, threads = self._blas
            with controller.limit(limits=threads, user_api="blas"):
                self._measure(step, loss)
        else:
            self._measure(step, loss)
        self.measure_wall += time.perf_counter() - wall0

    def close(self) -> Path:
        """Write the run (metrics.parquet, ranks.parquet, spectra.npz, run.json) to ``out``; returns it."""
        if not self.rec.steps:
            raise RuntimeError("Tracker: nothing measured; call step(step, loss) in the training loop")
        elapsed = time.perf_counter() - self._t0
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
        )
        self.closed = True
        return self.out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None and not self.closed:
            self.close()

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
        names = {m: n for n, m in model.named_modules()}
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
                "layers": [names.get(m, type(m).__name__) for m in self.layers[0]],
                "output_layer": None if head is None else names.get(head, type(head).__name__),
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
            raise ValueError(f"Tracker: {values.size} loss value(s) for {n} model(s)")
        return values

    def _forward(self, i: int, x: np.ndarray) -> tuple[list[torch.Tensor], torch.Tensor, tuple | None]:
        """A separate forward pass of model i on ``x`` in eval mode (no_grad), the tracked modules'
        outputs caught by hooks that exist for this pass only; every module's mode restored after.
        Returns (hidden features (N, n_l) each, output, (head input, head output) or None)."""
        model, head = self.models[i], self.heads[i]
        caught: dict = {}

        def hook(index):
            def fn(module, args, output):
                if index in caught:
                    raise RuntimeError(
                        f"Tracker: tracked module {type(module).__name__} ran twice in one forward pass: "
                        "name modules that run once"
                    )
                if isinstance(output, tuple | list):
                    output = output[0]
                caught[index] = output

            return fn

        def head_hook(module, args, output):  # returns None: a hook's return value would replace the output
            caught["head"] = (args[0], output)

        handles = [m.register_forward_hook(hook(l)) for l, m in enumerate(self.layers[i])]
        if head is not None:
            handles.append(head.register_forward_hook(head_hook))
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            out = model(self._tensor(x, model))
        finally:
            for h in handles:
                h.remove()
            for m, mode in modes:
                m.training = mode
        missing = [l for l in range(self.depth) if l not in caught]
        if missing:
            raise RuntimeError(f"Tracker: tracked layer(s) {missing} did not run in the model's forward pass")
        n = len(x)
        hidden = [caught[l].reshape(n, -1) for l in range(self.depth)]
        return hidden, out, caught.get("head")

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
        bounded = self.target is not None and len(live)
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
                raise ValueError(f"Tracker: target given, but the model's output has shape {tuple(out.shape)}")
            outputs[i] = out.detach().reshape(-1).to("cpu", torch.float64).numpy()
        w, y = self.w, self.target
        return np.sqrt((w * (outputs - y) ** 2).sum(axis=1) / (w * y * y).sum())

    def _check_widths(self, passes) -> None:
        """The tracked layers' widths: the first measurement's, the same for every model ever after."""
        if self.widths is None:
            self.widths = [h.shape[1] for h in passes[0][0]]
        if any([h.shape[1] for h in p[0]] != self.widths for p in passes):
            raise ValueError("Tracker: the tracked layers' widths differ between models or changed during training")

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
        if self.train_x is None or not len(live):
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
            hidden, out, caught = passes[i]
            head = self.heads[i]
            if caught is None:
                raise RuntimeError("Tracker: output_layer did not run in the model's forward pass")
            head_in, head_out = caught
            last = hidden[-1]
            if head_in.reshape(last.shape).data_ptr() != last.data_ptr() and not torch.equal(
                head_in.reshape(last.shape), last
            ):
                raise ValueError("Tracker: output_layer does not read the last tracked layer's output")
            if not torch.equal(head_out.reshape(-1), out.reshape(-1)):
                raise ValueError("Tracker: the model's output is not output_layer's output")
            weight = head.weight.detach().to("cpu", torch.float64).reshape(-1)
            bias = head.bias.detach().to("cpu", torch.float64).reshape(-1) if head.bias is not None else torch.zeros(1)
            coef.append(torch.cat([bias, weight]).numpy())
            phi.append(last.detach().to("cpu", torch.float64).numpy())
        return np.stack(phi), np.stack(coef)


__all__ = ["DEFAULT_EPS", "Schedule", "Tracker", "sequential_head", "sequential_layers"]
