"""A4 - the staircase is universal across activations, depth and width: the share of the sweep's
cells that pass A1, with the binomial p of that share (:mod:`staircase.claims.judges.cells`)."""

from __future__ import annotations

from staircase.claims import verdicts as vd
from staircase.claims.judges.cells import cells_row, record_cells
from staircase.claims.judges.context import ExperimentAudit


def judge(audit: ExperimentAudit) -> list[vd.Row]:
    record_cells(audit, "A4")
    return [cells_row(audit.name, [(audit.name, audit.cells)], audit.t, audit.paths)]
