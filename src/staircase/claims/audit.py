"""The claims audit: from results already on disk to a verdict per claim and experiment.

Each claim of the registry (``src/staircase/claims/claims.yaml``, explained in docs/claims.md) that an
enabled experiment is tagged with (``claims:`` in config.yaml) is judged by rows of
:class:`staircase.claims.verdicts.Row`: tests against a stated null model (a p-value or a margin),
guards, self-checks and descriptions. Paper A's claims are evaluated here; papers B and C's in
:mod:`staircase.claims.lowrank`. Thresholds come from the config's ``audit:`` section over the
schema's defaults (:func:`staircase.claims.registry.thresholds`), the tests' settings from ``analysis:``.

* A1 - :func:`staircase.core.steptest.staircase_test` per healthy seed (the stall prominence of the
  spectrum's motion at eps against one growth phase), Fisher-combined over the experiment's seeds;
* A2 - :func:`staircase.core.steptest.coupling_test` of log loss at the rank's rises; Spearman described;
* A3 - the eps-rank's own bound (metrics.parquet ``eps_bound``): its non-vacuous share and the
  coupling test of its drops; violations of either bound are self-checks (ERROR);
* A4 - the share of sweep cells that beat A1's null, with the binomial p of that share; and one
  row over the cells of every experiment tagged A4 or A1-regime together (experiment
  ``<a>+<b>+...``): is the staircase universal across the sweep *and* the regime map;
* A1-regime - the regime map: A1's decision per cell (optimiser, learning rate, initialisation
  scale, target; :func:`regime_table`), each cell a description row, and the number of cells that
  pass against "no staircase anywhere" (binomial p);
* A5 - strict layer order per seed on every variant with >= 2 hidden layers, ties and reversals
  apart, counterexamples named;
* A6, A7 - :mod:`staircase.claims.comparison` (methods against their baseline).

Nothing is retrained: ``staircase audit`` reads <root>/runs (root: results/<scale>[-<tag>]) and
writes <root>/audit/claims.csv (one row per claim x experiment x statistic), seeds.csv (the
per-seed tests behind A1-A4) and claims.md (the same for a person, with the results root it
describes, figures, the tests' calibration and the code versions).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from staircase.claims import comparison as cmp
from staircase.claims import lowrank as lowrank_claims
from staircase.claims import registry
from staircase.claims import verdicts as vd
from staircase.core import stairs, steptest
from staircase.records.provenance import atomic_write
from staircase.records.runs import Run, experiment_runs, layer_order_shares, load_run, read_json, run_summary
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

    # ---- A1 --------------------------------------------------------------------------------------
    def a1(self) -> list[vd.Row]:
        tests = [(r, s, self.tests[r.variant].staircase[s]) for r, s in self.healthy()]
        for r, s, res in tests:
            where = f"stall from step {res.step:g} held {res.hold_ratio:.3g}x as long" if res.statistic else "no stall"
            self.record(
                "A1",
                r.variant,
                s,
                "stall prominence",
                res.statistic,
                res.p_value,
                f"median {res.null_median:.3g}, 95% {res.null_q95:.3g}",
                f"{where} as the motion around it; eps-rank rose {res.rank_rise}; "
                f"null noise sigma {res.noise[0]:g}, rho {res.noise[1]:g}",
            )
        return self._a1_tests(tests) + self._a1_descriptions()

    def _a1_tests(self, tests: list[tuple[Run, int, steptest.StaircaseTest]]) -> list[vd.Row]:
        """A1's two tests over the healthy seeds' staircase tests (run, seed, test): the Fisher p of
        the stall prominence, and its effect size (the stall ratio)."""
        value, spread, n = vd.summarise([res.statistic for *_, res in tests])
        p = steptest.fisher([res.p_value for *_, res in tests])
        alpha = self.t["alpha"]
        beat = sum(vd.compare_p(res.p_value, alpha) == PASS for *_, res in tests)
        null_med = np.median([res.null_median for *_, res in tests]) if tests else np.nan
        per_seed = ", ".join(f"{r.variant}/seed{s} p={res.p_value:.3g}" for r, s, res in tests)
        r_value, r_spread, _ = vd.summarise([res.hold_ratio for *_, res in tests])
        return [
            vd.pvalue_row(
                "A1",
                self.name,
                "stall prominence of the spectrum at eps: log of how much longer its most prominent stall "
                "lasted than its motion around it (Fisher over seeds)",
                value,
                p,
                alpha,
                f"one growth phase of the spectrum's motion, rounded, matched AR(1) noise (null median {null_med:.3g})",
                spread=spread,
                **self.common(n, [f"{beat} of {n} seeds beat the null alone", per_seed]),
            ),
            vd.threshold_row(
                "A1",
                self.name,
                "effect size: how many times longer the most prominent stall lasted than the motion around it "
                "(median over seeds)",
                r_value,
                ">=",
                self.t["a1_min_stall_ratio"],
                null=f"one growth phase: 1 (its simulations' median {np.exp(null_med):.3g})",
                spread=r_spread,
                **self.common(n),
            ),
        ]

    def _a1_descriptions(self) -> list[vd.Row]:
        """What A1 reports beside its tests: the same test on the eps-rank alone, and the stairs."""
        rank_only = [self.tests[r.variant].rank_only[s] for r, s in self.healthy()]
        counts = []
        for r, s in self.healthy():
            m = self.tests[r.variant].series(s)
            counts.append(stairs.segment(m["step"], m["eps_rank"], **self.tests[r.variant].denoise).n_stairs)
        value, spread, n = vd.summarise(counts)
        return [
            vd.description_row(
                "A1",
                self.name,
                "the same test on the eps-rank alone, Fisher p (confounded with the spacing of the spectrum: "
                "not evidence)",
                steptest.fisher(rank_only),
                n=len(rank_only),
                runs=self.paths,
            ),
            vd.description_row(
                "A1",
                self.name,
                "detected stairs (upward jumps between plateaus; a rounded smooth rise has one per level)",
                value,
                spread=spread,
                n=n,
                runs=self.paths,
            ),
        ]

    # ---- A2 --------------------------------------------------------------------------------------
    def _coupling_row(self, claim, what, results: list, null_what: str, extra=()) -> vd.Row:
        value, spread, n = vd.summarise([c.statistic for *_, c in results])
        p = steptest.fisher([c.p_value for *_, c in results])
        q95 = np.nanmedian([c.null_q95 for *_, c in results]) if results else np.nan
        rises = sum(c.n_rises for *_, c in results)
        return vd.pvalue_row(
            claim,
            self.name,
            f"{what}: mean percentile at the rank's rises among the intervals within "
            f"{self.settings['loss_window']} measurements (0.5 at chance; Fisher over seeds)",
            value,
            p,
            self.t["alpha"],
            f"{null_what} (95% of the null below {q95:.3g})",
            spread=spread,
            **self.common(n, [f"{rises} rises", *extra]),
        )

    def a2(self) -> list[vd.Row]:
        results = [(r, s, self.tests[r.variant].loss_coupling[s]) for r, s in self.healthy()]
        for r, s, c in results:
            self.record("A2", r.variant, s, "loss drop at rises (percentile)", c.statistic, c.p_value, "0.5")
        rho = []
        for r, s in self.healthy():
            m = self.tests[r.variant].series(s)
            rho.append(stairs.spearman(m["loss"], m["eps_rank"])[0])
        value, spread, n = vd.summarise(rho)
        return [
            self._coupling_row(
                "A2",
                "loss drop rate (log loss per step)",
                results,
                "no coupling beyond the shared trend: each rise moved at random within its window",
            ),
            vd.description_row(
                "A2",
                self.name,
                "Spearman(loss, eps-rank) over checkpoints (a shared trend suffices: not evidence)",
                value,
                spread=spread,
                n=n,
                runs=self.paths,
            ),
        ]

    # ---- A3 --------------------------------------------------------------------------------------
    def a3(self) -> list[vd.Row]:
        missing = [r for r in self.runs if "eps_bound" not in r.metrics]
        unknown = [r for r in self.runs if "eps_bound" in r.metrics and not r.metrics["eps_bound"].notna().any()]
        if missing or unknown:
            why = (
                "these runs predate the eps-rank's bound: re-run their training"
                if missing
                else ("no bound recorded (a run tracked without the exact solution: Tracker(target=...))")
            )
            return [
                vd.guard_row(
                    "A3",
                    self.name,
                    "the eps-rank's bound (metrics.parquet eps_bound)",
                    0.0,
                    ">=",
                    1.0,
                    detail=why,
                    runs=self.paths,
                )
            ]
        shares, tight, rank_gap = [], [], []
        for r, s in self.healthy():
            m = self.tests[r.variant].series(s)
            bound, err = m["eps_bound"].to_numpy(float), m["error_sq"].to_numpy(float)
            shares.append(float(np.mean(bound > 0)))
            pos = bound > 0
            tight.append(float(np.median(bound[pos] / err[pos])) if pos.any() else np.nan)
            if "bound_rank" in m:
                rank_gap.append(float(np.median(m["bound_rank"] - m["eps_rank"])))
            self.record("A3", r.variant, s, "non-vacuous share", shares[-1], np.nan, "0 (vacuous)")
        value, spread, n = vd.summarise(shares)
        coupling = [(r, s, self.tests[r.variant].bound_coupling[s]) for r, s in self.healthy()]
        return [
            self._bound_self_check(),
            vd.threshold_row(
                "A3",
                self.name,
                "share of checkpoints where the eps-rank's bound on the L2 error is above 0 (median over seeds)",
                value,
                ">=",
                self.t["a3_min_nonvacuous"],
                null="a vacuous bound (share 0)",
                spread=spread,
                **self.common(n),
            ),
            self._coupling_row(
                "A3",
                "drop rate of the square root of the bound",
                coupling,
                "the bound's drops unrelated to the rank's rises: each rise moved at random within its window",
            ),
            *self._bound_descriptions(tight, rank_gap),
        ]

    def _bound_self_check(self) -> vd.Row:
        """A3's self-check: both bounds (the loss's own and the eps-rank's) hold at every finite
        checkpoint of every seed."""
        finite = [r.metrics[np.isfinite(r.metrics["loss"])] for r in self.runs]
        loss_checks = sum(int(m["lower_bound"].notna().sum()) for m in finite)
        loss_viol = sum(int(m["bound_violation"].sum()) for m in finite)
        eps_checks = sum(int(m["eps_bound"].notna().sum()) for m in finite)
        eps_viol = sum(int(m["eps_bound_violation"].sum()) for m in finite)
        return vd.self_check_row(
            "A3",
            self.name,
            "violations of loss >= bound (the loss's own system and the eps-rank's Gram)",
            loss_viol + eps_viol,
            loss_checks + eps_checks,
            detail=f"{loss_viol} of {loss_checks} (training loss), {eps_viol} of {eps_checks} (L2 error); "
            "a violation is a bug, not a result",
            runs=self.paths,
        )

    def _bound_descriptions(self, tight: list[float], rank_gap: list[float]) -> list[vd.Row]:
        """What A3 reports beside its tests: the bound's tightness per seed and the rank gap."""
        t_value, t_spread, t_n = vd.summarise(tight)
        g_value, g_spread, g_n = vd.summarise(rank_gap)
        return [
            vd.description_row(
                "A3",
                self.name,
                "tightness: bound / squared L2 error where the bound is above 0 (median over seeds)",
                t_value,
                spread=t_spread,
                n=t_n,
                runs=self.paths,
            ),
            vd.description_row(
                "A3",
                self.name,
                "rank of the training loss's own bound minus the eps-rank (median over checkpoints; on PDE "
                "tasks it counts directions of the operator's images, not of the features)",
                g_value,
                spread=g_spread,
                n=g_n,
                runs=self.paths,
            ),
        ]

    # ---- A1 per cell: A4 and the regime map --------------------------------------------------------
    @cached_property
    def cells(self) -> pd.DataFrame:
        """One row per variant (cell): its factors, A1's decision over its healthy seeds and the
        cell's other numbers (:func:`regime_table`, on this audit's per-seed tests)."""
        return _cell_table(self.runs, self.tests, self.t)

    def record_cells(self, claim: str) -> None:
        for c in self.cells.itertuples():
            if np.isfinite(c.a1_p):
                self.record(
                    claim, c.variant, -1, "cell passes A1 (Fisher p, stall ratio)", float(c.a1_pass), c.a1_p,
                    f"x{c.a1_stall_ratio:.3g}",
                )  # fmt: skip

    def a4(self) -> list[vd.Row]:
        self.record_cells("A4")
        return [cells_row(self.name, [(self.name, self.cells)], self.t, self.paths)]

    # ---- A1-regime ---------------------------------------------------------------------------------
    def a1_regime(self) -> list[vd.Row]:
        """The regime map: each cell's A1 as a description (its verdict, Fisher p, stall ratio, A2,
        stairs, final error), and the test: do more cells pass A1 than chance allows?"""
        for r, s in self.healthy():
            res = self.tests[r.variant].staircase[s]
            self.record(
                "A1-regime", r.variant, s, "stall prominence", res.statistic, res.p_value,
                f"median {res.null_median:.3g}, 95% {res.null_q95:.3g}",
                f"stall held {res.hold_ratio:.3g}x as long as the motion around it; eps-rank rose {res.rank_rise}",
            )  # fmt: skip
        self.record_cells("A1-regime")
        t, cells = self.t, self.cells
        passing, n, p_binom = _count_passing(cells, t["alpha"])
        rows = [
            vd.pvalue_row(
                "A1-regime",
                self.name,
                "share of the map's cells that pass A1 (Fisher p <= alpha and stall ratio >= a1_min_stall_ratio); "
                "p: binomial, of that many passing cells if none had a staircase",
                passing / n if n else float("nan"),
                p_binom,
                t["alpha"],
                f"no staircase anywhere: each cell passes with probability at most {t['alpha']:g} "
                f"({n * t['alpha']:.2g} of {n} cells expected)",
                n=n,
                detail=_cells_detail(cells),
                runs=self.paths,
                verdict=INCONCLUSIVE if not n else None,
            )
        ]
        for c in cells.itertuples():
            verdict = (
                "too few healthy seeds" if not np.isfinite(c.a1_p) else "passes A1" if c.a1_pass else "does not pass A1"
            )
            rows.append(
                vd.description_row(
                    "A1-regime",
                    self.name,
                    f"cell {c.variant} ({c.cell}): A1 stall ratio (median over seeds), Fisher p",
                    c.a1_stall_ratio,
                    p_value=c.a1_p,
                    n=int(c.seeds_ok),
                    detail=f"{verdict}; A2 Fisher p {c.a2_p:.2g}; eps-rank rose {c.rank_rise:g}; stairs "
                    f"{c.n_stairs:g}; final loss {c.final_loss:.3g}, relative L2 error {c.final_rel_l2:.3g}"
                    + (f"; {c.status}" if c.status != "ok" else ""),
                    runs=[str(r.path) for r in self.runs if r.variant == c.variant],
                )
            )
        return rows

    # ---- A5 --------------------------------------------------------------------------------------
    def a5(self) -> list[vd.Row]:
        strict, ties, reversals, saturated, counter, shallow = [], [], [], [], [], []
        for r in self.runs:
            shares = layer_order_shares(r)
            if shares.empty:
                shallow.append(r.variant)
                continue
            shares = shares[shares["seed"].isin(r.healthy_seeds)]
            for seed, g in shares.groupby("seed"):
                saturated.append(g["saturated"].mean())
                n = g["checkpoints"].sum()
                if not n:
                    continue  # every pair at full rank throughout: nothing to order
                strict.append(float((g["strict"] * g["checkpoints"]).sum() / n))
                ties.append(float((g["ties"] * g["checkpoints"]).sum() / n))
                reversals.append(float((g["reversals"] * g["checkpoints"]).sum() / n))
                null = (1 - ties[-1]) / 2
                self.record("A5", r.variant, seed, "strict layer order share", strict[-1], np.nan, f"{null:.3g}")
                for row in g[g["reversals"] > g["strict"]].itertuples():
                    counter.append(f"{r.variant}/seed{seed} layers {row.pair} ({row.reversals:.0%} reversed)")
        value, spread, n = vd.summarise(strict)
        parts = [
            f"ties {np.median(ties):.3g}, reversals {np.median(reversals):.3g} (medians)" if ties else "",
            f"checkpoints with both layers at full rank left out: {np.median(saturated):.0%} (median)"
            if saturated
            else "",
            f"counterexamples (more reversals than strict orders): {len(counter)}"
            + (f": {'; '.join(counter[:8])}" + (" ..." if len(counter) > 8 else "") if counter else ""),
            f"not tested (1 hidden layer): {', '.join(shallow)}" if shallow else "",
        ]
        if not strict:
            return [
                vd.guard_row(
                    "A5",
                    self.name,
                    "seeds with >= 2 hidden layers not all at full rank",
                    0.0,
                    ">=",
                    1.0,
                    detail="; ".join(filter(None, parts)),
                    runs=self.paths,
                )
            ]
        return [
            vd.threshold_row(
                "A5",
                self.name,
                "share of (checkpoint, adjacent layer pair) with r(l+1) > r(l) strictly (median over seeds)",
                value,
                ">=",
                self.t["a5_min_fraction"],
                null=f"exchangeable layers: strict share (1 - ties) / 2, median {(1 - np.median(ties)) / 2:.3g}",
                spread=spread,
                **self.common(n, parts),
            )
        ]

    # ---- A6, A7 ----------------------------------------------------------------------------------
    def methods(self, claim: str) -> list[vd.Row]:
        if not self.comparison:
            return [vd.guard_row(claim, self.name, "comparison", 0.0, ">=", 1.0, detail="no comparison: block")]
        runs = {r.variant: r for r in self.runs}
        summary = cmp.summary_table(cmp.seed_table(runs, self.comparison, cmp.choose_clock(runs)), self.comparison)
        few = [f"{r.variant} ({len(r.healthy_seeds)})" for r in self.runs if len(r.healthy_seeds) < self.t["min_seeds"]]
        rows = []
        for v in cmp.verdicts(summary, self.comparison).query("claim == @claim").itertuples():
            detail = v.detail + (f"; too few healthy seeds: {', '.join(few)}" if few else "")
            fields = dict(null=v.null, n=v.n, detail=detail, runs=self.paths, verdict=INCONCLUSIVE if few else None)
            rows.append(vd.role_row(v.role, claim, self.name, v.metric, v.value, v.op, v.threshold, **fields))
        return rows or [vd.guard_row(claim, self.name, "methods", 0.0, ">=", 1.0, detail="no method of this claim")]

    def rows(self, claim: str) -> list[vd.Row]:
        evaluate = {"A1": self.a1, "A2": self.a2, "A3": self.a3, "A4": self.a4, "A5": self.a5}.get(claim)
        if claim == "A1-regime":
            return self.a1_regime()
        if claim in ("A6", "A7"):
            return self.methods(claim)
        return evaluate() if evaluate else []


