"""False-positive rate and power of the claim tests, measured on synthetic ensembles.

``staircase calibrate`` (and the workflow's ``calibrate`` rule) draws series with a known answer
(:mod:`staircase.claims.synthetic`) on the measurement schedules of the configured experiments and runs
the audit's own tests on them, with the config's settings:

* A1 (:func:`staircase.core.steptest.staircase_test`): Gram spectra that move up in one growth phase
  (its null; shapes, spectra with gaps and pairs, compression, noise and schedules drawn at random,
  :func:`staircase.claims.synthetic.spectra`) must give p <= alpha at most ``alpha`` of the time (the
  false-positive rate); spectra that move in several bursts should (the power). The same integer
  test on the eps-rank alone is run too, to show why A1 reads the spectrum;
* A2 (:func:`staircase.core.steptest.coupling_test`, also A3's test of the bound): losses that share the
  rank's trend but not its timing (uncoupled) against losses that fall when the rank rises.

Each rate comes with its Clopper-Pearson 95 % interval. Outputs in ``out_dir``: ``a1.csv`` and
``a2.csv`` (one row per draw: what was drawn, statistic, p) and ``summary.csv`` (test, ensemble,
draws, rate, interval). docs/claims.md reports the numbers of the default configuration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from staircase.claims import registry, synthetic
from staircase.core import steptest
from staircase.core.schedule import log_schedule
from staircase.records.provenance import atomic_write
from staircase.workflow import config as cfgmod


def schedules(config: dict) -> dict[str, np.ndarray]:
    """The distinct measurement schedules of the enabled experiments tagged A1, A2, A4 or A1-regime, plus two
    uniform ones (200 and 60 measurements), so the rates hold on the schedules the audit sees."""
    out = {}
    for name in cfgmod.enabled_experiments(config):
        if not {"A1", "A2", "A4", "A1-regime"} & set(config["experiments"][name].get("claims", [])):
            continue
        for run in cfgmod.variants(config, name).values():
            lg, steps = run["log"], run["train"]["steps"]
            key = f"{steps}:{lg['dense_every']}/{lg['dense_until']}/{lg['sparse_every']}"
            out.setdefault(key, log_schedule(steps, lg["dense_every"], lg["dense_until"], lg["sparse_every"]))
    out.setdefault("uniform:200", np.arange(200) * 10)
    out.setdefault("uniform:60", np.arange(60) * 50)
    return out


def _draws(plan: dict[str, np.ndarray], size: int):
    names = sorted(plan)
    for i in range(size):
        yield i, names[i % len(names)], plan[names[i % len(names)]].astype(float)


def a1_ensemble(plan, size: int, seed: int = 0, rank_only: bool = True, **options) -> pd.DataFrame:
    """``size`` spectra moving in one growth phase (the null) and ``size`` in 2-5 (staircases),
    each tested by A1 (options: n_null, min_points, min_span). Also the same integer test applied
    to the eps-rank alone (``p_rank_only``): why A1 reads the spectrum (docs/claims.md)."""
    rng = np.random.default_rng(seed)
    rows = []
    for multi in (False, True):
        for i, name, steps in _draws(plan, size):
            spectra, eps, info = synthetic.spectra(steps, rng, phases=int(rng.integers(2, 6)) if multi else 1)
            ranks = (spectra > eps).sum(axis=1).astype(float)
            res = steptest.staircase_test(steps, spectra, eps, seed=seed + i, **options)
            alone = steptest.levels_test(steps, ranks, seed=seed + i, **options) if rank_only else None
            rows.append(
                {"kind": "staircase" if multi else "smooth", **info, "schedule": name, "rank_rise": res.rank_rise}
                | {"statistic": res.statistic, "hold_ratio": res.hold_ratio, "p_value": res.p_value}
                | {"p_rank_only": alone["p_value"] if alone else np.nan}
                | {"hold_ratio_rank_only": float(np.exp(alone["statistic"])) if alone else np.nan}
            )
    return pd.DataFrame(rows)


def a2_ensemble(plan, size: int, seed: int = 0, **options) -> pd.DataFrame:
    """``size`` uncoupled and ``size`` coupled (rank, loss) pairs, each tested by A2 (options:
    window, n_null, min_points, min_span); the ranks come from the spectra of :func:`a1_ensemble`'s
    kinds, one and several growth phases alternately."""
    rng = np.random.default_rng(seed)
    rows = []
    for coupled in (False, True):
        for i, name, steps in _draws(plan, size):
            spectra, eps, _ = synthetic.spectra(steps, rng, phases=1 + (i % 2) * int(rng.integers(1, 5)))
            ranks = (spectra > eps).sum(axis=1).astype(float)
            loss, linfo = synthetic.loss_for(steps, ranks, rng, coupled)
            res = steptest.coupling_test(steps, ranks, np.log(loss), seed=seed + i, **options)
            rows.append(
                {"rank_phases": 1 + (i % 2), **linfo, "schedule": name, "statistic": res.statistic}
                | {"p_value": res.p_value, "rises": res.n_rises}
            )
    return pd.DataFrame(rows)


def rate(p_values, alpha: float) -> dict:
    """Share of p <= alpha with its Clopper-Pearson 95 % interval (a NaN p, nothing to test,
    counts as not significant)."""
    p = np.asarray(p_values, dtype=float)
    hits = int(np.sum(p <= alpha))
    ci = stats.binomtest(hits, len(p)).proportion_ci(0.95) if len(p) else None
    return {
        "draws": len(p),
        "rate": hits / len(p) if len(p) else float("nan"),
        "ci_low": ci.low if ci else float("nan"),
        "ci_high": ci.high if ci else float("nan"),
    }


def cell_p_values(frame: pd.DataFrame, seeds: int, alpha: float, min_ratio: float) -> np.ndarray:
    """A1's decision per cell of ``seeds`` seeds, by the audit's own rule
    (:func:`staircase.core.steptest.staircase_verdict`: Fisher's p over the seeds and the median stall
    ratio), on consecutive disjoint groups of draws: the cell's Fisher p where it passes, else 1."""
    n = len(frame) // seeds * seeds
    out = []
    for start in range(0, n, seeds):
        passes, p, _ = steptest.staircase_verdict(frame.iloc[start : start + seeds].itertuples(), alpha, min_ratio)
        out.append(p if passes else 1.0)
    return np.asarray(out, dtype=float)


