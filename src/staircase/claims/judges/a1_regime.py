"""A1-regime - the regime map: A1's decision per cell (optimiser, learning rate, initialisation
scale, target; :func:`staircase.claims.judges.cells.regime_table`), each cell a description row,
and the number of cells that pass against "no staircase anywhere" (binomial p)."""

from __future__ import annotations

import numpy as np

from staircase.claims import progress
from staircase.claims import verdicts as vd
from staircase.claims.judges.cells import cells_detail, count_passing, record_cells
from staircase.claims.judges.context import INCONCLUSIVE, ExperimentAudit


def judge(audit: ExperimentAudit) -> list[vd.Row]:
    """The regime map: each cell's A1 as a description (its verdict, Fisher p, stall ratio, A2,
    stairs, final error), and the test: do more cells pass A1 than chance allows?"""
    for r, s in audit.healthy():
        res = audit.tests[r.variant].staircase[s]
        audit.record(
            "A1-regime", r.variant, s, "stall prominence", res.statistic, res.p_value,
            f"median {res.null_median:.3g}, 95% {res.null_q95:.3g}",
            f"stall held {res.hold_ratio:.3g}x as long as the motion around it; eps-rank rose {res.rank_rise}",
        )  # fmt: skip
    record_cells(audit, "A1-regime")
    t, cells = audit.t, audit.cells
    passing, n, p_binom = count_passing(cells, t["alpha"])
    rows = [
        vd.pvalue_row(
            "A1-regime",
            audit.name,
            "share of the map's cells that pass A1 (Fisher p <= alpha and stall ratio >= a1_min_stall_ratio); "
            "p: binomial, of that many passing cells if none had a staircase",
            passing / n if n else float("nan"),
            p_binom,
            t["alpha"],
            f"no staircase anywhere: each cell passes with probability at most {t['alpha']:g} "
            f"({n * t['alpha']:.2g} of {n} cells expected)",
            n=n,
            detail=cells_detail(cells),
            runs=audit.paths,
            verdict=INCONCLUSIVE if not n else None,
        )
    ]
    for c in cells.itertuples():
        verdict = (
            "too few healthy seeds" if not np.isfinite(c.a1_p) else "passes A1" if c.a1_pass else "does not pass A1"
        )
        verdict = progress.NOT_TRAINED if not getattr(c, "trained", True) else verdict
        rows.append(
            vd.description_row(
                "A1-regime",
                audit.name,
                f"cell {c.variant} ({c.cell}): A1 stall ratio (median over seeds), Fisher p",
                c.a1_stall_ratio,
                p_value=c.a1_p,
                n=int(c.seeds_ok),
                detail=f"{verdict}; A2 Fisher p {c.a2_p:.2g}; eps-rank rose {c.rank_rise:g}; stairs "
                f"{c.n_stairs:g}; final loss {c.final_loss:.3g}, relative L2 error {c.final_rel_l2:.3g}"
                + (f"; {c.status}" if c.status != "ok" else ""),
                runs=[str(r.path) for r in audit.runs if r.variant == c.variant],
            )
        )
    return rows
