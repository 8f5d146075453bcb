"""How many quadrature points the eps-ranks need, by an accuracy check rather than by habit.

The Gram matrix of a hidden layer is an integral, and the eps-rank counts its eigenvalues above eps:
a coarse rule moves eigenvalues, and any that sits near an eps flips the rank. So the check follows
a network through training and, at every measurement, counts the eps-ranks of every hidden layer at
every eps with each candidate rule and with a reference rule far finer than needed; a rule is good
enough when its eps-ranks are the reference's everywhere.

* :func:`rank_table` - eps-ranks (rules x checkpoints x layers x models x eps) of any hidden-feature
  function on named rules;
* :func:`agreement` - per candidate: the (checkpoint, layer, model, eps) cells where it differs from
  the reference, overall, per eps and where no eigenvalue lies at eps (within a relative margin:
  there no rule short of exact integration decides the count, :func:`near_eps`), and the smallest
  candidate that agrees (with all larger ones); :func:`eigenvalue_error`, the eigenvalues' error;
* :func:`check_experiment` - both on an experiment of config.yaml, trained by the pipeline's own
  trainer (``staircase rank-points``): candidates of the task's own rule family (its ``rank_rule``;
  ``--family`` another) against 3000-point Gauss-Legendre in 1-D, a 200 x 200
  Gauss-Legendre tensor rule in 2-D and 2^17 scrambled Sobol points beyond.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from staircase.core import quadrature
from staircase.core import rank as rk
from staircase.training.trainer import Trainer

CANDIDATES = {1: (51, 101, 151, 201, 301, 401, 801), 2: (11, 16, 21, 31, 41, 61, 81)}
CANDIDATES_MC = (500, 1000, 2000, 4000, 8000, 16000)
REFERENCE = {1: ("gauss", 3000), 2: ("gauss", 200)}
REFERENCE_HIGH_DIM = ("qmc", 2**17)


def rank_table(hidden, rules: dict, eps) -> tuple[dict, dict, dict[str, float]]:
    """eps-ranks of ``hidden(x) -> [(S, N, n_l) per layer]`` on each rule {name: (points, weights)}:
    {name: (L, S, E) array}, the spectra {name: [(S, n_l) per layer]}, and the CPU seconds each
    rule's forward pass and spectra took."""
    ranks, spectra, cpu = {}, {}, {}
    for name, (x, w) in rules.items():
        c0 = time.thread_time()
        spectra[name] = [rk.spectrum(h, w) for h in hidden(x)]
        ranks[name] = np.stack([rk.eps_rank_from_spectrum(sp, eps) for sp in spectra[name]])
        cpu[name] = time.thread_time() - c0
    return ranks, spectra, cpu


def near_eps(spectra: list[list[np.ndarray]], eps, margin: float) -> np.ndarray:
    """(T, L, S, E): whether an eigenvalue of the layer lies within a relative ``margin`` of eps,
    where no rule short of exact integration can be trusted to count it on the right side.
    ``spectra``: per checkpoint, one (S, n) array per layer."""
    eps = np.asarray(eps, dtype=float)
    return np.stack(
        [
            np.stack([(np.abs(sp[..., None] / eps - 1) < margin).any(axis=-2) for sp in per_checkpoint])
            for per_checkpoint in spectra
        ]
    )


def eigenvalue_error(spectra: dict, reference: str, floor: float) -> dict[str, float]:
    """Per rule: the largest relative error of its Gram eigenvalues against the reference's, over
    those the reference puts above ``floor`` (sorted, so the k-th against the k-th)."""
    ref = spectra[reference]
    out = {}
    for name, per_checkpoint in spectra.items():
        worst = 0.0
        for mine, theirs in zip(per_checkpoint, ref):
            for a, b in zip(mine, theirs):
                keep = b > floor
                if keep.any():
                    worst = max(worst, float(np.max(np.abs(a[keep] / b[keep] - 1))))
        out[name] = worst
    return out