def map_false_positive_rate(cell_rate: float, cells: int, alpha: float) -> float:
    """How often the regime map's claim (A1-regime; A4's binomial p) says "a staircase somewhere"
    when there is none: the binomial test at ``alpha`` of ``cells`` cells that each pass with
    probability ``cell_rate``."""
    if cells < 1 or not np.isfinite(cell_rate):
        return float("nan")
    k = np.arange(cells + 1)
    significant = k[stats.binom.sf(k - 1, cells, alpha) <= alpha]
    return float(stats.binom.sf(significant[0] - 1, cells, cell_rate)) if significant.size else 0.0


def a1_decision_p(frame: pd.DataFrame, min_ratio: float, p: str = "p_value", ratio: str = "hold_ratio"):
    """A1's decision per seed as a p-value: ``p`` where the stall ratio reaches ``min_ratio``, else 1
    (never significant), so that p <= alpha is the audit's decision."""
    return np.where(frame[ratio] >= min_ratio, frame[p], 1.0)


def map_row(null_cells: dict, map_cells: int, alpha: float) -> dict:
    """The false-positive rate of the map's binomial test over ``map_cells`` cells, from one cell's
    (``null_cells``: its rate and interval)."""
    return {
        "test": f"binomial test over the {map_cells} cells of sweeps and maps (A4; A1-regime per map)",
        "ensemble": "no staircase in any cell (null)",
        "measures": "false-positive rate",
        "draws": null_cells["draws"],
        "rate": map_false_positive_rate(null_cells["rate"], map_cells, alpha),
        "ci_low": map_false_positive_rate(null_cells["ci_low"], map_cells, alpha),
        "ci_high": map_false_positive_rate(null_cells["ci_high"], map_cells, alpha),
    }