# ---- cells: A4 and the regime map ----------------------------------------------------------------
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


def _cell_table(runs: list[Run], tests: dict[str, SeedTests], t: dict) -> pd.DataFrame:
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
        rows.append(row)
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
    return _cell_table(runs, {r.variant: SeedTests(r, settings) for r in runs}, t)


def _passed(verdicts: pd.Series) -> pd.Series:
    """True where a cell passed A1 (False where it did not or could not be judged)."""
    return verdicts.map(lambda v: False if pd.isna(v) else bool(v)).astype(bool)


def _count_passing(cells: pd.DataFrame, alpha: float) -> tuple[int, int, float]:
    """(cells that pass A1, cells judged, binomial p of that many passing if each passed with
    probability alpha): the test of A1-regime and of A4 over cells. Cells with too few healthy
    seeds are left out."""
    judged = cells[cells["a1_pass"].notna()] if len(cells) else cells
    n = len(judged)
    passing = int(_passed(judged["a1_pass"]).sum()) if n else 0
    return passing, n, float(stats.binom.sf(passing - 1, n, alpha)) if n else float("nan")


def _cells_detail(cells: pd.DataFrame, prefix: str = "") -> str:
    """The cells named by their A1 verdict: pass; do not (tested); the eps-rank rose by less than
    2 (nothing to test, no staircase: counted as not passing); too few healthy seeds (left out)."""
    judged = cells[cells["a1_pass"].notna()]

    def named(rows):
        return ", ".join(f"{prefix}{c.variant} (p={c.a1_p:.2g}, x{c.a1_stall_ratio:.2g})" for c in rows) or "none"

    flat = [c for c in judged.itertuples() if not c.a1_pass and c.rank_rise < 2]
    parts = [
        f"pass A1: {named(c for c in judged.itertuples() if c.a1_pass)}",
        f"do not: {named(c for c in judged.itertuples() if not c.a1_pass and c.rank_rise >= 2)}",
        f"the eps-rank rose by less than 2 (no staircase, nothing to test): "
        f"{', '.join(f'{prefix}{c.variant}' for c in flat)}"
        if flat
        else "",
        "too few healthy seeds: "
        + ", ".join(f"{prefix}{c.variant} ({c.seeds_ok} healthy)" for c in cells.itertuples() if pd.isna(c.a1_pass))
        if cells["a1_pass"].isna().any()
        else "",
    ]
    return "; ".join(filter(None, parts))


