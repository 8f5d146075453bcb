"""Paper C (Le & Jegelka, arXiv 2201.11968): rank-1 alignment of ReLU networks on separable data.

One study = one job: the study's seeds stacked along the model axis, each a bias-free network of
``relu_layers`` ReLU layers followed by ``linear_layers`` linear layers (the last one the scalar
output), optionally with identity skips around the ReLU layers after the first (``model.skip``),
trained in float64 on a linearly separable binary set (labels +-1) with the exponential loss
exp(-z) or the logistic loss log(1 + exp(-z)) of the margins z_i = y_i f(x_i), averaged over the set.

Optimisers (``train.optimizer``):

* ``gd``            - plain gradient descent, theta <- theta - lr * grad L.
* ``normalized_gd`` - theta <- theta - lr * grad L / ||grad L|| (the norm over all of one model's
  weights): gradient flow reparametrised in time, so the same invariances and limits, reached far
  sooner (plain GD's weight norm grows like log t). The direction is computed from grad log L, which
  is exact and does not underflow when the loss is tiny.

The claims measured at every checkpoint (geometrically spaced, ``log.checkpoints``):

* C1 - sigma_1 / ||W||_F of every layer: tends to 1 for the linear layers after the last ReLU
  (the output layer, a row vector, is rank 1 trivially and is flagged ``trivially_rank1``).
* C2 - alignment of adjacent layers: |<u_1(W_k), v_1(W_{k+1})>| (``linalg.top_alignment``).
* C3 - the invariance D_k = W_{k+1}^T W_{k+1} - W_k W_k^T of adjacent layers: gradient flow keeps all
  of it when no ReLU sits between them (``kind`` linear, ``expected`` full), only its diagonal when
  one does (kind relu, expected diagonal: each ReLU neuron's incoming minus outgoing squared norm),
  and nothing when a skip connection feeds or leaves the ReLU (kind relu_skip, expected none).
  Drift = ||D_k(t) - D_k(0)|| relative to the pair's mean squared Frobenius norm at t, in full
  (Frobenius) and on the diagonal.

Outputs (written atomically in ``out_dir``):

* ``metrics.parquet`` - per (seed, step): ``log_loss`` (log of the mean loss), ``loss``,
  ``margin_min`` (min_i y_i f(x_i)), ``normalised_margin`` (margin_min / prod_k ||W_k||_F),
  ``train_accuracy``, ``param_norm``, ``elapsed_s``
* ``layers.parquet``  - per (seed, step, layer): ``kind`` (relu / linear), ``trivially_rank1``,
  ``fro``, ``sigma1``, ``sigma1_ratio``, ``stable_rank``, ``effective_rank``, ``numerical_rank``
* ``pairs.parquet``   - per (seed, step, pair) with pair = k for layers (k, k+1): ``kind``,
  ``expected``, ``alignment``, ``drift_full``, ``drift_diag``, ``scale``
* ``claims_inputs.parquet`` - long: ``claim, seed, item, kind, expected, trivially_rank1, metric,
  value`` - C1 sigma1_ratio and C2 alignment at the final step, C3 drift_full and drift_diag as the
  maximum over all checkpoints; what the verdicts (``staircase.claims.lowrank``) read
* ``spectra.npz``     - ``steps``, ``seeds``, ``layer<l>`` (seed, step, min dim) singular values
* ``run.json``        - resolved config, per-seed status, provenance, wall time
* ``manifest.json`` - written last: every file's sha256, size and shape and the study's identity;
  the readers verify the folder against it (docs/results-format.md)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from staircase.core import linalg
from staircase.networks.bias_free import BiasFreeNet
from staircase.problems import datasets as datamod
from staircase.training.weights_run import WeightsRun, checkpoints

LOSSES = ("exponential", "logistic")
OPTIMIZERS = ("gd", "normalized_gd")


def load_data(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """x (N, d), labels +-1. The digits are centred (a bias-free net needs it) and scaled to
    ``rms_norm``; the Gaussian set, separable through the origin, is only scaled (centring would move
    its separating hyperplane off the origin)."""
    d = cfg["data"]
    if d["name"] == "digits01":
        x, y = datamod.digits01()
        return (x if d.get("rms_norm") is None else datamod.centre_and_scale(x, d["rms_norm"])), y
    x, y = datamod.separable_gaussian(**datamod.data_params(cfg))
    if d.get("rms_norm") is not None:
        x = x * (d["rms_norm"] / np.sqrt((x**2).sum(axis=1).mean()))
    return x, y


def log_losses(z: torch.Tensor, loss: str) -> torch.Tensor:
    """log of the per-sample loss of margins z, computed without under- or overflow."""
    if loss == "exponential":
        return -z
    if loss == "logistic":
        # log softplus(-z): softplus(-z) ~ exp(-z) for large z, where log(softplus) would underflow
        # (both branches are evaluated: each gets clamped inputs so that neither makes NaN gradients)
        large = torch.clamp(z, min=30.0)
        small = torch.clamp(z, max=30.0)
        return torch.where(
            z > 30, -large + torch.log1p(-0.5 * torch.exp(-large)), torch.log(torch.nn.functional.softplus(-small))
        )
    raise ValueError(f"train.loss: unknown loss {loss!r}; choose one of {list(LOSSES)}")


def pair_kinds(net: BiasFreeNet) -> list[tuple[str, str]]:
    """(kind, expected invariance) of each adjacent pair of layers (k, k+1)."""
    out = []
    for k in range(net.n_layers - 1):
        if not net.relu[k]:
            out.append(("linear", "full"))
        elif net.residual[k] or net.residual[k + 1]:
            out.append(("relu_skip", "none"))
        else:
            out.append(("relu", "diagonal"))
    return out


class AlignmentRun(WeightsRun):
    """One alignment study: its seeds stacked on the model axis; stops once every seed diverged."""

    family = "alignment"

    def __init__(self, cfg: dict, out_dir, progress: bool = True):
        super().__init__(cfg, out_dir, progress)
        tr = cfg["train"]
        self.dtype = torch.float32 if tr.get("dtype", "float64") == "float32" else torch.float64
        if tr["loss"] not in LOSSES:
            raise ValueError(f"train.loss: unknown loss {tr['loss']!r}; choose one of {list(LOSSES)}")
        if tr["optimizer"] not in OPTIMIZERS:
            raise ValueError(
                f"train.optimizer: unknown optimizer {tr['optimizer']!r}; choose one of {list(OPTIMIZERS)}"
            )
        x, y = load_data(cfg)
        self.x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        self.y = torch.as_tensor(y, dtype=self.dtype, device=self.device)
        m = cfg["model"]
        n_layers = m["relu_layers"] + m["linear_layers"]
        sizes = [x.shape[1]] + [m["width"]] * (n_layers - 1) + [1]
        relu = [True] * m["relu_layers"] + [False] * m["linear_layers"]
        self.seeds = [int(s) for s in cfg["seeds"]]
        self.net = BiasFreeNet(
            self.seeds, sizes, relu, skip=m.get("skip", False), init_scale=m.get("init_scale", 1.0), dtype=self.dtype
        ).to(self.device)
        self.pairs = pair_kinds(self.net)
        self.steps = int(tr["steps"])
        self.lr = float(tr["lr"])
        self.log_steps = checkpoints(self.steps, cfg["log"]["checkpoints"])
        self.rtol = float(cfg.get("metrics", {}).get("numerical_rank_rtol", 1e-3))
        self.d0 = None
        self.diverged_at = np.full(len(self.seeds), -1)
        self.rows: dict[str, list] = {"metrics": [], "layers": [], "pairs": []}

    def log_loss(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(log of the mean loss per model (S,), margins (S, N))."""
        z = self.y * self.net(self.x)[..., 0]
        return torch.logsumexp(log_losses(z, self.cfg["train"]["loss"]), dim=1) - math.log(z.shape[1]), z

    def train_step(self) -> None:
        log_l, _ = self.log_loss()
        weights = list(self.net.weights)
        normalized = self.cfg["train"]["optimizer"] == "normalized_gd"
        target = log_l if normalized else torch.exp(log_l)
        grads = torch.autograd.grad(target.sum(), weights)
        with torch.no_grad():
            if normalized:
                norm = torch.sqrt(sum((g**2).sum(dim=(1, 2)) for g in grads))
                scale = torch.where(norm > 0, self.lr / norm, torch.zeros_like(norm))[:, None, None]
            else:
                scale = self.lr
            for w, g in zip(weights, grads):
                w.sub_(scale * g)

    @torch.no_grad()
    def measure(self) -> None:
        log_l, z = self.log_loss()
        log_l, z = log_l.to(torch.float64).cpu().numpy(), z.to(torch.float64).cpu().numpy()
        mats = [w.cpu().numpy().astype(np.float64) for w in self.net.matrices()]  # (S, n_out, n_in)
        finite = np.isfinite(log_l) & np.all([np.isfinite(m).all(axis=(1, 2)) for m in mats], axis=0)
        for s in np.flatnonzero((self.diverged_at < 0) & ~finite):
            self.diverged_at[s] = self.step
            print(f"staircase: {self.name} seed {self.seeds[s]} diverged at step {self.step}", file=sys.stderr)
        ok = self.diverged_at < 0
        mats = [np.where(ok[:, None, None], m, 0.0) for m in mats]
        sv = [linalg.singular_values(m) for m in mats]
        fro = [np.sqrt((s**2).sum(axis=-1)) for s in sv]
        nan = np.where(ok, 1.0, np.nan)  # multiplies every value of a diverged seed into NaN
        self.rows["metrics"].append(self._metrics_frame(log_l, z, fro, nan))
        for l, (m, s, f) in enumerate(zip(mats, sv, fro)):
            self.rows["layers"].append(self._layer_frame(l, m, s, f, nan))
        self._record_pairs(mats, fro, nan)
        self.spectra.append([np.where(ok[:, None], s, np.nan) for s in sv])

    def _metrics_frame(self, log_l, z, fro, nan) -> pd.DataFrame:
        """One row per seed: the loss, margins, accuracy and parameter norm."""
        margin = z.min(axis=1)
        prod = np.prod(fro, axis=0)
        return pd.DataFrame(
            {
                "seed": self.seeds,
                "step": self.step,
                "log_loss": log_l * nan,
                "loss": np.exp(log_l) * nan,
                "margin_min": margin * nan,
                "normalised_margin": np.divide(margin, prod, out=np.full_like(margin, np.nan), where=prod > 0) * nan,
                "train_accuracy": (z > 0).mean(axis=1) * nan,
                "param_norm": np.sqrt(np.sum([f**2 for f in fro], axis=0)) * nan,
                "elapsed_s": self.elapsed,
            }
        )

    def _layer_frame(self, l, m, s, f, nan) -> pd.DataFrame:
        """One row per seed for layer l: its norms and rank metrics from the singular values s."""
        return pd.DataFrame(
            {
                "seed": self.seeds,
                "step": self.step,
                "layer": l + 1,
                "kind": "relu" if self.net.relu[l] else "linear",
                "trivially_rank1": min(m.shape[1:]) == 1,
                "fro": f * nan,
                "sigma1": s[:, 0] * nan,
                "sigma1_ratio": np.divide(s[:, 0], f, out=np.full_like(f, np.nan), where=f > 0) * nan,
                **{k: v * nan for k, v in linalg.rank_metrics(s, self.rtol).items()},
            }
        )

    def _record_pairs(self, mats, fro, nan) -> None:
        """One row per seed and pair of consecutive layers: alignment and drift of the invariance
        (from its value at the first measurement)."""
        d_now = [linalg.invariance(mats[k], mats[k + 1]) for k in range(len(mats) - 1)]
        if self.d0 is None:
            self.d0 = d_now
        for k, (kind, expected) in enumerate(self.pairs):
            scale = 0.5 * (fro[k] ** 2 + fro[k + 1] ** 2)
            drift = linalg.invariance_drift(d_now[k], self.d0[k], np.where(scale > 0, scale, np.nan))
            self.rows["pairs"].append(
                pd.DataFrame(
                    {
                        "seed": self.seeds,
                        "step": self.step,
                        "pair": k + 1,
                        "layers": f"{k + 1}-{k + 2}",
                        "kind": kind,
                        "expected": expected,
                        "alignment": linalg.top_alignment(mats[k], mats[k + 1]) * nan,
                        "drift_full": drift["drift_full"] * nan,
                        "drift_diag": drift["drift_diag"] * nan,
                        "scale": scale * nan,
                    }
                )
            )

    def keep_training(self) -> bool:
        return bool((self.diverged_at < 0).any())

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {k: pd.concat(v, ignore_index=True) for k, v in self.rows.items()}
        layers, pairs = out["layers"], out["pairs"]
        last = layers["step"].max()
        c1 = layers[layers["step"] == last].assign(
            claim="C1", item=lambda d: "layer " + d["layer"].astype(str), expected="", metric="sigma1_ratio"
        )
        c1 = c1.rename(columns={"sigma1_ratio": "value"})
        c2 = pairs[pairs["step"] == last].assign(
            claim="C2", item=lambda d: "pair " + d["layers"], trivially_rank1=False, metric="alignment"
        )
        c2 = c2.rename(columns={"alignment": "value"})
        c3 = (
            pairs.groupby(["seed", "pair", "layers", "kind", "expected"])[["drift_full", "drift_diag"]]
            .max()
            .reset_index()
            .melt(id_vars=["seed", "pair", "layers", "kind", "expected"], var_name="metric", value_name="value")
            .assign(claim="C3", item=lambda d: "pair " + d["layers"], trivially_rank1=False)
        )
        cols = ["claim", "seed", "item", "kind", "expected", "trivially_rank1", "metric", "value"]
        out["claims_inputs"] = pd.concat([c1[cols], c2[cols], c3[cols]], ignore_index=True)
        return out

    def members(self):
        return self.seeds

    def member_arrays(self) -> dict[str, np.ndarray]:
        return {"seeds": np.asarray(self.seeds)}

    def record(self) -> dict:
        return {
            "seeds": self.seeds,
            "layer_kinds": ["relu" if r else "linear" for r in self.net.relu],
            "residual_layers": [l + 1 for l, r in enumerate(self.net.residual) if r],
            "train_points": int(self.x.shape[0]),
        }

    def summary(self, out_dir) -> str:
        bad = [f"seed {s}: diverged at step {d}" for s, d in zip(self.seeds, self.diverged_at) if d >= 0]
        return (
            f"staircase: {self.name}: {len(self.seeds)} seed(s), {self.step} steps in {self.elapsed:.1f}s; "
            f"results in {out_dir}" + (f" ({'; '.join(bad)})" if bad else "")
        )


def run(cfg: dict, out_dir, progress: bool = True) -> Path:
    """Train one alignment study (its resolved config) and write its results to ``out_dir``."""
    return AlignmentRun.run(cfg, out_dir, progress)
