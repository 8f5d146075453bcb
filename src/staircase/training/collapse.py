"""Paper B (Neural Rank Collapse, arXiv 2402.03991): weight decay and within-class variability.

One study = one job: a grid of weight-decay values lambda (x noise levels of a Gaussian mixture) x
seeds, every cell a bias-free ReLU MLP, all stacked along the model axis and trained together
(the total loss is the sum of the cells' objectives, so each cell's trajectory is that of training
it alone). A study too long for one job trains one lambda x noise cell per job instead (``part``,
its seeds stacked; cell numbers stay the study's) and staircase.training.collapse_parts merges them.
Objective of a cell, with the mean cross-entropy over the N training points:

    J(W) = (1/N) sum_i CE(f(x_i), y_i) + (lambda/2) sum_l ||W_l||_F^2

trained by full-batch SGD with momentum (torch.optim.SGD) on the gradient of J itself: *coupled*
L2, the objective whose stationary points the paper's bound describes (not AdamW's decoupled decay).

The bound (claim B3). With Delta_l the back-propagated error at layer l's pre-activations (n_l x N,
per sample, not divided by N) and X_{l-1} the layer's input, grad_{W_l} J = (1/N) Delta_l X_{l-1}^T +
lambda W_l, so W_l = (grad - (1/N) Delta_l X^T) / lambda. Replacing X by M (each column the mean of
its class, rank <= K) leaves a matrix of rank <= K, hence

    dist_K(W_l) <= (1/(lambda N)) ||Delta_l||_2 ||X_{l-1} - M_{l-1}||_F + ||grad_{W_l} J||_F / lambda.

It holds at every point (not only stationary ones) and is checked at every checkpoint in float64;
near a stationary point the second term vanishes and the first, the within-class variability of the
layer's input, controls the distance to rank K.

Metrics are measured in float64 (weights cast, forward and backward recomputed) whatever the training
dtype. Outputs, written atomically in ``out_dir``:

* ``metrics.parquet`` - one row per (cell, step): ``cell, weight_decay, noise, seed, step, loss``
  (mean cross-entropy), ``objective`` (J), ``train_accuracy``, ``weight_norm`` (sqrt sum_l ||W_l||^2),
  ``stationarity_max`` (max over layers of ``stationarity``), ``elapsed_s``
* ``layers.parquet`` - one row per (cell, step, layer), layer = 1..L (L = depth + 1; the last is the
  output layer, ``is_output``, whose rank is <= K trivially): ``fan_in, fan_out, fro`` (||W||_F),
  ``sigma1``; ``dist_k`` = sqrt(sum_{j>K} s_j^2), ``dist_k_rel`` = dist_k / ||W||_F; ``numerical_rank``
  (s_j > metrics.numerical_rank_rtol * s_1), ``stable_rank``, ``effective_rank``; of the layer's input
  X_{l-1}: ``within_class`` (||X - M||_F), ``within_class_rel`` (/ ||X||_F), ``nc1``
  (tr(Sigma_W Sigma_B^+)/K); ``delta_norm2`` (||Delta_l||_2), ``grad_norm`` (||grad_{W_l} J||_F),
  ``stationarity`` = grad_norm / (lambda ||W_l||_F); ``bound_within`` (first term), ``bound_grad``
  (second), ``bound_rhs`` (their sum), ``bound_violation`` (dist_k > bound_rhs beyond rounding),
  ``bound_rhs_tight`` (the same with ||Delta_l (X - M)^T||_F / (lambda N), the step of the proof
  before ||AB||_F <= ||A||_2 ||B||_F, as first term: also an upper bound, never looser); and at
  the final step only ``stationarity_avg``: the same ratio for the gradient of J averaged over the last
  ``train.stationarity_window`` steps. (With lambda = 0 the ratios and the bound are NaN.)
* ``claims_inputs.parquet`` - the final step of ``layers`` joined with the cell's ``train_accuracy``,
  ``loss``, ``stationarity_avg_max`` (max over layers), ``stationarity_max`` and
  ``bound_violations_all_steps`` (violations of that cell and layer over every checkpoint): what the
  B1-B3 verdicts need (``staircase.claims.lowrank``), without retraining.
* ``spectra.npz`` - ``steps``, ``weight_decay``, ``noise``, ``seed`` (per cell) and ``layer<l>``
  (cell, step, min(n_l, n_{l-1})): the singular values of every layer at every checkpoint.
* ``run.json`` - resolved config, classes K, cells, per-cell status (ok / diverged), provenance, wall time;
  a part's also ``part`` (K), a merged study's ``parts`` (each part's wall time, host, commit).
* ``manifest.json`` - written last: every file's sha256, size and shape and the study's identity;
  the readers verify the folder against it (docs/results-format.md)

Why the averaged stationarity: at a minimum of a ReLU network some pre-activations sit on the kink,
where J is not differentiable; full-batch iterates then hover around the (Clarke-)stationary point and
the gradient at the iterate keeps a part that flips sign from step to step. Its average over a window
is what measures whether the weights have stopped moving; the pointwise gradient is what the bound
uses. Both are recorded.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from staircase.core import linalg
from staircase.networks.bias_free import BiasFreeNet
from staircase.problems import datasets as datamod
from staircase.training.weights_run import WeightsRun, checkpoints

VIOLATION_RTOL = 1e-9
# the row order of each table: a study's parts (staircase.training.collapse_parts) merge to the same
TABLE_ORDER = {"metrics": ["cell", "step"], "layers": ["cell", "step", "layer"], "claims_inputs": ["cell", "layer"]}


def in_table_order(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(TABLE_ORDER[name], kind="stable").reset_index(drop=True)


def load_data(cfg: dict) -> tuple[np.ndarray, np.ndarray, list]:
    """x (N, d) or (levels, N, d), labels y (N,), and the noise levels ([None] for digits)."""
    d = cfg["data"]
    params = datamod.data_params(cfg)
    if d["name"] == "digits":
        x, y = datamod.digits(**params)
        if d.get("rms_norm") is not None:
            x = datamod.centre_and_scale(x, d["rms_norm"])
        return x, y, [None]
    levels = [float(v) for v in np.atleast_1d(params.pop("noise"))]
    x, y = datamod.gaussian_mixture(noise=levels, **params)
    return x, y, levels


def grid_cells(cfg: dict) -> int:
    """How many lambda x noise cells a resolved study has (each trains all its seeds): its parts."""
    noise = cfg["data"].get("noise")
    return len(cfg["weight_decay"]) * (1 if noise is None else len(np.atleast_1d(noise)))


def _inverse(lam: np.ndarray) -> np.ndarray:
    lam = np.asarray(lam, dtype=np.float64)
    return np.divide(1.0, lam, out=np.full_like(lam, np.nan), where=lam > 0)


def layer_terms(mat, grad_data, delta, x_in, y, classes: int, lam, rtol: float) -> dict[str, np.ndarray]:
    """Every per-layer quantity of paper B for a stack of S models (numpy, float64).

    mat: W_l (S, n_l, n_{l-1}); grad_data: the gradient of the mean cross-entropy with respect to
    W_l, (1/N) Delta_l X_{l-1}^T, same shape; delta: Delta_l^T (S, N, n_l), per sample; x_in: X_{l-1}^T
    (S, N, n_{l-1}); y: labels (N,); lam: (S,) weight decay. The bound and the stationarity ratio
    are NaN where lambda = 0. Returns the columns of ``layers.parquet`` and ``singular_values``.
    """
    lam = np.asarray(lam, dtype=np.float64)
    inv_lam = _inverse(lam)
    n = x_in.shape[-2]
    s_vals = linalg.singular_values(mat)
    fro = np.sqrt((s_vals**2).sum(axis=-1))
    grad_j = grad_data + lam[:, None, None] * mat  # coupled L2
    grad_norm = np.sqrt((grad_j**2).sum(axis=(1, 2)))
    delta_norm2 = np.linalg.norm(delta, ord=2, axis=(1, 2))
    wc = linalg.within_class(x_in, y, classes)
    dist = linalg.distance_to_rank(s_vals, classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        stationarity = grad_norm * inv_lam / fro
    bound_within = inv_lam / n * delta_norm2 * wc["within_class"]
    # the step before the operator-norm inequality: ||Delta_l (X - M)^T||_F / (lambda N)
    centred = x_in - linalg.class_means(x_in, y, classes)[:, y, :]
    product = np.einsum("snk,snj->skj", delta, centred)
    bound_within_tight = inv_lam / n * np.sqrt((product**2).sum(axis=(1, 2)))
    bound_grad = grad_norm * inv_lam
    rhs = bound_within + bound_grad
    violation = dist > rhs * (1 + VIOLATION_RTOL) + 1e-12
    return {
        "fro": fro,
        "sigma1": s_vals[:, 0],
        "dist_k": dist,
        "dist_k_rel": linalg.distance_to_rank(s_vals, classes, relative=True),
        **linalg.rank_metrics(s_vals, rtol),
        **wc,
        "delta_norm2": delta_norm2,
        "grad_norm": grad_norm,
        "stationarity": stationarity,
        "bound_within": bound_within,
        "bound_grad": bound_grad,
        "bound_rhs": rhs,
        "bound_violation": np.where(lam > 0, violation, False),
        "bound_rhs_tight": bound_within_tight + bound_grad,
        "singular_values": s_vals,
    }


class CollapseRun(WeightsRun):
    """One rank_collapse study: its grid of cells (lambda x noise x seed) stacked on the model axis."""

    family = "rank_collapse"

    def __init__(self, cfg: dict, out_dir, progress: bool = True, part: int | None = None):
        super().__init__(cfg, out_dir, progress)
        self.dtype = torch.float64 if cfg["train"].get("dtype", "float32") == "float64" else torch.float32
        x, y, levels = load_data(cfg)
        self.classes = datamod.class_count(y)
        grid = list(itertools.product(cfg["weight_decay"], range(len(levels)), cfg["seeds"]))
        self.cells = pd.DataFrame(
            {
                "cell": np.arange(len(grid)),
                "weight_decay": [float(g[0]) for g in grid],
                "noise": [np.nan if levels[g[1]] is None else float(levels[g[1]]) for g in grid],
                "seed": [int(g[2]) for g in grid],
            }
        )
        level_of = np.array([g[1] for g in grid])
        self.part = part
        if part is not None:  # one lambda x noise cell: its seeds are consecutive cells (seeds vary fastest)
            keep = slice(part * len(cfg["seeds"]), (part + 1) * len(cfg["seeds"]))
            self.cells, level_of = self.cells.iloc[keep].reset_index(drop=True), level_of[keep]
        x = np.asarray(x)
        x_cells = x[level_of] if x.ndim == 3 else x  # (S, N, d) or shared (N, d)
        self.x64 = torch.as_tensor(x_cells, dtype=torch.float64, device=self.device)
        self.x = self.x64.to(self.dtype)
        self.y_np = y
        self.y = torch.as_tensor(y, device=self.device)
        self.n = len(y)
        m = cfg["model"]
        sizes = [x.shape[-1]] + [m["width"]] * m["depth"] + [self.classes]
        relu = [True] * m["depth"] + [False]
        self.net = BiasFreeNet(
            self.cells["seed"], sizes, relu, init_scale=m.get("init_scale", 1.0), dtype=self.dtype
        ).to(self.device)
        self.lam = torch.tensor(self.cells["weight_decay"].to_numpy(), dtype=self.dtype, device=self.device)
        tr = cfg["train"]
        self.opt = torch.optim.SGD(self.net.parameters(), lr=tr["lr"], momentum=tr.get("momentum", 0.0))
        self.steps = int(tr["steps"])
        self.window = min(int(tr.get("stationarity_window", 100)), self.steps)
        self.log_steps = checkpoints(self.steps, cfg["log"]["checkpoints"])
        self.rtol = float(cfg.get("metrics", {}).get("numerical_rank_rtol", 1e-3))
        self.diverged_at = np.full(len(self.cells), -1)
        self.rows_cells: list[dict] = []
        self.rows_layers: list[pd.DataFrame] = []
        self.grad_sum = None

    # ---- the objective -------------------------------------------------------------------------
    def cross_entropy(self, out: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per model, (S,)."""
        s, n, k = out.shape
        ce = torch.nn.functional.cross_entropy(out.reshape(s * n, k), self.y.repeat(s), reduction="none")
        return ce.view(s, n).mean(dim=1)

    def train_step(self) -> None:
        self.opt.zero_grad(set_to_none=False)
        self.cross_entropy(self.net(self.x)).sum().backward()
        with torch.no_grad():
            for w in self.net.weights:
                w.grad.add_(self.lam[:, None, None] * w)  # coupled L2: the gradient of (lambda/2)||W||^2
            if self.steps - self.step <= self.window:
                if self.grad_sum is None:
                    self.grad_sum = [torch.zeros_like(w, dtype=torch.float64) for w in self.net.weights]
                for acc, w in zip(self.grad_sum, self.net.weights):
                    acc += w.grad.to(torch.float64)
        self.opt.step()

    # ---- measurement ---------------------------------------------------------------------------
    def measure(self) -> None:
        w64 = [w.detach().to(torch.float64).requires_grad_(True) for w in self.net.weights]
        finite = torch.stack([torch.isfinite(w.detach()).flatten(1).all(dim=1) for w in w64]).all(dim=0).cpu().numpy()
        out, inputs, pre = self._forward64(w64)
        ce = self.cross_entropy(out)
        grads = torch.autograd.grad(ce.sum(), w64 + pre)
        ce_np = ce.detach().cpu().numpy()
        ok = self._record_divergence(finite & np.isfinite(ce_np))
        lam = self.cells["weight_decay"].to_numpy().copy()
        acc = (out.detach().argmax(dim=-1) == self.y).to(torch.float64).mean(dim=1).cpu().numpy()
        n_layers = self.net.n_layers
        layer_frames, spectra, stat_all, sq_norm = [], [], [], np.zeros(len(self.cells))
        for l in range(n_layers):
            # grads[n_layers + l]: the loss's gradient in layer l's pre-activation
            df, s_vals, fro, stationarity = self._layer_frame(
                l, w64[l], grads[l], grads[n_layers + l], inputs[l], ok, lam
            )
            sq_norm += fro**2
            layer_frames.append(df)
            spectra.append(s_vals)
            stat_all.append(stationarity)
        objective = ce_np + 0.5 * lam * sq_norm
        self.rows_cells.append(
            {
                "step": self.step,
                "loss": np.where(ok, ce_np, np.nan),
                "objective": np.where(ok, objective, np.nan),
                "train_accuracy": np.where(ok, acc, np.nan),
                "weight_norm": np.where(ok, np.sqrt(sq_norm), np.nan),
                "stationarity_max": np.where(ok, np.max(stat_all, axis=0), np.nan),
                "elapsed_s": self.elapsed,
            }
        )
        self.rows_layers.append(pd.concat(layer_frames, ignore_index=True))
        self.spectra.append(spectra)

    def _record_divergence(self, healthy: np.ndarray) -> np.ndarray:
        """Mark the cells not ``healthy`` now (and not before) as diverged at this step; the cells still alive."""
        newly = (self.diverged_at < 0) & ~healthy
        for s in np.flatnonzero(newly):
            self.diverged_at[s] = self.step
            cell = self.cells["cell"].iloc[s]
            print(
                f"staircase: {self.name} cell {cell} diverged at step {self.step}; recorded as diverged",
                file=sys.stderr,
            )
        return self.diverged_at < 0

    def _layer_frame(self, l, w64, grad_w, grad_pre, inputs, ok, lam):
        """Layer l's row per cell (diverged cells NaN), its singular values, Frobenius norms and stationarity."""
        n_layers = self.net.n_layers
        w = w64.detach()  # (S, fan_in, fan_out) = W_l^T
        mask = ok[:, None, None]
        mat = np.where(mask, w.transpose(1, 2).cpu().numpy(), 0.0)
        terms = layer_terms(
            mat,
            np.where(mask, grad_w.transpose(1, 2).cpu().numpy(), 0.0),
            np.where(mask, (grad_pre * self.n).cpu().numpy(), 0.0),  # Delta_l^T (S, N, n_l)
            np.where(mask, inputs.detach().cpu().numpy(), 0.0),
            self.y_np,
            self.classes,
            lam,
            self.rtol,
        )
        s_vals = terms.pop("singular_values")
        fro, stationarity = terms["fro"], terms["stationarity"]
        frame = {
            "cell": self.cells["cell"].to_numpy(),
            "step": self.step,
            "layer": l + 1,
            "is_output": l == n_layers - 1,
            "fan_in": mat.shape[2],
            "fan_out": mat.shape[1],
            **terms,
            "stationarity_avg": np.nan,
        }
        if self.step == self.steps and self.grad_sum is not None:
            mean_grad = (self.grad_sum[l] / self.window).cpu().numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                frame["stationarity_avg"] = np.sqrt((mean_grad**2).sum(axis=(1, 2))) * _inverse(lam) / fro
        df = pd.DataFrame(frame)
        keep = ("cell", "step", "layer", "is_output", "fan_in", "fan_out", "bound_violation")
        df.loc[~ok, [c for c in df.columns if c not in keep]] = np.nan
        df.loc[~ok, "bound_violation"] = False
        return df, np.where(ok[:, None], s_vals, np.nan), fro, stationarity

    def _forward64(self, w64):
        """The network's forward pass with float64 copies of the weights, keeping inputs and pre-activations."""
        return self.net(self.x64, keep=True, weights=w64)

    # ---- outputs -------------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        cells = self.cells
        metrics = pd.concat(
            [cells.assign(**{k: v for k, v in row.items()}) for row in self.rows_cells], ignore_index=True
        )
        layers = pd.concat(self.rows_layers, ignore_index=True).merge(cells, on="cell")
        front = ["cell", "weight_decay", "noise", "seed", "step", "layer"]
        layers = layers[front + [c for c in layers.columns if c not in front]]
        final = layers[layers["step"] == self.steps].copy()
        violations = layers.groupby(["cell", "layer"])["bound_violation"].sum().rename("bound_violations_all_steps")
        last = metrics[metrics["step"] == self.steps].set_index("cell")
        claims = final.merge(violations.reset_index(), on=["cell", "layer"])
        claims = claims.merge(last[["loss", "train_accuracy", "stationarity_max"]].reset_index(), on="cell", how="left")
        claims["stationarity_avg_max"] = claims.groupby("cell")["stationarity_avg"].transform("max")
        claims["classes"] = self.classes
        claims["steps"] = self.steps
        diverged = dict(zip(self.cells["cell"], self.diverged_at >= 0))
        claims["diverged"] = claims["cell"].map(lambda c: bool(diverged[c]))
        tables = dict(metrics=metrics, layers=layers, claims_inputs=claims)
        return {name: in_table_order(name, frame) for name, frame in tables.items()}

    def members(self):
        return self.cells["cell"]

    def member_arrays(self) -> dict[str, np.ndarray]:
        return {
            "weight_decay": self.cells["weight_decay"].to_numpy(),
            "noise": self.cells["noise"].to_numpy(),
            "seed": self.cells["seed"].to_numpy(),
        }

    def record(self) -> dict:
        part = {} if self.part is None else {"part": self.part}
        return {
            "classes": self.classes,
            "train_points": self.n,
            "cells": self.cells.to_dict(orient="list"),
            "seeds": [int(s) for s in self.cfg["seeds"]],
            **part,
        }

    def summary(self, out_dir) -> str:
        bad = int((self.diverged_at >= 0).sum())
        part = "" if self.part is None else f" part {self.part}"
        return (
            f"staircase: {self.name}{part}: {len(self.cells)} cells (lambda x noise x seed), {self.step} steps in "
            f"{self.elapsed:.1f}s; results in {out_dir}" + (f" ({bad} cell(s) diverged)" if bad else "")
        )


def run(cfg: dict, out_dir, progress: bool = True, part: int | None = None) -> Path:
    """Train one rank_collapse study (its resolved config) and write its results to ``out_dir``; with
    ``part``, only its lambda x noise cell number ``part`` (all seeds; staircase.training.collapse_parts)."""
    return CollapseRun.run(cfg, out_dir, progress, part=part)