def agreement(
    ranks: dict[str, np.ndarray], reference: str, eps, sizes: dict[str, int], ambiguous: np.ndarray | None = None
) -> tuple[pd.DataFrame, dict]:
    """ranks: {rule: (T, L, S, E)}; sizes: {candidate rule: its number of points (per dimension for
    a tensor rule)}; ambiguous: (T, L, S, E) cells left out of the ``clear`` counts (an eigenvalue at
    eps: :func:`near_eps`). Returns one row per candidate (cells that differ from the reference, in
    all, per eps and outside the ambiguous cells; the largest difference) and a summary: the smallest
    size agreeing everywhere (and so does every larger candidate), per eps, and outside the
    ambiguous cells."""
    ref = ranks[reference]
    eps = [float(e) for e in eps]
    clear = np.ones(ref.shape, dtype=bool) if ambiguous is None else ~ambiguous
    rows = []
    for name, n in sorted(sizes.items(), key=lambda item: item[1]):
        diff = ranks[name] - ref
        row = {"rule": name, "n": n, "cells": int(diff.size), "differ": int((diff != 0).sum())}
        row["share_differ"] = row["differ"] / row["cells"]
        row["max_abs_diff"] = int(np.abs(diff).max())
        row["differ_clear"] = int(((diff != 0) & clear).sum())
        for e_i, e in enumerate(eps):
            row[f"differ_eps_{e:g}"] = int((diff[..., e_i] != 0).sum())
        rows.append(row)
    table = pd.DataFrame(rows)

    def smallest(column: str):
        ok = (table[column] == 0).to_numpy()
        suffix = np.flip(np.cumprod(np.flip(ok))).astype(bool)  # this one and every larger one agree
        return int(table["n"][suffix].min()) if suffix.any() else None

    summary = {
        "smallest_n_all_eps": smallest("differ"),
        "smallest_n_per_eps": {f"{e:g}": smallest(f"differ_eps_{e:g}") for e in eps},
        "smallest_n_clear": smallest("differ_clear"),
        "ambiguous_cells": int((~clear).sum()),
    }
    return table, summary


def _rules(task, candidates=None, family=None, reference=None) -> tuple[dict, dict, str]:
    """Candidate rules of the task's own family (its ``rank_rule``, with the task's own seed for the
    random rules) and the reference: ({name: (x, w)}, {candidate: n}, reference name)."""
    d, bounds = task.d, task.bounds
    family = family or task.rank_rule
    if candidates is None:
        candidates = CANDIDATES[d] if family in ("trapezoid", "gauss") and d in CANDIDATES else CANDIDATES_MC
    seed = task.rank_seed
    rules, sizes = {}, {}
    for n in candidates:
        name = f"{family} {n}" + ("^d" if family in ("trapezoid", "gauss") and d > 1 else "")
        rules[name] = quadrature.rule(family, bounds, int(n), seed=seed)
        sizes[name] = int(n)
    kind, n_ref = reference or REFERENCE.get(d, REFERENCE_HIGH_DIM)
    ref_name = f"reference {kind} {n_ref}" + ("^d" if kind == "gauss" and d > 1 else "")
    rules[ref_name] = quadrature.rule(kind, bounds, int(n_ref), seed=12345)
    return rules, sizes, ref_name


class _FollowRules(Trainer):
    """The trainer, measuring the rules (``rules``, set before training) instead of its own record:
    per rule, the eps-ranks (``rule_ranks``) and spectra (``rule_spectra``) of every hidden layer at
    each measurement, and the CPU seconds they took in all (``rule_cpu``)."""

    def __init__(self, cfg: dict, out: Path, eps: list[float]):
        super().__init__(cfg, out, progress=False)
        self.rule_eps = eps
        self.rules: dict = {}
        self.rule_ranks: dict[str, list[np.ndarray]] = {}
        self.rule_spectra: dict[str, list] = {}
        self.rule_cpu: dict[str, float] = {}
        self._rule_tensors: dict[int, torch.Tensor] = {}  # each rule's points as a tensor, made once

    def _hidden(self, x):
        if id(x) not in self._rule_tensors:
            self._rule_tensors[id(x)] = torch.as_tensor(x, dtype=self.rank_x.dtype)
        return self.model(self._rule_tensors[id(x)], return_hidden=True)[1]

    @torch.no_grad()
    def measure(self):
        ranks, spec, seconds = rank_table(self._hidden, self.rules, self.rule_eps)
        for name, r in ranks.items():
            self.rule_ranks.setdefault(name, []).append(r)
            self.rule_spectra.setdefault(name, []).append(spec[name])
            self.rule_cpu[name] = self.rule_cpu.get(name, 0.0) + seconds[name]


def _spread(steps: np.ndarray, most: int) -> np.ndarray:
    """Up to ``most`` of ``steps``, evenly spread, the first and the last included."""
    pick = np.unique(np.round(np.linspace(0, len(steps) - 1, min(most, len(steps)))).astype(int))
    return steps[pick]