def cells_row(name: str, tables: list[tuple[str, pd.DataFrame]], t: dict, paths: list[str]) -> vd.Row:
    """A4's test over the cells of one or more experiments: the share that pass A1 against
    ``a4_min_fraction``, with the binomial p under "no staircase anywhere" and the cells named
    (prefixed with their experiment when there are several)."""
    alpha = t["alpha"]
    several = len(tables) > 1
    cells = pd.concat([table for _, table in tables], ignore_index=True)
    passing, n, p_binom = _count_passing(cells, alpha)
    fraction = passing / n if n else float("nan")
    detail = "; ".join(
        (f"{exp}: " if several else "") + _cells_detail(table, f"{exp}/" if several else "")
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


# ---- the audit ---------------------------------------------------------------------------------
def no_results(claim: str, experiment: str) -> vd.Row:
    return vd.guard_row(claim, experiment, "results", 0.0, ">=", 1.0, detail="no results found")


def _judge(experiment: str, runs: list[Run], config: dict, claims: list[str], seed_records: list | None) -> list:
    return _judge_rows(ExperimentAudit(experiment, runs, config), claims, seed_records)


def _judge_rows(judge: ExperimentAudit, claims: list[str], seed_records: list | None) -> list:
    rows = [row for claim in claims for row in judge.rows(claim)]
    if seed_records is not None:
        seed_records.extend(judge.seed_records)
    return rows


def evaluate(config: dict, results: str | os.PathLike | None = None, seed_records: list | None = None) -> pd.DataFrame:
    """claims.csv as a DataFrame: every tagged claim of every enabled experiment and study, from
    the runs under ``results`` (default: the config's results root, results/<scale>[-<tag>])."""
    results = Path(results or cfgmod.results_root(config))
    rows: list[vd.Row] = []
    judges: dict[str, ExperimentAudit] = {}
    for experiment in cfgmod.enabled_experiments(config):
        claims = [c for c in config["experiments"][experiment].get("claims", []) if c in registry.claims()]
        runs = config_runs(config, results, experiment)
        if not runs:
            rows.extend(no_results(c, experiment) for c in claims)
            continue
        judge = judges[experiment] = ExperimentAudit(experiment, runs, config)
        rows.extend(_judge_rows(judge, claims, seed_records))
    across = across_row(judges, config)  # A4 over the sweep and the regime map together
    if across is not None:
        rows.append(across)
    rows.extend(lowrank_claims.audit_rows(config, results))  # papers B and C
    return vd.to_frame(rows)


# ---- runs given by hand (a tracker's run, staircase audit --runs) -------------------------------
def run_claims(runs: list[Run]) -> list[str]:
    """The claims of paper A that runs of one experiment can be judged on from their own data: A1
    always; A2 when a loss was recorded; A3 when the eps-rank's bound was (metrics.parquet
    ``eps_bound``); A5 when some run has >= 2 hidden layers. (A4 needs a sweep, A6 and A7 a
    comparison: they come from a config's experiments.)"""
    claims = ["A1"]
    if all(r.metrics["loss"].notna().any() for r in runs):
        claims.append("A2")
    if all("eps_bound" in r.metrics and r.metrics["eps_bound"].notna().any() for r in runs):
        claims.append("A3")
    if any(r.depth >= 2 for r in runs):
        claims.append("A5")
    return claims


def runs_config(runs: list[Run], config: dict | None = None) -> dict:
    """A config for run directories given by hand: each run's experiment (run.json) tagged with
    :func:`run_claims`, and the ``audit:`` and ``analysis:`` sections of ``config`` (the schema's
    defaults where it has none)."""
    config = config or {}
    by_experiment: dict[str, list[Run]] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment, []).append(run)
    return {
        "audit": dict(config.get("audit") or {}),
        "analysis": dict(config.get("analysis") or {}),
        "experiments": {name: {"claims": run_claims(rs)} for name, rs in by_experiment.items()},
    }


