"""A6 and A7 - methods against their baseline: the rows of :mod:`staircase.claims.comparison`
(A6's "cuts the staircase" judged by A1's decision per variant, its Spearman by a permutation p),
INCONCLUSIVE where a method has too few healthy seeds."""

from __future__ import annotations

from staircase.claims import comparison as cmp
from staircase.claims import verdicts as vd
from staircase.claims.judges.context import INCONCLUSIVE, ExperimentAudit


def rows(audit: ExperimentAudit, claim: str) -> list[vd.Row]:
    if not audit.comparison:
        return [vd.guard_row(claim, audit.name, "comparison", 0.0, ">=", 1.0, detail="no comparison: block")]
    runs = {r.variant: r for r in audit.runs}
    summary = cmp.summary_table(cmp.seed_table(runs, audit.comparison, cmp.choose_clock(runs)), audit.comparison)
    few = [f"{r.variant} ({len(r.healthy_seeds)})" for r in audit.runs if len(r.healthy_seeds) < audit.t["min_seeds"]]
    # A6's "cuts the staircase" is judged by A1's test on each method and its baseline
    a1_pass = _a1_decisions(audit) if claim == "A6" else None
    rows = []
    for v in cmp.verdicts(summary, audit.comparison, a1_pass, audit.t["alpha"]).query("claim == @claim").itertuples():
        detail = v.detail + (f"; too few healthy seeds: {', '.join(few)}" if few else "")
        verdict = INCONCLUSIVE if few else v.verdict
        fields = dict(null=v.null, n=v.n, detail=detail, runs=audit.paths, verdict=verdict, p_value=v.p_value)
        rows.append(vd.role_row(v.role, claim, audit.name, v.metric, v.value, v.op, v.threshold, **fields))
    return rows or [vd.guard_row(claim, audit.name, "methods", 0.0, ">=", 1.0, detail="no method of this claim")]


def _a1_decisions(audit: ExperimentAudit) -> dict:
    """A1's decision per variant (None: too few seeds, or no spectra.npz to test)."""
    if not all((r.path / "spectra.npz").exists() for r in audit.runs):
        return {}
    return {c.variant: c.a1_pass for c in audit.cells.itertuples()}
