"""False-positive rate and power of the claim tests, measured on families of cases with a known answer.

``staircase calibrate`` (and the workflow's ``calibrate`` rule) draws cases from every family of
:mod:`staircase.claims.families` on the measurement schedules of the configured experiments and runs
the audit's own tests on them, with the config's settings:

* A1 (:func:`staircase.core.steptest.staircase_test`, decided as the audit decides: p <= alpha and
  the effect size at least ``a1_min_stall_ratio``): ten null families (smooth one-phase rises of
  several kinds, outliers and outlier episodes, the pipeline's own trained spectra re-timed in one
  growth phase, alone and as cells of two seeds of one run) and five staircase families (bursts,
  regular one-eigenvalue stairs, bursts with episodes, trained spectra re-timed in bursts);
* A2 (:func:`staircase.core.steptest.coupling_test`, also A3's test of the bound): three null
  families (an uncoupled loss, a shared narrow growth phase, drops that lead the rises) and five of
  coupling (coupled, and drops 0-3 measurements after each rise).

The trained spectra come from a short training run of the first enabled experiment tagged A1
(:func:`trained_pool`), made in the calibration job itself. Each rate comes with its
Clopper-Pearson 95 % interval. Outputs in ``out_dir``: ``a1.csv`` and ``a2.csv`` (one row per
tested seed: family, what was drawn, statistics, p) and ``summary.csv`` (test, ensemble, measures,
draws, rate, interval, alpha; one row per family, plus A1 per cell of seeds, the regime map's
binomial test and A1 on the eps-rank alone). docs/claims.md reports the numbers of the default
configuration.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from staircase.claims import families, registry
from staircase.core import steptest
from staircase.core.schedule import log_schedule
from staircase.records.provenance import atomic_write
from staircase.workflow import config as cfgmod

REAL_STEPS = 1500  # steps of the short training run whose spectra the real-spectra families re-time


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


def _schedule(plan: dict[str, np.ndarray], i: int) -> tuple[str, np.ndarray]:
    name = sorted(plan)[i % len(plan)]
    return name, plan[name].astype(float)


def a1_row(steps, case, seed: int, **options) -> dict:
    """A1's test of one drawn seed (spectra, eps, description) as a row of a1.csv."""
    spectra, eps, info = case
    res = steptest.staircase_test(steps, spectra, eps, seed=seed, **options)
    return info | {
        "rank_rise": res.rank_rise,
        "statistic": res.statistic,
        "hold_ratio": res.hold_ratio,
        "stall_p": res.stall_p,
        "burst": res.burst,
        "burst_contrast": res.burst_contrast,
        "burst_p": res.burst_p,
        "excursions": res.excursions,
        "effect": res.effect,
        "p_value": res.p_value,
    }


def family_rows(family: families.Family, plan, size: int, seed: int, pool, **options) -> list[dict]:
    """``size`` draws of one family, each tested (A1: one row per seed, ``unit`` the draw; A2: one row)."""
    rng = np.random.default_rng([seed, families.FAMILIES.index(family)])
    rows = []
    for i in range(size):
        name, steps = _schedule(plan, i)
        case = family.draw(steps, rng, pool)
        head = {"family": family.name, "null": family.null, "unit": i, "schedule": name}
        if family.test == "A2":
            ranks, loss, info = case
            a2 = {k: options[k] for k in ("window", "n_null", "min_points", "min_span") if k in options}
            res = steptest.coupling_test(steps, ranks, np.log(loss), seed=seed + i, **a2)
            rows.append(head | info | {"statistic": res.statistic, "p_value": res.p_value, "rises": res.n_rises})
            continue
        a1 = {k: v for k, v in options.items() if k != "window"}
        for j, one in enumerate(case if family.seeds > 1 else [case]):
            rows.append(head | a1_row(steps, one, seed + i * family.seeds + j, **a1) | {"cell_seed": j})
    return rows


def ensembles(plan, size: int, seed: int = 0, pool=None, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(a1, a2): every family of :data:`staircase.claims.families.FAMILIES`, ``size`` draws of each
    null family and ``size // 2`` of each power family (a rate near 0 needs more draws for a tight
    upper bound than a power does); families on trained spectra are left out without a ``pool``."""
    frames = {"A1": [], "A2": []}
    for family in families.FAMILIES:
        if family.draw in families.NEEDS_POOL and not pool:
            continue
        n = size if family.null else max(1, size // 2)
        frames[family.test] += family_rows(family, plan, n, seed, pool, **options)
    return pd.DataFrame(frames["A1"]), pd.DataFrame(frames["A2"])


def rank_only_rows(plan, size: int, seed: int = 0, **options) -> pd.DataFrame:
    """The same integer test applied to the eps-rank alone on ``size`` one-phase draws (why A1 reads
    the spectrum, docs/claims.md)."""
    rng = np.random.default_rng([seed, 999])
    rows = []
    for i in range(size):
        _, steps = _schedule(plan, i)
        spectra, eps, _ = families.one_phase(steps, rng)
        res = steptest.levels_test(steps, (spectra > eps).sum(axis=1).astype(float), seed=seed + i, **options)
        rows.append({"p_value": res["p_value"], "hold_ratio": float(np.exp(res["statistic"]))})
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


def a1_decision_p(frame: pd.DataFrame, min_ratio: float, p: str = "p_value", ratio: str = "effect"):
    """A1's decision per seed as a p-value: ``p`` where the effect size reaches ``min_ratio``, else 1
    (never significant), so that p <= alpha is the audit's decision."""
    return np.where(frame[ratio] >= min_ratio, frame[p], 1.0)


