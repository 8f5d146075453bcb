"""A2 - the loss falls as the eps-rank rises, judged per variant (cell):
:func:`staircase.core.steptest.coupling_test` of log loss at the rank's rises (a drop within
``COUPLING_LAG`` measurements after a rise counts; compared only within the rank's active period,
so a shared growth phase is not coupling), Fisher-combined over the cell's seeds;
Spearman(loss, eps-rank) described."""

from __future__ import annotations

from staircase.claims import verdicts as vd
from staircase.claims.judges.context import ExperimentAudit, coupling_row
from staircase.core import stairs


def judge(audit: ExperimentAudit) -> list[vd.Row]:
    return audit.per_cell(judge_cell)


def judge_cell(audit: ExperimentAudit) -> list[vd.Row]:
    results = [(r, s, audit.tests[r.variant].loss_coupling[s]) for r, s in audit.healthy()]
    for r, s, c in results:
        audit.record("A2", r.variant, s, "loss drop at rises (percentile)", c.statistic, c.p_value, "0.5")
    rho = []
    for r, s in audit.healthy():
        m = audit.tests[r.variant].series(s)
        rho.append(stairs.spearman(m["loss"], m["eps_rank"])[0])
    value, spread, n = vd.summarise(rho)
    return [
        coupling_row(
            audit,
            "A2",
            "loss drop rate (log loss per step)",
            results,
            "no coupling beyond the shared trend or growth phase: each rise moved at random within its window, "
            "inside the rank's active period",
        ),
        vd.description_row(
            "A2",
            audit.name,
            "Spearman(loss, eps-rank) over checkpoints (a shared trend suffices: not evidence)",
            value,
            spread=spread,
            n=n,
            runs=audit.paths,
        ),
    ]