def load_given_runs(paths) -> list[Run]:
    """The run directories ``paths`` (each with run.json and metrics.parquet), checked."""
    runs, seen = [], {}
    for path in paths:
        path = Path(path)
        if not ((path / "run.json").exists() and (path / "metrics.parquet").exists()):
            raise cfgmod.ConfigError(
                f"staircase audit: {path} is not a run directory (no run.json and metrics.parquet)"
            )
        run = load_run(path)
        key = (run.experiment, run.variant)
        if key in seen:
            raise cfgmod.ConfigError(f"staircase audit: {seen[key]} and {path} are both {'/'.join(key)}; give one")
        seen[key] = path
        runs.append(run)
    return runs


def given_run_notes(paths) -> list[str]:
    """What the verdicts on runs given by hand should be read with: a run that stopped before its
    Tracker's close() (run.json ``complete: false``), and bounds a Tracker left out (``bound_note``)."""
    notes = []
    for path in paths:
        info = read_json(Path(path) / "run.json")
        if info.get("complete") is False:
            notes.append(
                f"{path} is incomplete ({info.get('stopped') or 'stopped early'}): judged on the steps it holds."
            )
        if info.get("bound_note"):
            notes.append(f"{path}: {info['bound_note']}.")
    return notes


def evaluate_runs(paths, config: dict | None = None, seed_records: list | None = None) -> pd.DataFrame:
    """claims.csv as a DataFrame for run directories given by hand (e.g. a :class:`staircase.training.tracker.
    Tracker`'s): each experiment among them judged on :func:`run_claims`, with ``config``'s thresholds
    and test settings (the schema's defaults where it has none)."""
    runs = load_given_runs(paths)
    minimal = runs_config(runs, config)
    rows: list[vd.Row] = []
    for experiment, settings in minimal["experiments"].items():
        mine = [r for r in runs if r.experiment == experiment]
        rows.extend(_judge(experiment, mine, minimal, settings["claims"], seed_records))
    return vd.to_frame(rows)