def unit_decisions(frame: pd.DataFrame, alpha: float, min_ratio: float) -> np.ndarray:
    """One p per drawn unit, significant exactly when the audit would pass it: A2 its p; A1 a single
    seed's decision, or a cell's (Fisher over its seeds and the median effect,
    :func:`staircase.core.steptest.staircase_verdict`)."""
    if "cell_seed" not in frame or frame["cell_seed"].max() == 0:
        return a1_decision_p(frame, min_ratio) if "effect" in frame else frame["p_value"].to_numpy(float)
    out = []
    for _, cell in frame.groupby("unit"):
        passes, p, _ = steptest.staircase_verdict(cell.itertuples(), alpha, min_ratio)
        out.append(p if passes else 1.0)
    return np.asarray(out, dtype=float)


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


def family_rows_summary(frame: pd.DataFrame, test: str, alpha: float, min_ratio: float) -> list[dict]:
    rows = []
    for name, fam in frame.groupby("family", sort=False):
        null = bool(fam["null"].iloc[0])
        rows.append(
            {"test": test, "ensemble": name + (" (null)" if null else "")}
            | {"measures": "false-positive rate" if null else "power"}
            | rate(unit_decisions(fam, alpha, min_ratio), alpha)
        )
    return rows


def summary(
    a1: pd.DataFrame,
    a2: pd.DataFrame,
    alpha: float,
    min_ratio: float,
    cell_seeds: int = 2,
    map_cells: int = 0,
    rank_only: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The rates, one row per (test, family). A1's decision per seed is the audit's: p <= alpha and
    an effect size >= min_ratio. Per cell of ``cell_seeds`` seeds (a regime-map or sweep cell) the
    one-phase and burst families' draws are grouped as the audit combines seeds; with ``map_cells``
    > 0, the false-positive rate of the map's binomial test over that many cells follows from the
    cell's (its interval from the cell rate's)."""
    rows = family_rows_summary(a1, "A1", alpha, min_ratio)
    smooth = a1[a1["family"] == families.FAMILIES[0].name]
    stairs = a1[a1["family"] == "2-5 bursts"]
    cell = f"A1 per cell of {cell_seeds} seeds (regime map, A4)"
    null_cells = rate(cell_p_values(smooth, cell_seeds, alpha, min_ratio), alpha)
    rows += [
        {"test": cell, "ensemble": f"{families.FAMILIES[0].name} (null)", "measures": "false-positive rate"}
        | null_cells,
        {"test": cell, "ensemble": "2-5 bursts", "measures": "power"}
        | rate(cell_p_values(stairs, cell_seeds, alpha, min_ratio), alpha),
    ]
    if map_cells > 0:
        rows.append(map_row(null_cells, map_cells, alpha))
    if rank_only is not None and len(rank_only):
        rows.append(
            {"test": "A1 on the eps-rank alone (not used)", "ensemble": "one growth phase, six shapes (null)"}
            | {"measures": "false-positive rate"}
            | rate(a1_decision_p(rank_only, min_ratio, ratio="hold_ratio"), alpha)
        )
    rows += family_rows_summary(a2, "A2", alpha, min_ratio)
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


def trained_pool(config: dict, workdir, steps_cap: int = REAL_STEPS) -> list[list[tuple]]:
    """Trained spectra for the real-spectra families: the first variant of the first enabled
    experiment tagged A1, trained for at most ``steps_cap`` steps on its own seeds in ``workdir``;
    one run: a list of (steps, last hidden layer's spectra (T, n), main eps) per seed. Empty without
    such an experiment."""
    from staircase.training import trainer  # torch: loaded only when the calibration trains

    names = [n for n in cfgmod.enabled_experiments(config) if "A1" in config["experiments"][n].get("claims", [])]
    if not names:
        return []
    run_cfg = copy.deepcopy(next(iter(cfgmod.variants(config, names[0]).values())))
    run_cfg["train"]["steps"] = min(int(run_cfg["train"]["steps"]), steps_cap)
    run_cfg["train"]["checkpoint_every"] = run_cfg["train"]["steps"]
    out = trainer.run(run_cfg, Path(workdir) / "trained", progress=False)
    with np.load(out / "spectra.npz") as npz:
        last = max(int(k.removeprefix("layer")) for k in npz.files if k.startswith("layer"))
        steps, layer = npz["steps"].astype(float), npz[f"layer{last}"]
    eps = float(run_cfg["rank"]["main_eps"])
    return [[(steps, layer[i], eps) for i in range(len(layer))]]


def run(config: dict, out_dir, size: int = 150, seed: int = 0, n_null: int = 100) -> pd.DataFrame:
    """Every family on the config's schedules and settings; writes a1.csv, a2.csv, summary.csv."""
    analysis = config.get("analysis") or {}
    denoise = {k: analysis[k] for k in ("min_points", "min_span") if k in analysis}
    thresholds = registry.thresholds(config)
    plan = schedules(config)
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as work:
        pool = trained_pool(config, work)
    options = dict(n_null=n_null, window=analysis.get("loss_window", 20), **denoise)
    a1, a2 = ensembles(plan, size, seed, pool, **options)
    rank_only = rank_only_rows(plan, size, seed, n_null=n_null, **denoise)
    cells, seeds = map_layout(config)
    alpha, min_ratio = thresholds["alpha"], thresholds["a1_min_stall_ratio"]
    table = summary(a1, a2, alpha, min_ratio, seeds, cells, rank_only)
    for name, frame in (("a1", a1), ("a2", a2), ("summary", table)):
        atomic_write(out / f"{name}.csv", lambda tmp, f=frame: f.to_csv(tmp, index=False))
    return table


__all__ = [
    "cell_p_values",
    "ensembles",
    "family_rows",
    "map_false_positive_rate",
    "map_layout",
    "rate",
    "run",
    "schedules",
    "summary",
    "trained_pool",
    "unit_decisions",
]