def summary(
    a1: pd.DataFrame,
    a2: pd.DataFrame,
    alpha: float,
    min_ratio: float,
    cell_seeds: int = 2,
    map_cells: int = 0,
) -> pd.DataFrame:
    """The rates, one row per (test, ensemble). A1's decision per seed is the audit's:
    p <= alpha and a stall ratio >= min_ratio; "p only" leaves the effect size out. Per cell of
    ``cell_seeds`` seeds (a regime-map or sweep cell) the decision combines the seeds as the audit
    does; with ``map_cells`` > 0, the false-positive rate of the map's binomial test over that many
    cells follows from the cell's (its interval from the cell rate's)."""

    smooth, stairs = a1[a1["kind"] == "smooth"], a1[a1["kind"] == "staircase"]
    rows = [
        {"test": "A1", "ensemble": "spectra moving in one growth phase (null)", "measures": "false-positive rate"}
        | rate(a1_decision_p(smooth, min_ratio), alpha),
        {"test": "A1", "ensemble": "spectra moving in 2-5 bursts (staircases)", "measures": "power"}
        | rate(a1_decision_p(stairs, min_ratio), alpha),
        {
            "test": "A1, p only",
            "ensemble": "spectra moving in one growth phase (null)",
            "measures": "false-positive rate",
        }
        | rate(smooth["p_value"], alpha),
        {"test": "A1, p only", "ensemble": "spectra moving in 2-5 bursts (staircases)", "measures": "power"}
        | rate(stairs["p_value"], alpha),
    ]
    if smooth["p_rank_only"].notna().any():
        rows.append(
            {"test": "A1 on the eps-rank alone (not used)", "ensemble": "one growth phase (null)"}
            | {"measures": "false-positive rate"}
            | rate(a1_decision_p(smooth, min_ratio, "p_rank_only", "hold_ratio_rank_only"), alpha)
        )
    cell = f"A1 per cell of {cell_seeds} seeds (regime map, A4)"
    null_cells = rate(cell_p_values(smooth, cell_seeds, alpha, min_ratio), alpha)
    rows += [
        {"test": cell, "ensemble": "spectra moving in one growth phase (null)", "measures": "false-positive rate"}
        | null_cells,
        {"test": cell, "ensemble": "spectra moving in 2-5 bursts (staircases)", "measures": "power"}
        | rate(cell_p_values(stairs, cell_seeds, alpha, min_ratio), alpha),
    ]
    if map_cells > 0:
        rows.append(map_row(null_cells, map_cells, alpha))
    rows += [
        {"test": "A2", "ensemble": "uncoupled loss (null)", "measures": "false-positive rate"}
        | rate(a2.loc[~a2["coupled"], "p_value"], alpha),
        {"test": "A2", "ensemble": "coupled loss", "measures": "power"} | rate(a2.loc[a2["coupled"], "p_value"], alpha),
    ]
    return pd.DataFrame(rows).assign(alpha=alpha)


def _cell_experiments(config: dict) -> list[str]:
    return [
        name
        for name in cfgmod.enabled_experiments(config)
        if {"A4", "A1-regime"} & set(config["experiments"][name].get("claims", []))
    ]


def map_layout(config: dict) -> tuple[int, int]:
    """(cells, seeds per cell) of what A4 over the sweeps and the regime map judges together:
    every variant of an enabled experiment tagged A4 or A1-regime, and the fewest seeds of one
    (0 cells and 2 seeds without any)."""
    runs = [run for name in _cell_experiments(config) for run in cfgmod.variants(config, name).values()]
    return len(runs), (max(1, min(len(run["seeds"]) for run in runs)) if runs else 2)


def run(config: dict, out_dir, size: int = 400, seed: int = 0, n_null: int = 200) -> pd.DataFrame:
    """Both ensembles on the config's schedules and settings; writes a1.csv, a2.csv, summary.csv."""
    analysis = config.get("analysis") or {}
    denoise = {k: analysis[k] for k in ("min_points", "min_span") if k in analysis}
    thresholds = registry.thresholds(config)
    plan = schedules(config)
    a1 = a1_ensemble(plan, size, seed, n_null=n_null, **denoise)
    a2 = a2_ensemble(plan, size, seed, n_null=n_null, window=analysis.get("loss_window", 20), **denoise)
    cells, seeds = map_layout(config)
    table = summary(a1, a2, thresholds["alpha"], thresholds["a1_min_stall_ratio"], seeds, cells)
    out = Path(out_dir)
    for name, frame in (("a1", a1), ("a2", a2), ("summary", table)):
        atomic_write(out / f"{name}.csv", lambda tmp, f=frame: f.to_csv(tmp, index=False))
    return table


__all__ = [
    "a1_ensemble",
    "a2_ensemble",
    "cell_p_values",
    "map_false_positive_rate",
    "map_layout",
    "rate",
    "run",
    "schedules",
    "summary",
]
