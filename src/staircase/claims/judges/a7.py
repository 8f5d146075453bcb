"""A7 - see :mod:`staircase.claims.comparison` (methods against their baseline)."""

from __future__ import annotations

from staircase.claims import verdicts as vd
from staircase.claims.judges import methods
from staircase.claims.judges.context import ExperimentAudit


def judge(audit: ExperimentAudit) -> list[vd.Row]:
    return methods.rows(audit, "A7")
