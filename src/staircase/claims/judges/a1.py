"""A1 - the eps-rank rises in a staircase, judged per variant (cell):
:func:`staircase.core.steptest.staircase_test` per healthy seed (the stall prominence of the
spectrum's motion at eps against one growth phase), Fisher-combined over the cell's seeds; the
same test on the eps-rank alone and the stair count are descriptions."""

from __future__ import annotations

import numpy as np

from staircase.claims import verdicts as vd
from staircase.claims.judges.context import PASS, ExperimentAudit
from staircase.core import stairs, steptest
from staircase.records.runs import Run


def judge(audit: ExperimentAudit) -> list[vd.Row]:
    return audit.per_cell(judge_cell)


def judge_cell(audit: ExperimentAudit) -> list[vd.Row]:
    tests = [(r, s, audit.tests[r.variant].staircase[s]) for r, s in audit.healthy()]
    for r, s, res in tests:
        where = f"stall from step {res.step:g} held {res.hold_ratio:.3g}x as long" if res.statistic else "no stall"
        audit.record(
            "A1",
            r.variant,
            s,
            "stall prominence",
            res.statistic,
            res.p_value,
            f"median {res.null_median:.3g}, 95% {res.null_q95:.3g}",
            f"{where} as the motion around it; eps-rank rose {res.rank_rise}; "
            f"null noise sigma {res.noise[0]:g}, rho {res.noise[1]:g}; stall p {res.stall_p:.3g}, "
            f"burst share {res.burst:.3g} (p {res.burst_p:.3g}, contrast {res.burst_contrast:.3g}); "
            f"{res.excursions} excursion(s) masked",
        )
    return _a1_tests(audit, tests) + _a1_descriptions(audit)


def _a1_tests(audit: ExperimentAudit, tests: list[tuple[Run, int, steptest.StaircaseTest]]) -> list[vd.Row]:
    """A1's two tests over the healthy seeds' staircase tests (run, seed, test): the Fisher p of
    the stall prominence, and its effect size (the stall ratio)."""
    value, spread, n = vd.summarise([res.statistic for *_, res in tests])
    p = steptest.fisher([res.p_value for *_, res in tests])
    alpha = audit.t["alpha"]
    beat = sum(vd.compare_p(res.p_value, alpha) == PASS for *_, res in tests)
    null_med = np.median([res.null_median for *_, res in tests]) if tests else np.nan
    per_seed = ", ".join(f"{r.variant}/seed{s} p={res.p_value:.3g}" for r, s, res in tests)
    r_value, r_spread, _ = vd.summarise([res.effect for *_, res in tests])
    return [
        vd.pvalue_row(
            "A1",
            audit.name,
            "stall prominence of the spectrum at eps (log of how much longer its most prominent stall "
            "lasted than its motion around it) and its burst share, Bonferroni per seed, Fisher over seeds",
            value,
            p,
            alpha,
            f"one growth phase of the spectrum's motion, rounded, matched AR(1) noise (null median {null_med:.3g})",
            spread=spread,
            **audit.common(n, [f"{beat} of {n} seeds beat the null alone", per_seed]),
        ),
        vd.threshold_row(
            "A1",
            audit.name,
            "effect size: how many times longer the most prominent stall lasted than the motion around it, "
            "or the burst contrast where the burst share decided (median over seeds)",
            r_value,
            ">=",
            audit.t["a1_min_stall_ratio"],
            null=f"one growth phase: 1 (its simulations' median {np.exp(null_med):.3g})",
            spread=r_spread,
            **audit.common(n),
        ),
    ]


def _a1_descriptions(audit: ExperimentAudit) -> list[vd.Row]:
    """What A1 reports beside its tests: the same test on the eps-rank alone, and the stairs."""
    rank_only = [audit.tests[r.variant].rank_only[s] for r, s in audit.healthy()]
    counts = []
    for r, s in audit.healthy():
        m = audit.tests[r.variant].series(s)
        counts.append(stairs.segment(m["step"], m["eps_rank"], **audit.tests[r.variant].denoise).n_stairs)
    value, spread, n = vd.summarise(counts)
    return [
        vd.description_row(
            "A1",
            audit.name,
            "the same test on the eps-rank alone, Fisher p (confounded with the spacing of the spectrum: not evidence)",
            steptest.fisher(rank_only),
            n=len(rank_only),
            runs=audit.paths,
        ),
        vd.description_row(
            "A1",
            audit.name,
            "detected stairs (upward jumps between plateaus; a rounded smooth rise has one per level)",
            value,
            spread=spread,
            n=n,
            runs=audit.paths,
        ),
    ]