def overall(frame: pd.DataFrame) -> pd.DataFrame:
    return vd.overall(frame)


def code_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """The code behind the runs: one row per distinct (commit, dirty, package version)."""
    seen = []
    for paths in frame["runs"].dropna():
        for path in filter(None, str(paths).split(";")):
            info = read_json(Path(path) / "run.json")
            seen.append(
                {
                    "git_commit": info.get("git_commit"),
                    "git_dirty": info.get("git_dirty"),
                    "package_version": info.get("package_version"),
                    "run": path,
                }
            )
    if not seen:
        return pd.DataFrame(columns=["git_commit", "git_dirty", "package_version", "runs"])
    df = pd.DataFrame(seen).drop_duplicates("run")
    return (
        df.groupby(["git_commit", "git_dirty", "package_version"], dropna=False)["run"]
        .agg(lambda s: len(s))
        .rename("runs")
        .reset_index()
    )


def _fmt(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4g}"


def figure_links(frame: pd.DataFrame, figures_dir: str) -> list[str]:
    """Per experiment: links to the registry's figures of the claims it was audited for."""
    lines = []
    # studies (b/c) and rows over several experiments (a+b) have no figures of their own
    for experiment in dict.fromkeys(e for e in frame["experiment"] if "/" not in e and "+" not in e):
        tested = set(frame.loc[frame["experiment"] == experiment, "claim"])
        names = [
            f"{name}_{experiment}" if fig["scope"] == "experiment" else name
            for name, fig in registry.figures().items()
            if fig.get("kind", "figure") == "figure"
            and tested & set(fig["claims"])
            and fig["scope"] in ("experiment", "claim")
        ]
        lines.append(f"- {experiment}: " + ", ".join(f"[{n}]({figures_dir}/{n}.png)" for n in names))
    return lines


