"""Cells (one variant each) judged by A1, shared by A4 (the universality sweep) and A1-regime (the
regime map): each cell's factors and A1's decision over its healthy seeds, and the test over
cells - how many pass against "no staircase anywhere" (binomial p)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from staircase.claims import progress, registry
from staircase.claims import verdicts as vd
from staircase.claims.judges.context import ANALYSIS_DEFAULTS, INCONCLUSIVE, ExperimentAudit, SeedTests
from staircase.core import steptest
from staircase.records.runs import Run, run_summary


def cell_factors(cfg: dict) -> dict:
    """The settings a regime-map cell is placed by (from a run's resolved config): ``method`` (gd for
    full-batch sgd; "+ batch B" for mini-batches), ``lr``, ``init_gain`` and ``target`` (the
    amplitudes), with ``cell``, a short label of the four."""
    t, m, task = cfg.get("train", {}), cfg.get("model", {}), cfg.get("task", {})
    optimizer = t.get("optimizer", "?")
    method = "gd" if optimizer == "sgd" and not t.get("batch_size") else optimizer
    if t.get("momentum"):
        method += f" momentum {t['momentum']:g}"
    if t.get("batch_size"):
        method += f" + batch {t['batch_size']}"
    target = " ".join(f"{a:g}" for a in task.get("amplitudes", []))
    gain = float(m.get("init_gain", 1.0))
    lr = float(t.get("lr", np.nan))
    return dict(
        method=method,
        lr=lr,
        init_gain=gain,
        target=target,
        cell=f"{method}, lr {lr:g}, init x{gain:g}" + (f", amplitudes {target}" if target else ""),
    )


def cell_table(runs: list[Run], tests: dict[str, SeedTests], t: dict) -> pd.DataFrame:
    rows = []
    for run in runs:
        seeds = tests[run.variant]
        summary = stairs_summary(run, seeds.denoise)
        row = dict(experiment=run.experiment, variant=run.variant, **cell_factors(run.config), **summary)
        res = seeds.staircase
        passes, p, ratio = steptest.staircase_verdict(res.values(), t["alpha"], t["a1_min_stall_ratio"])
        enough = len(res) >= t["min_seeds"]
        coupling = seeds.loss_coupling
        row |= dict(
            a1_statistic=float(np.median([r.statistic for r in res.values()])) if res else np.nan,
            a1_stall_ratio=ratio if enough else np.nan,
            a1_p=p if enough else np.nan,
            a1_pass=passes if enough else None,
            rank_rise=float(np.median([r.rank_rise for r in res.values()])) if res else np.nan,
            a2_statistic=float(np.nanmedian([c.statistic for c in coupling.values()])) if coupling else np.nan,
            a2_p=steptest.fisher([c.p_value for c in coupling.values()]),
        )
        rows.append(progress.judge_trained_only(row, run))  # a cell not trained to its factor is not judged
    return pd.DataFrame(rows)


def stairs_summary(run: Run, denoise: dict) -> dict:
    """Seeds, healthy seeds, status, the final loss and error and the stairs of a run (medians over
    its healthy seeds, :func:`staircase.records.runs.run_summary`)."""
    row = run_summary(run, **denoise)
    keep = ("seeds", "seeds_ok", "status", "final_loss", "final_rel_l2", "n_stairs")
    return {k: row.get(k, np.nan) for k in keep}


def regime_table(runs: list[Run], settings: dict | None = None, thresholds: dict | None = None) -> pd.DataFrame:
    """The regime map's table (and A4's cells): one row per run (cell) with its factors
    (:func:`cell_factors`), seeds, A1's decision over its healthy seeds (``a1_pass``: None with
    fewer than ``min_seeds``; ``a1_p`` Fisher-combined, ``a1_stall_ratio`` and ``a1_statistic``
    medians), the eps-rank's rise, A2's statistic and Fisher p, detected stairs, final loss and
    relative L2 error. The audit's A4 and A1-regime rows are computed by the same code.
    ``settings``: the analysis settings (:func:`analysis_settings` keys); ``thresholds``: alpha,
    a1_min_stall_ratio, min_seeds (the schema's defaults when absent)."""
    settings = {**ANALYSIS_DEFAULTS, **(settings or {})}
    t = {**registry.threshold_defaults(), **(thresholds or {})}
    return cell_table(runs, {r.variant: SeedTests(r, settings) for r in runs}, t)


def _passed(verdicts: pd.Series) -> pd.Series:
    """True where a cell passed A1 (False where it did not or could not be judged)."""
    return verdicts.map(lambda v: False if pd.isna(v) else bool(v)).astype(bool)


def count_passing(cells: pd.DataFrame, alpha: float) -> tuple[int, int, float]:
    """(cells that pass A1, cells judged, binomial p of that many passing if each passed with
    probability alpha): the test of A1-regime and of A4 over cells. Cells with too few healthy
    seeds are left out."""
    judged = cells[cells["a1_pass"].notna()] if len(cells) else cells
    n = len(judged)
    passing = int(_passed(judged["a1_pass"]).sum()) if n else 0
    return passing, n, float(stats.binom.sf(passing - 1, n, alpha)) if n else float("nan")


def cells_detail(cells: pd.DataFrame, prefix: str = "") -> str:
    """The cells named by their A1 verdict: pass; do not (tested); the eps-rank rose by less than
    2 (nothing to test, no staircase: counted as not passing); too few healthy seeds (left out); not
    trained to the budget's factor (left out: staircase.claims.progress)."""
    judged = cells[cells["a1_pass"].notna()]

    def named(rows):
        return ", ".join(f"{prefix}{c.variant} (p={c.a1_p:.2g}, x{c.a1_stall_ratio:.2g})" for c in rows) or "none"

    flat = [c for c in judged.itertuples() if not c.a1_pass and c.rank_rise < 2]
    untrained = progress.not_trained(cells)
    short = [c for c in cells.itertuples() if pd.isna(c.a1_pass) and c not in untrained]
    parts = [
        f"pass A1: {named(c for c in judged.itertuples() if c.a1_pass)}",
        f"do not: {named(c for c in judged.itertuples() if not c.a1_pass and c.rank_rise >= 2)}",
        f"the eps-rank rose by less than 2 (no staircase, nothing to test): "
        f"{', '.join(f'{prefix}{c.variant}' for c in flat)}"
        if flat
        else "",
        "too few healthy seeds: " + ", ".join(f"{prefix}{c.variant} ({c.seeds_ok} healthy)" for c in short)
        if short
        else "",
        progress.named(untrained, prefix),
    ]
    return "; ".join(filter(None, parts))


def cells_row(name: str, tables: list[tuple[str, pd.DataFrame]], t: dict, paths: list[str]) -> vd.Row:
    """A4's test over the cells of one or more experiments: the share that pass A1 against
    ``a4_min_fraction``, with the binomial p under "no staircase anywhere" and the cells named
    (prefixed with their experiment when there are several)."""
    alpha = t["alpha"]
    several = len(tables) > 1
    cells = pd.concat([table for _, table in tables], ignore_index=True)
    passing, n, p_binom = count_passing(cells, alpha)
    fraction = passing / n if n else float("nan")
    detail = "; ".join(
        (f"{exp}: " if several else "") + cells_detail(table, f"{exp}/" if several else "")
        for exp, table in tables
        if len(table)
    )
    if several:
        per = [f"{exp} {_passed(tb['a1_pass']).sum()}/{int(tb['a1_pass'].notna().sum())}" for exp, tb in tables]
        detail = f"per experiment: {', '.join(per)}; " + detail
    return vd.threshold_row(
        "A4",
        name,
        "fraction of sweep cells that pass A1 (Fisher p <= alpha and stall ratio >= a1_min_stall_ratio)"
        + (f", over the cells of {', '.join(e for e, _ in tables)} together" if several else ""),
        fraction,
        ">=",
        t["a4_min_fraction"],
        p_value=p_binom,
        null=f"no staircase anywhere: each cell passes with probability at most {alpha:g} "
        f"(binomial p of {passing} of {n} cells: {p_binom:.2g})",
        n=n,
        detail=detail,
        runs=paths,
        verdict=INCONCLUSIVE if not n else None,
    )


def across_row(judges: dict[str, ExperimentAudit], config: dict) -> vd.Row | None:
    """A4 over the universality sweep(s) and the regime map(s) together: one row, experiment
    ``<a>+<b>+...``, when experiments of both kinds (tagged A4, tagged A1-regime) were audited."""
    tagged = {name: set(config["experiments"][name].get("claims", [])) for name in judges}
    sweeps = [n for n, c in tagged.items() if "A4" in c]
    maps = [n for n, c in tagged.items() if "A1-regime" in c and n not in sweeps]
    if not sweeps or not maps:
        return None
    names = sweeps + maps
    paths = [p for n in names for p in judges[n].paths]
    return cells_row("+".join(names), [(n, judges[n].cells) for n in names], registry.thresholds(config), paths)


def record_cells(audit: ExperimentAudit, claim: str) -> None:
    for c in audit.cells.itertuples():
        # a cell not trained to its budget's factor has no verdict (a1_pass None): no seed record
        if np.isfinite(c.a1_p) and c.a1_pass is not None:
            audit.record(
                claim, c.variant, -1, "cell passes A1 (Fisher p, stall ratio)", float(c.a1_pass), c.a1_p,
                f"x{c.a1_stall_ratio:.3g}",
            )  # fmt: skip
