"""The training loop: trains every seed of one experiment variant at once and records, on a
schedule dense early and sparse later, the loss, the error, the full Gram spectrum of every hidden
layer, and the loss lower bound.

Outputs (all written atomically, in ``out_dir``):

* ``metrics.parquet`` - one row per (seed, step): loss, rel_l2, eps_rank (last hidden layer at
  the main eps), lower_bound, best_loss, best_loss_top_r, bound_rank, bound_eps, bound_violation
  (the loss's own bound, a self-check), error_sq, eps_bound, eps_bound_top_r, eps_bound_violation
  (claim A3's bound on the squared L2 error from the eps-rank's own Gram matrix), elapsed_s, and
  train_s / train_cpu_s: wall seconds / CPU seconds of the training thread spent optimising
  (first-layer pre-training included, measurements excluded): the clocks of time-to-threshold
  comparisons (the CPU one is immune to other processes on a shared CPU; on a GPU use the wall one)
* ``ranks.parquet``   - tidy: (seed, step, layer, metric, eps, value) for the eps-rank at every
  eps and the peer metrics (effective, stable, numerical rank) of every hidden layer
* ``spectra.npz``     - ``steps``, ``seeds`` and ``layer<l>`` arrays (seed, step, n) of the sorted
  Gram eigenvalues, so any eps or metric can be recomputed without retraining
* ``run.json``        - resolved config, provenance, wall time, per-seed status (ok / diverged), and
  the CPU seconds of training and of the measurements by part (``MeasureClock``)

How to read it: :class:`Trainer` builds the job (task, model, method, the points it measures on),
``Trainer.train`` is the loop (for each step: measure when scheduled, step, checkpoint) and
``Trainer.write_outputs`` writes the results (:mod:`staircase.records.writer`). The speed features
(fused optimiser steps, CUDA graphs, allocator tuning, the measurement's shared forward pass, the
measurement clocks) live in :mod:`staircase.training.speed`, enabled by one call from the config;
each leaves every recorded series as the plain loop's.

A checkpoint is written every ``train.checkpoint_every`` steps to ``checkpoint_dir`` (outside the
workflow's declared outputs, which Snakemake deletes before re-running a job); a restarted job
resumes from it, and on the CPU finishes with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from staircase.core import rank as rk
from staircase.core.bounds import eps_bounds_from_features, loss_lower_bounds
from staircase.errors import ConfigError
from staircase.networks.architectures import build_model
from staircase.problems import make_task
from staircase.records import writer as results
from staircase.records.provenance import atomic_write, exclusive, output_to
from staircase.training import budget, methods, speed
from staircase.training.clocks import timed
from staircase.training.recorder import Recorder

DEVICES = ("auto", "cpu", "cuda")  # the schema's device values


def choose_device(requested: str) -> str:
    """The torch device of a job: ``auto`` is cuda when present, else cpu. A device that this
    machine lacks (or does not know) is a ConfigError, raised before any training."""
    if requested not in DEVICES:
        raise ConfigError(f"device: {requested!r} is not a device; choose one of {list(DEVICES)}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but this machine has no CUDA device; use cpu or auto")
    return requested


def config_hash(cfg: dict) -> str:
    """Identifies the run a checkpoint belongs to (device excluded: it does not change the run)."""
    keep = {k: v for k, v in cfg.items() if k != "device"}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


class Trainer:
    """One job: every seed of one variant, stacked in one model. ``speed``: the speed features
    (:class:`staircase.training.speed.Speed`; default: the config's)."""

    def __init__(
        self,
        cfg: dict,
        out_dir: Path,
        checkpoint_dir: Path | None = None,
        progress: bool = True,
        speed_features: speed.Speed | None = None,
    ):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.checkpoint_path = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir else None
        self.progress = progress
        self.name = f"{cfg['experiment']}/{cfg['variant']}"
        self.device = choose_device(cfg.get("device", "auto"))
        self.threads = int(cfg["train"].get("threads", cfg.get("threads", 1)))  # the schema's train.threads
        torch.set_num_threads(self.threads)
        self.speed = speed.enable(cfg, self.device, speed_features)
        dtype = torch.float64 if cfg["train"].get("dtype", "float32") == "float64" else torch.float32
        task_params = dict(cfg["task"])
        self.task = make_task(task_params.pop("name"), **task_params)
        self.model = build_model(cfg["model"], cfg["seeds"], self.task.d, self.task.bounds, dtype).to(self.device)
        self.opt = methods.make_method(self.model, cfg["train"], self.speed.fast_optimizer_step)
        self.data = self.task.train_data(self.device, dtype)
        self._set_up_batches(cfg["train"].get("batch_size"), cfg["seeds"])
        self._set_up_measurement_points(cfg["rank"]["normalisation"], dtype)
        self.eps = [float(e) for e in cfg["rank"]["eps"]]
        self.main_eps = float(cfg["rank"]["main_eps"])
        # with a budget by progress, log-spaced beyond train.steps
        self.log_steps = budget.measure_steps(cfg["train"], cfg["log"])
        # the state of the run: everything a checkpoint keeps
        self.rec = Recorder()
        self.step = 0
        self.elapsed = 0.0
        self.train_clock = np.zeros(2)  # wall and CPU seconds spent optimising (not measuring)
        self.measure_clock = self.speed.new_measure_clock()  # CPU seconds spent measuring, by part
        self.pretrain_info: dict | None = None
        self.diverged_at = np.full(len(cfg["seeds"]), -1)  # first log step with a non-finite loss
        self.bound_eps = float("nan")
        self.run_step = self.train_step  # what the loop calls once per step (train() may wrap it)

    def _set_up_batches(self, batch_size: int | None, seeds) -> None:
        """train.batch_size: each seed draws its own mini-batch per step (staircase.training.methods,
        "Mini-batches"); None: every step sees every point."""
        self.batch_size = batch_size
        self.batch_gens = []
        if batch_size is None:
            return
        self.batch_points = self.task.batch_points(self.data)
        if not 1 <= batch_size <= self.batch_points:
            raise ValueError(
                f"train.batch_size: {batch_size} is not between 1 and the {self.batch_points} points "
                "a batch is drawn from"
            )
        self.batch_gens = [methods.batch_generator(s) for s in seeds]

    def _set_up_measurement_points(self, normalisation: str, dtype: torch.dtype) -> None:
        """The rank quadrature (points, weights, the exact solution there: claim A3) and the error
        points. They go through the network in one forward pass, each distinct point once (a
        task's error grid often contains its rank grid): ``eval_x``, indexed by ``rank_index``
        and ``err_index``."""
        xr, self.rank_w = self.task.rank_points()
        self.rank_f = self.task.exact(xr)
        if normalisation == "mean":
            self.rank_w = np.full(len(xr), 1.0 / len(xr))
        self.rank_x = torch.as_tensor(xr, device=self.device, dtype=dtype)
        xe = self.task.error_points()
        self.err_x = torch.as_tensor(xe, device=self.device, dtype=dtype)
        self.err_f = torch.as_tensor(self.task.exact(xe), device=self.device, dtype=torch.float64)
        points, index = np.unique(np.concatenate([xr, xe]), axis=0, return_inverse=True)
        self.eval_x = torch.as_tensor(points, device=self.device, dtype=dtype)
        index = torch.as_tensor(index.reshape(-1), device=self.device)
        self.rank_index, self.err_index = index[: len(xr)], index[len(xr) :]

    # ---- the loop -----------------------------------------------------------------------------
    def train(self) -> None:
        """Pre-train (once, if configured), then step every model to ``train.steps``, measuring at
        the log steps and checkpointing every ``train.checkpoint_every`` steps; stop early once
        every seed diverged, or (``train.until_loss_factor``, :mod:`staircase.training.budget`) from
        ``train.steps`` on once every seed's loss fell by the factor, at most to ``train.max_steps``.
        A checkpoint of this job resumes where it was written."""
        self.run_step = self._step_runner()
        resumed = self.try_resume()
        steps = budget.cap(self.cfg["train"])
        every = int(self.cfg["train"].get("checkpoint_every", 0))
        log_set = set(int(s) for s in self.log_steps)
        bar = self._progress_bar(steps)
        # numpy's BLAS/LAPACK on the job's threads too: with its default pool of one thread per core,
        # the small eigen/least-squares problems of a measurement ran up to 30x slower on a shared
        # 2-core machine (threads spin while the other job holds the other core)
        limits = threadpool_limits(limits=self.threads, user_api="blas")
        t0 = time.perf_counter() - self.elapsed
        if not resumed and (self.cfg["train"].get("pretrain") or {}).get("steps", 0) > 0:
            self.pretrain()
            self.elapsed = time.perf_counter() - t0
        if (not resumed or self.step not in self.rec.steps) and self.step in log_set:
            self.measure()
        while self.step < steps and (self.diverged_at < 0).any():
            # the steps up to the next measurement or checkpoint as one timed block: reading the
            # clocks and keeping the books after every step cost 2-3 % of a small model's training
            stop = self._next_stop(steps, every)
            with timed(self.train_clock):
                for _ in range(stop - self.step):
                    self.run_step()
            bar.update(stop - self.step)
            self.step = stop
            self.elapsed = time.perf_counter() - t0
            if self.step in log_set:
                self.measure()
                if self._trained_to_factor():
                    break
            if every and self.step % every == 0 and self.step < steps:
                self.save_checkpoint()
        bar.close()
        self.elapsed = time.perf_counter() - t0
        limits.restore_original_limits()

    def _trained_to_factor(self) -> bool:
        """With a budget by progress: past ``train.steps``, has every live seed's loss fallen by the factor?"""
        loss_factor = budget.factor(self.cfg["train"])
        if loss_factor is None or self.step < self.cfg["train"]["steps"]:
            return False
        losses = self.rec.scalars["loss"]
        return budget.reached(losses[0], losses[-1], self.diverged_at < 0, loss_factor)

    def train_step(self) -> None:
        """One training step of every model (``Method.step``)."""
        self.opt.step(self._loss)

    def _loss(self) -> torch.Tensor:
        """The per-model training loss of one step: on every point, or on each seed's own
        mini-batch (one draw per call: first-order methods call it once per step)."""
        if not self.batch_gens:
            return self.task.loss(self.model, self.data)
        index = methods.draw_batches(self.batch_gens, self.batch_points, self.batch_size).to(self.device)
        return self.task.loss(self.model, self.task.minibatch(self.data, index))

    def _step_runner(self):
        """``train_step``, or (``cuda_graph``) its CUDA graph where one replays every step exactly."""
        if not self.speed.cuda_graph:
            return self.train_step
        if not self.opt.graph_safe or self.batch_gens:
            print(
                f"staircase: {self.name}: train.cuda_graph needs adam, adamw or sgd without a schedule "
                "and without mini-batches; training eagerly",
                file=sys.stderr,
            )
            return self.train_step
        return speed.CudaGraphStep(self.train_step, on_replay=self.opt.count_replayed_step)

    def _next_stop(self, steps: int, every: int) -> int:
        """The first step after the current one that is measured or checkpointed (or the last)."""
        later = self.log_steps[self.log_steps > self.step]
        stop = int(later[0]) if len(later) else steps
        if every:
            stop = min(stop, (self.step // every + 1) * every)
        return min(stop, steps)

    def _progress_bar(self, steps: int) -> tqdm:
        return tqdm(
            total=steps,
            initial=self.step,
            desc=self.name,
            disable=not self.progress,
            mininterval=5.0,
            file=sys.stderr,
            unit="step",
        )

    def check_start(self) -> None:
        """Stop before any training (ConfigError) when a model's loss is not finite at its
        initialisation: no step has been taken, so it is no divergence but values that overflow
        the training dtype (huge amplitudes or boundary weight), not a result to report."""
        with torch.no_grad():
            loss = self.task.loss(self.model, self.data).to(torch.float64).cpu().numpy()
        bad = np.flatnonzero(~np.isfinite(loss))
        if len(bad):
            where = f"experiments.{self.cfg['experiment']}" + (
                "" if self.cfg["variant"] == "base" else f" (variant {self.cfg['variant']})"
            )
            seeds = ", ".join(str(self.cfg["seeds"][s]) for s in bad)
            raise ConfigError(
                f"{where}.task: the loss is {loss[bad[0]]} before any training step (seed {seeds}): the task's values "
                f"overflow {self.cfg['train'].get('dtype', 'float32')}; make the amplitudes, frequencies or "
                "boundary_weight smaller, or train in float64"
            )

    def pretrain(self) -> None:
        """First-layer pre-training (staircase.training.methods.pretrain_first_layer), before step 0."""
        before = self._layer_ranks()
        info = methods.pretrain_first_layer(self.model, self.rank_x, self.rank_w, self.cfg["train"]["pretrain"])
        self.train_clock += (info["wall_s"], info["cpu_s"])
        info.update(eps=self.main_eps, eps_rank_before=before, eps_rank_after=self._layer_ranks())
        self.pretrain_info = info

    @torch.no_grad()
    def _layer_ranks(self) -> list[list[int]]:
        """eps-rank at the main eps of every hidden layer (outer list) and model (inner)."""
        _, hidden = self.model(self.rank_x, return_hidden=True)
        return [rk.eps_rank_from_spectrum(rk.spectrum(h, self.rank_w), self.main_eps).tolist() for h in hidden]

    # ---- measurement -------------------------------------------------------------------------
    @torch.no_grad()
    def measure(self) -> None:
        """Record the models as they are now: the loss, the error, every hidden layer's Gram
        spectrum, both bounds and the clocks (module docstring, ``metrics.parquet``)."""
        clock = self.measure_clock
        clock.start()
        model = self.speed.measured_model(self.model)  # the loss and the bound system may share a forward pass
        loss = self.task.loss(model, self.data).to(torch.float64).cpu().numpy()
        clock.lap("loss")
        self._note_divergence(loss)
        ok = self.diverged_at < 0
        out, hidden = self.model(self.eval_x, return_hidden=True)
        u_err = out[:, self.err_index, 0].to(torch.float64)
        rel = torch.linalg.vector_norm(u_err - self.err_f, dim=-1) / torch.linalg.vector_norm(self.err_f)
        clock.lap("forward")
        spectra, last_eigh = self._spectra(hidden, ok)
        clock.lap("spectra")
        bound = self._loss_bound(model, ok)
        eps_bound = self._eps_bound(hidden[-1], ok, last_eigh)
        clock.lap("bound")
        clocks = (np.full(len(ok), t) for t in (self.elapsed, *self.train_clock))
        self.rec.add(self.step, (loss, rel.cpu().numpy(), *bound, *eps_bound, *clocks), spectra, ok)
        clock.stop()

    def _note_divergence(self, loss: np.ndarray) -> None:
        """Mark the seeds whose loss just became non-finite as diverged at this step."""
        newly = (self.diverged_at < 0) & ~np.isfinite(loss)
        for s in np.flatnonzero(newly):
            # the step is that of the first measurement with a non-finite loss; the previous one was finite
            since = f" (finite at step {self.rec.steps[-1]})" if self.rec.steps else ""
            print(
                f"staircase: {self.name} seed {self.cfg['seeds'][s]} diverged: loss is {loss[s]} at step {self.step}"
                f"{since}; recorded as diverged, its later measurements are NaN",
                file=sys.stderr,
            )
            self.diverged_at[s] = self.step

    def _spectra(self, hidden, ok: np.ndarray) -> tuple[list[np.ndarray], tuple | None]:
        """Per hidden layer, the (S, n) sorted Gram eigenvalues on the rank quadrature (NaN for the
        seeds not ``ok``); and the last layer's eigendecomposition (claim A3's bound uses it)."""
        spectra, last_eigh = [], None
        live = np.flatnonzero(ok)
        for layer, h in enumerate(hidden):
            spec = np.full((len(ok), h.shape[-1]), np.nan)
            if len(live):
                rows = h if ok.all() else h[torch.as_tensor(ok, device=h.device)]
                gram = rk.gram(rows[:, self.rank_index], self.rank_w)
                if layer == len(hidden) - 1:
                    last_eigh = np.linalg.eigh(gram)
                    spec[live] = last_eigh[0][..., ::-1]
                else:
                    spec[live] = rk.spectrum_of_gram(gram)
            spectra.append(spec)
        return spectra, last_eigh

    def _loss_bound(self, model, ok: np.ndarray) -> np.ndarray:
        """(5, S): the training loss's lower bound, best loss, best top-r loss, rank, violation."""
        bs = self.task.bound_system(model, self.data)
        # the bound's eps in the loss's quadrature: Gram eigenvalues scale with the total weight
        self.bound_eps = self.main_eps * float(np.sum(bs.weights)) / float(np.sum(self.rank_w))
        bound = np.full((5, len(ok)), np.nan)
        live = np.flatnonzero(ok)
        if len(live):
            found = loss_lower_bounds(bs.features[live], bs.target, bs.coef[live], bs.weights, self.bound_eps)
            for s, r in zip(live, found):
                bound[:, s] = (r.lower_bound, r.best_loss, r.best_loss_top_r, r.rank, r.violated)
        return bound

    def _eps_bound(self, last_hidden, ok: np.ndarray, last_eigh) -> np.ndarray:
        """(4, S): claim A3's bound, built on the eps-rank's own Gram matrix: the last hidden layer on
        the rank quadrature at the main eps (its eigendecomposition, from the spectra). With the
        output u = b + sum_j a_j phi_j it bounds the squared L2 error sum_k w_k (u - u*)^2 from below
        by (dist(u* - b, V_r) - sqrt(eps) ||a||)_+^2, V_r spanned by the Gram eigen-directions above
        eps, so r is the eps-rank itself. The error is recomputed in float64 from the same features."""
        eps_bound = np.full((4, len(ok)), np.nan)
        live = np.flatnonzero(ok)
        if not len(live):
            return eps_bound
        pick = torch.as_tensor(live, device=last_hidden.device)
        coef = self.model.output_coefficients().detach().to(torch.float64).cpu().numpy()[live]
        phi = last_hidden[pick][:, self.rank_index].to(torch.float64).cpu().numpy()
        values, vectors = last_eigh
        found = eps_bounds_from_features(values, vectors, phi, coef, self.rank_f, self.rank_w, self.main_eps)
        for s, r in zip(live, found):
            eps_bound[:, s] = (r.loss, r.lower_bound, r.best_loss_top_r, r.violated)
        return eps_bound

    # ---- checkpointing ------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None:
            return
        state = {
            "config_hash": config_hash(self.cfg),
            "step": self.step,
            "elapsed": self.elapsed,
            "train_clock": self.train_clock,
            "pretrain": self.pretrain_info,
            "diverged_at": self.diverged_at,
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "recorder": self.rec.state(),
            "measure_clock": self.measure_clock.state(),
            "batch_rng": [g.get_state() for g in self.batch_gens],  # the next mini-batches
        }
        atomic_write(self.checkpoint_path, lambda tmp: torch.save(state, tmp))

    def try_resume(self) -> bool:
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return False
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        if state["config_hash"] != config_hash(self.cfg):
            print(f"staircase: {self.name}: ignoring checkpoint of a different configuration", file=sys.stderr)
            return False
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.rec.load(state["recorder"])
        self.step, self.elapsed, self.diverged_at = state["step"], state["elapsed"], state["diverged_at"]
        self.train_clock, self.pretrain_info = state["train_clock"], state["pretrain"]
        if "measure_clock" in state:  # checkpoints written before it was recorded lack it
            self.measure_clock.load(state["measure_clock"])
        for gen, rng in zip(self.batch_gens, state.get("batch_rng") or []):
            gen.set_state(rng)
        print(f"staircase: {self.name}: resumed from checkpoint at step {self.step}", file=sys.stderr)
        return True

    # ---- outputs ------------------------------------------------------------------------------
    def main_ranks(self) -> np.ndarray:
        """(seeds, measurements): the eps-rank of the last hidden layer at the main eps, NaN once
        a seed diverged (its spectra are NaN)."""
        return results.main_ranks(self.rec.spectra, self.main_eps)

    def write_outputs(self) -> None:
        results.write_results(  # the format the tracker writes too (staircase.records.writer)
            self.out_dir,
            self.rec,
            self.measure_clock,
            config=self.cfg,
            seeds=self.cfg["seeds"],
            depth=self.model.depth,
            eps=self.eps,
            main_eps=self.main_eps,
            bound_eps=self.bound_eps,
            normalisation=self.cfg["rank"]["normalisation"],
            train_clock=self.train_clock,
            diverged_at=self.diverged_at,
            steps_done=self.step,
            elapsed=self.elapsed,
            device=self.device,
            pretrain=self.pretrain_info,
        )
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            os.unlink(self.checkpoint_path)


def run(cfg: dict, out_dir, checkpoint_dir=None, progress: bool = True, log=None) -> Path:
    """Train one variant and write its outputs. Before anything is written, the job is built and
    its initial loss checked (``Trainer.check_start``); then it takes the lock of its checkpoint
    folder, so that a second process on the same job (an orphan of a killed Snakemake still
    running) stops at once, and only then opens ``log`` (when given), so that the second process
    never overwrites the running one's log. After success the checkpoint, the lock and the
    emptied checkpoint folder are removed."""
    trainer = Trainer(cfg, out_dir, checkpoint_dir, progress)
    trainer.check_start()
    name = trainer.name
    lock = exclusive(Path(checkpoint_dir) / "lock", f"training {name}", remove=True) if checkpoint_dir else None
    with lock or contextlib.nullcontext(), output_to(log):
        trainer.train()
        trainer.write_outputs()
        status = json.loads((Path(out_dir) / "run.json").read_text())["status"]
        bad = [f"seed {s}: {st}" for s, st in status.items() if st != "ok"]
        summary = f"{name}: {len(cfg['seeds'])} seed(s), {trainer.step} steps in {trainer.elapsed:.1f}s"
        if trainer.step < cfg["train"]["steps"]:
            summary += f" (stopped before step {cfg['train']['steps']}: every seed diverged)"
        elif budget.factor(cfg["train"]) is not None:
            done = "fell" if trainer._trained_to_factor() else "did NOT fall (not trained)"
            summary += f" (budget by progress: the loss {done} by x{budget.factor(cfg['train']):g})"
        print(f"staircase: {summary}; results in {out_dir}" + (f" ({'; '.join(bad)})" if bad else ""), file=sys.stderr)
    if checkpoint_dir:
        with contextlib.suppress(OSError):  # only if empty: another run may have started in it meanwhile
            os.rmdir(checkpoint_dir)
    return Path(out_dir)


__all__ = ["Trainer", "choose_device", "config_hash", "run"]