def to_markdown(
    frame: pd.DataFrame,
    versions: pd.DataFrame,
    calibration: pd.DataFrame | None = None,
    where: dict | None = None,
    figures: bool = True,
) -> str:
    """claims.md; ``where``: the results root, scale and tag it describes (the code versions follow
    at the end); ``figures``: link the workflow's figures of the claims (runs given by hand have none)."""
    lines = ["# Claims audit", ""]
    if where:
        commits = ", ".join(f"{v.git_commit}{' (dirty)' if v.git_dirty else ''}" for v in versions.itertuples())
        lines += [
            "This audit describes "
            + "; ".join(f"{k} **{v}**" for k, v in where.items())
            + f"; code: {commits or 'unknown'} (see the end).",
            "",
        ]
    verdicts = overall(frame)
    counts = verdicts["verdict"].value_counts()
    lines.append(
        f"**{summary_counts(counts)}** (claim x experiment). Each claim is judged by its tests against a "
        "stated null model (p-value or margin); self-checks are identities (a violation is a bug: ERROR); "
        "descriptions are reported, not evidence. Thresholds: the `audit:` section of config.yaml; "
        "statistics and nulls: src/staircase/claims/claims.yaml and docs/claims.md."
    )
    lines += ["", "| claim | experiment | verdict | what is claimed |", "|---|---|---|---|"]
    for v in verdicts.itertuples():
        lines.append(f"| {v.claim} | {v.experiment} | **{v.verdict}** | {registry.claim_text(v.claim)} |")
    lines += ["", "## Evidence", ""]
    lines += [
        "| claim | experiment | statistic | role | value | spread | n | null model | p | threshold | margin | verdict |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in frame.itertuples():
        cells = [r.claim, r.experiment, r.metric, r.role, _fmt(r.value), r.spread, r.n, r.null, _fmt(r.p_value)]
        cells += [r.threshold, _fmt(r.margin), f"**{r.verdict}**"]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    details = [r for r in frame.itertuples() if r.detail]
    if details:
        lines += ["", "## Details", ""]
        lines += [f"- **{r.claim} {r.experiment}** ({r.metric}): {r.detail}" for r in details]
    if calibration is not None and len(calibration):
        lines += ["", "## How often the tests err (synthetic ensembles of this run: <root>/calibration)", ""]
        lines += ["| test | ensemble | measures | draws | rate | 95% interval |", "|---|---|---|---|---|---|"]

        def rate(x: float) -> str:  # a rate below 0.001 keeps its digits (the map's test: 8e-05, not 0.000)
            return f"{x:.2g}" if 0 < x < 1e-3 else f"{x:.3f}"

        for c in calibration.itertuples():
            interval = f"[{rate(c.ci_low)}, {rate(c.ci_high)}]"
            lines.append(f"| {c.test} | {c.ensemble} | {c.measures} | {c.draws} | {rate(c.rate)} | {interval} |")
    links = figure_links(frame, "../figures") if figures and not frame.empty else []
    if links:
        lines += ["", "## Figures", "", *links]
    lines += ["", "## Code versions behind these runs", ""]
    if len(versions) > 1 or (len(versions) == 1 and bool(versions["git_dirty"].iloc[0])):
        lines += ["**Warning: the runs were not all produced by one clean commit.**", ""]
    lines += ["| git commit | dirty | package | runs |", "|---|---|---|---|"]
    lines += [f"| {v.git_commit} | {v.git_dirty} | {v.package_version} | {v.runs} |" for v in versions.itertuples()]
    return "\n".join(lines) + "\n"


def results_table(frame: pd.DataFrame) -> str:
    """The README's results table: one table for paper A's experiments, one for papers B and C's
    studies; each cell the verdict with the number that decided it (the p-value, or the value and
    its threshold, of the first failing test, else of the first test). Every verdict in it is a
    test against a null: descriptions never decide."""
    verdicts = overall(frame).set_index(["claim", "experiment"])["verdict"]
    out = []
    for studies in (False, True):
        part = frame[frame["experiment"].str.contains("/") == studies]
        claims = [c for c in registry.claims() if c in set(part["claim"])]
        if not claims:
            continue
        lines = [f"| {'study' if studies else 'experiment'} | " + " | ".join(claims) + " |"]
        lines.append("|---|" + "---|" * len(claims))
        for experiment in dict.fromkeys(part["experiment"]):
            cells = []
            for claim in claims:
                rows = part[(part["claim"] == claim) & (part["experiment"] == experiment)]
                decisive = rows[rows["role"].isin(["test", "guard", "self-check"])]
                if decisive.empty:
                    cells.append("")
                    continue
                failing = decisive[decisive["verdict"] != PASS]
                tests = decisive[decisive["role"] == "test"]
                shown = (failing if len(failing) else tests if len(tests) else decisive).iloc[0]
                number = (
                    f"p={shown.p_value:.2g}"
                    if np.isfinite(shown.p_value) and str(shown.threshold).startswith("p")
                    else f"{shown.value:.3g}, {shown.threshold}"
                )
                cells.append(f"{verdicts[(claim, experiment)]} ({number})")
            lines.append(f"| {experiment} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def summary_counts(counts) -> str:
    parts = [
        f"{counts.get(PASS, 0)} passed",
        f"{counts.get(FAIL, 0)} failed",
        f"{counts.get(INCONCLUSIVE, 0)} inconclusive",
    ]
    if counts.get(ERROR, 0):
        parts.append(f"{counts.get(ERROR, 0)} with a failed self-check (ERROR)")
    return ", ".join(parts)


def has_results(results) -> bool:
    return any(Path(results, "runs").glob("*/*/run.json"))


def run_audit(config: dict, results=None, out_dir=None, runs=None) -> pd.DataFrame:
    """Audit and write claims.csv, seeds.csv, claims.md and results_table.md to ``out_dir``: the
    config's experiments from ``results``, or the run directories ``runs`` (:func:`evaluate_runs`)."""
    results = Path(results or cfgmod.results_root(config))
    seed_records: list[dict] = []
    frame = evaluate(config, results, seed_records) if runs is None else evaluate_runs(runs, config, seed_records)
    versions = code_versions(frame)
    calib_path = results / "calibration" / "summary.csv"
    calibration = pd.read_csv(calib_path) if calib_path.exists() else None
    out = Path(out_dir or results / "audit")
    where = {"results root": str(results), "scale": config.get("scale", "small"), "tag": config.get("tag") or "none"}
    if runs is not None:  # runs given by hand have no scale or tag of the config, and no figures
        where = {"runs": ", ".join(map(str, runs))}
        notes = given_run_notes(runs)
        if notes:
            where["note"] = " ".join(notes)
    seeds = pd.DataFrame(
        seed_records,
        columns=["claim", "experiment", "variant", "seed", "statistic", "value", "p_value", "null", "detail"],
    )
    atomic_write(out / "claims.csv", lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write(out / "seeds.csv", lambda tmp: seeds.to_csv(tmp, index=False))
    markdown = to_markdown(frame, versions, calibration, where, figures=runs is None)
    atomic_write(out / "claims.md", lambda tmp: Path(tmp).write_text(markdown))
    atomic_write(out / "results_table.md", lambda tmp: Path(tmp).write_text(results_table(frame)))
    return frame


def summary_line(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "claims audit: no claims evaluated"
    verdicts = overall(frame)
    text = f"claims audit: {summary_counts(verdicts['verdict'].value_counts())}"
    bad = verdicts[verdicts["verdict"].isin([FAIL, ERROR])]
    if not bad.empty:
        text += " (failed: " + ", ".join(f"{r.claim}/{r.experiment}" for r in bad.itertuples()) + ")"
    return text