def _compared(trainer: _FollowRules, sizes: dict, ref_name: str, margin: float) -> tuple[pd.DataFrame, dict]:
    """The trained follower's rules against the reference (:func:`agreement`), with each rule's
    points, eigenvalue error and CPU time a measurement."""
    eps, rules = trainer.rule_eps, trainer.rules
    ranks = {name: np.stack(r) for name, r in trainer.rule_ranks.items()}  # (T, L, S, E)
    ambiguous = near_eps(trainer.rule_spectra[ref_name], eps, margin)
    table, summary = agreement(ranks, ref_name, eps, sizes, ambiguous)
    n_measured = len(ranks[ref_name])
    table["points"] = [len(rules[name][0]) for name in table["rule"]]
    errors = eigenvalue_error(trainer.rule_spectra, ref_name, min(eps) / 10)
    table["max_rel_eig_error"] = [errors[name] for name in table["rule"]]
    table["cpu_ms_per_measurement"] = [1e3 * trainer.rule_cpu[name] / n_measured for name in table["rule"]]
    return table, summary


def check_experiment(
    cfg: dict,
    candidates=None,
    family: str | None = None,
    reference: tuple[str, int] | None = None,
    max_checkpoints: int = 60,
    margin: float = 1e-3,
    log=print,
) -> tuple[pd.DataFrame, dict]:
    """Train one variant of an experiment (``staircase.training.trainer.Trainer``, all its seeds, its steps)
    and, at up to ``max_checkpoints`` of its measurement steps (evenly spread over the schedule,
    the first and the last included), compare the eps-ranks of every hidden layer at every eps of
    ``rank.eps`` on candidate rules with those on a reference rule (:func:`agreement`); the cells
    where a reference eigenvalue lies within a relative ``margin`` of eps are counted apart."""
    cfg = dict(cfg, device="cpu", train=dict(cfg["train"], checkpoint_every=0))
    eps = [float(e) for e in cfg["rank"]["eps"]]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _FollowRules(cfg, Path(tmp), eps)
        rules, sizes, ref_name = _rules(trainer.task, candidates, family, reference)
        if cfg["rank"]["normalisation"] == "mean":
            rules = {k: (x, np.full(len(x), 1.0 / len(x))) for k, (x, _) in rules.items()}
        trainer.rules = rules
        trainer.log_steps = _spread(trainer.log_steps, max_checkpoints)
        t0 = time.perf_counter()
        trainer.train()
    table, summary = _compared(trainer, sizes, ref_name, margin)
    measured = trainer.rule_ranks[ref_name]  # one (L, S, E) array per checkpoint
    task = cfg["task"]
    summary.update(
        experiment=cfg["experiment"],
        variant=cfg["variant"],
        task=task["name"],
        dim=trainer.task.d,
        pipeline_rank_points=int(task["rank_points"]),
        reference=ref_name,
        reference_points=len(rules[ref_name][0]),
        checkpoints=len(measured),
        steps=int(cfg["train"]["steps"]),
        seeds=len(cfg["seeds"]),
        layers=int(measured[0].shape[0]),
        eps=eps,
        seconds=round(time.perf_counter() - t0, 1),
        margin=margin,
    )
    at_pipeline = table[table["n"] == summary["pipeline_rank_points"]]
    summary["pipeline_agrees"] = bool(at_pipeline["differ"].eq(0).all()) if len(at_pipeline) else None
    log(report(table, summary))
    return table, summary


def report(table: pd.DataFrame, summary: dict) -> str:
    s = summary
    lines = [
        f"{s['experiment']}/{s['variant']} ({s['task']}, d={s['dim']}, {s['steps']} steps, {s['seeds']} seeds, "
        f"{s['layers']} hidden layers, {s['checkpoints']} checkpoints): eps-ranks against {s['reference']} "
        f"({s['reference_points']} points) at eps {s['eps']}"
    ]
    for _, r in table.iterrows():
        per_eps = ", ".join(f"{c.removeprefix('differ_eps_')}: {r[c]}" for c in table.columns if "eps_" in c)
        lines.append(
            f"  {r['rule']:>18} ({r['points']:6d} points, {r['cpu_ms_per_measurement']:7.1f} ms CPU a measurement): "
            f"{r['differ']:4d} of {r['cells']} cells differ, {r['differ_clear']} with no eigenvalue at eps "
            f"(max |diff| {r['max_abs_diff']}; per eps {per_eps}); eigenvalues >= {min(s['eps']) / 10:g} "
            f"within {r['max_rel_eig_error']:.1e}"
        )
    lines.append(
        f"  smallest n agreeing at every eps: {s['smallest_n_all_eps']}; per eps: {s['smallest_n_per_eps']}; "
        f"in every cell with no reference eigenvalue within {s['margin']:g} of eps: {s['smallest_n_clear']} "
        f"({s['ambiguous_cells']} cells left out); the pipeline's rank_points {s['pipeline_rank_points']}"
    )
    return "\n".join(lines)


__all__ = ["agreement", "check_experiment", "eigenvalue_error", "near_eps", "rank_table", "report"]
