"""One module per claim of paper A: its statistic, null and decision (``judge(audit)`` returns the
claim's rows for one experiment, :class:`staircase.claims.judges.context.ExperimentAudit`). Which
module judges a claim is declared by the claims registry (``judge:`` in
src/staircase/claims/claims.yaml); the cells shared by A4 and A1-regime are in :mod:`.cells`, the
methods comparison shared by A6 and A7 in :mod:`.methods`."""
