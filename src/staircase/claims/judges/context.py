"""What every claim's judge shares: one experiment's runs, their per-seed tests (computed once),
the thresholds and settings, and the helpers that turn numbers into rows.

:class:`ExperimentAudit` is the context a judge module receives (``judge(audit) -> list[Row]``);
which module judges which claim is declared by the claims registry (``judge:`` in
src/staircase/claims/claims.yaml), so a change to one claim's test touches one module.
"""

from __future__ import annotations

import copy
import importlib
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.claims import registry
from staircase.claims import verdicts as vd
from staircase.core import steptest
from staircase.records.runs import Run, experiment_runs
from staircase.workflow import config as cfgmod

PASS, FAIL, INCONCLUSIVE, ERROR = vd.PASS, vd.FAIL, vd.INCONCLUSIVE, vd.ERROR
ANALYSIS_DEFAULTS = {"min_points": 2, "min_span": 0.0, "loss_window": 20, "null_samples": 400}


def config_runs(config: dict, results: Path, experiment: str) -> list[Run]:
    """The finished runs of the config's variants of ``experiment`` under ``results``/runs."""
    return experiment_runs(Path(results) / "runs" / experiment, cfgmod.variants(config, experiment))


def analysis_settings(config: dict) -> dict:
    """The tests' settings: config `analysis:` over the schema's defaults."""
    return {**ANALYSIS_DEFAULTS, **{k: v for k, v in (config.get("analysis") or {}).items() if k in ANALYSIS_DEFAULTS}}


class SeedTests:
    """The per-seed tests of one run, computed once and shared by the claims that use them."""

    def __init__(self, run: Run, settings: dict):
        self.run = run
        self.denoise = {"min_points": settings["min_points"], "min_span": settings["min_span"]}
        self.n_null = settings["null_samples"]
        self.window = settings["loss_window"]

    def series(self, seed: int) -> pd.DataFrame:
        m = self.run.metrics
        return m[m["seed"] == seed].sort_values("step")

    def last_layer_spectra(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps, (T, n) Gram spectra of the last hidden layer) of one seed (spectra.npz)."""
        spectra = self.run.spectra
        last = max(int(k.removeprefix("layer")) for k in spectra if k.startswith("layer"))
        row = list(np.asarray(spectra["seeds"]).astype(int)).index(seed)
        return np.asarray(spectra["steps"], dtype=float), spectra[f"layer{last}"][row]

    @cached_property
    def staircase(self) -> dict[int, steptest.StaircaseTest]:
        return {
            s: steptest.staircase_test(
                *self.last_layer_spectra(s), self.run.main_eps, n_null=self.n_null, seed=s, **self.denoise
            )
            for s in self.run.healthy_seeds
        }

    @cached_property
    def rank_only(self) -> dict[int, float]:
        """A1's integer test on the eps-rank itself: confounded with the spectrum's spacing (a
        description, see docs/claims.md)."""
        return {
            s: steptest.levels_test(self.series(s)["step"], self.series(s)["eps_rank"], self.n_null, s, **self.denoise)[
                "p_value"
            ]
            for s in self.run.healthy_seeds
        }

    def coupling(self, transform) -> dict[int, steptest.CouplingTest]:
        out = {}
        for s in self.run.healthy_seeds:
            m = self.series(s)
            out[s] = steptest.coupling_test(
                m["step"], m["eps_rank"], transform(m), self.window, self.n_null, seed=s, **self.denoise
            )
        return out

    @cached_property
    def loss_coupling(self) -> dict[int, steptest.CouplingTest]:
        return self.coupling(lambda m: np.log(m["loss"].to_numpy(float)))

    @cached_property
    def bound_coupling(self) -> dict[int, steptest.CouplingTest]:
        return self.coupling(lambda m: np.sqrt(m["eps_bound"].to_numpy(float)))


def seed_tests(run: Run, settings: dict | None = None) -> pd.DataFrame:
    """One row per healthy seed of a run: A1's stall prominence and p, A2's and A3's coupling
    statistic and p, A3's non-vacuous share (the numbers the audit combines; the notebooks show
    them). ``settings``: the analysis settings (:func:`analysis_settings` keys)."""
    tests = SeedTests(run, {**ANALYSIS_DEFAULTS, **(settings or {})})
    rows = []
    for seed in run.healthy_seeds:
        a1, a2 = tests.staircase[seed], tests.loss_coupling[seed]
        row = dict(variant=run.variant, seed=seed, a1_statistic=a1.statistic, a1_p=a1.p_value, a1_stall_step=a1.step)
        row |= dict(a2_statistic=a2.statistic, a2_p=a2.p_value)
        if "eps_bound" in run.metrics:
            bound = tests.series(seed)["eps_bound"].to_numpy(float)
            row |= dict(a3_nonvacuous=float(np.mean(bound > 0)), a3_p=tests.bound_coupling[seed].p_value)
        rows.append(row)
    return pd.DataFrame(rows)


class ExperimentAudit:
    """The rows of every claim of one experiment (paper A), from its runs on disk."""

    def __init__(self, name: str, runs: list[Run], config: dict):
        self.name = name
        self.runs = runs
        self.t = registry.thresholds(config)
        self.settings = analysis_settings(config)
        self.comparison = config["experiments"][name].get("comparison")
        self.tests = {r.variant: SeedTests(r, self.settings) for r in runs}
        self.seed_records: list[dict] = []  # <root>/audit/seeds.csv

    # ---- helpers ---------------------------------------------------------------------------------
    @property
    def paths(self) -> list[str]:
        return [str(r.path) for r in self.runs]

    def healthy(self) -> list[tuple[Run, int]]:
        return [(r, s) for r in self.runs for s in r.healthy_seeds]

    def seed_notes(self, n: int) -> tuple[str | None, list[str]]:
        """(INCONCLUSIVE or None, notes on excluded seeds) for a statistic over ``n`` seeds."""
        notes = [
            f"excluded (diverged): {r.variant}/seed{s} {st}"
            for r in self.runs
            for s, st in r.status.items()
            if st != "ok"
        ]
        few = vd.too_few_seeds(n, self.t["min_seeds"])
        return (INCONCLUSIVE, [*notes, few]) if few else (None, notes)

    def record(self, claim, variant, seed, statistic, value, p_value, null, detail="") -> None:
        self.seed_records.append(
            dict(claim=claim, experiment=self.name, variant=variant, seed=seed, statistic=statistic, value=value)
            | dict(p_value=p_value, null=null, detail=detail)
        )

    def common(self, n: int, detail_parts=()) -> dict:
        verdict, notes = self.seed_notes(n)
        fields = dict(n=n, runs=self.paths, detail="; ".join([*filter(None, detail_parts), *notes]))
        if verdict:
            fields["verdict"] = verdict
        return fields

    @cached_property
    def cells(self) -> pd.DataFrame:
        """One row per variant (cell): its factors, A1's decision over its healthy seeds and the
        cell's other numbers (:func:`staircase.claims.judges.cells.regime_table`, on this audit's
        per-seed tests)."""
        from staircase.claims.judges import cells  # cells builds on this module

        return cells.cell_table(self.runs, self.tests, self.t)

    def cell(self, run: Run) -> ExperimentAudit:
        """This audit restricted to one variant (cell), sharing its per-seed tests and records."""
        sub = copy.copy(self)
        sub.runs = [run]
        sub.__dict__.pop("cells", None)
        return sub

    def per_cell(self, judge_cell) -> list[vd.Row]:
        """A claim judged per variant (cell), never on the variants' seeds pooled: ``judge_cell``'s
        rows for each cell, their metric prefixed with the variant when there are several. The
        experiment's verdict combines them as any rows (:func:`staircase.claims.verdicts.combine`):
        it passes only when every cell's tests pass, so one cell never carries another
        (docs/claims.md, "Cells, not pools")."""
        if len(self.runs) == 1:
            return judge_cell(self)
        rows = []
        for run in self.runs:
            for row in judge_cell(self.cell(run)):
                row.metric = f"cell {run.variant}: {row.metric}"
                rows.append(row)
        return rows

    def rows(self, claim: str) -> list[vd.Row]:
        """The rows of ``claim``, by the judge module the registry declares for it (paper A's claims;
        papers B and C judge studies, not experiments: none here)."""
        if registry.claims()[claim]["paper"] != "A":
            return []
        return importlib.import_module(registry.judge_module(claim)).judge(self)


def coupling_row(audit: ExperimentAudit, claim, what, results: list, null_what: str, extra=()) -> vd.Row:
    value, spread, n = vd.summarise([c.statistic for *_, c in results])
    p = steptest.fisher([c.p_value for *_, c in results])
    q95s = [c.null_q95 for *_, c in results if np.isfinite(c.null_q95)]
    q95 = np.median(q95s) if q95s else np.nan
    rises = sum(c.n_rises for *_, c in results)
    return vd.pvalue_row(
        claim,
        audit.name,
        f"{what}, fastest within {steptest.COUPLING_LAG} measurements after each rise: mean percentile at the "
        f"rank's rises among the intervals of its active period within {audit.settings['loss_window']} "
        "measurements (0.5 at chance; Fisher over seeds)",
        value,
        p,
        audit.t["alpha"],
        f"{null_what} (95% of the null below {q95:.3g})",
        spread=spread,
        **audit.common(n, [f"{rises} rises", *extra]),
    )
