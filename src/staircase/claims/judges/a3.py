"""A3 - the eps-rank's loss bound (metrics.parquet ``eps_bound``): its non-vacuous share and the
coupling test of its drops at the rank's rises; violations of either bound are self-checks (ERROR)."""

from __future__ import annotations

import numpy as np

from staircase.claims import verdicts as vd
from staircase.claims.judges.context import ExperimentAudit, coupling_row


def judge(audit: ExperimentAudit) -> list[vd.Row]:
    missing = [r for r in audit.runs if "eps_bound" not in r.metrics]
    unknown = [r for r in audit.runs if "eps_bound" in r.metrics and not r.metrics["eps_bound"].notna().any()]
    if missing or unknown:
        why = (
            "these runs predate the eps-rank's bound: re-run their training"
            if missing
            else ("no bound recorded (a run tracked without the exact solution: Tracker(target=...))")
        )
        return [
            vd.guard_row(
                "A3",
                audit.name,
                "the eps-rank's bound (metrics.parquet eps_bound)",
                0.0,
                ">=",
                1.0,
                detail=why,
                runs=audit.paths,
            )
        ]
    shares, tight, rank_gap = [], [], []
    for r, s in audit.healthy():
        m = audit.tests[r.variant].series(s)
        bound, err = m["eps_bound"].to_numpy(float), m["error_sq"].to_numpy(float)
        shares.append(float(np.mean(bound > 0)))
        pos = bound > 0
        tight.append(float(np.median(bound[pos] / err[pos])) if pos.any() else np.nan)
        if "bound_rank" in m:
            rank_gap.append(float(np.median(m["bound_rank"] - m["eps_rank"])))
        audit.record("A3", r.variant, s, "non-vacuous share", shares[-1], np.nan, "0 (vacuous)")
    value, spread, n = vd.summarise(shares)
    coupling = [(r, s, audit.tests[r.variant].bound_coupling[s]) for r, s in audit.healthy()]
    return [
        _bound_self_check(audit),
        vd.threshold_row(
            "A3",
            audit.name,
            "share of checkpoints where the eps-rank's bound on the L2 error is above 0 (median over seeds)",
            value,
            ">=",
            audit.t["a3_min_nonvacuous"],
            null="a vacuous bound (share 0)",
            spread=spread,
            **audit.common(n),
        ),
        coupling_row(
            audit,
            "A3",
            "drop rate of the square root of the bound",
            coupling,
            "the bound's drops unrelated to the rank's rises: each rise moved at random within its window",
        ),
        *_bound_descriptions(audit, tight, rank_gap),
    ]


def _bound_self_check(audit: ExperimentAudit) -> vd.Row:
    """A3's self-check: both bounds (the loss's own and the eps-rank's) hold at every finite
    checkpoint of every seed."""
    finite = [r.metrics[np.isfinite(r.metrics["loss"])] for r in audit.runs]
    loss_checks = sum(int(m["lower_bound"].notna().sum()) for m in finite)
    loss_viol = sum(int(m["bound_violation"].sum()) for m in finite)
    eps_checks = sum(int(m["eps_bound"].notna().sum()) for m in finite)
    eps_viol = sum(int(m["eps_bound_violation"].sum()) for m in finite)
    return vd.self_check_row(
        "A3",
        audit.name,
        "violations of loss >= bound (the loss's own system and the eps-rank's Gram)",
        loss_viol + eps_viol,
        loss_checks + eps_checks,
        detail=f"{loss_viol} of {loss_checks} (training loss), {eps_viol} of {eps_checks} (L2 error); "
        "a violation is a bug, not a result",
        runs=audit.paths,
    )


def _bound_descriptions(audit: ExperimentAudit, tight: list[float], rank_gap: list[float]) -> list[vd.Row]:
    """What A3 reports beside its tests: the bound's tightness per seed and the rank gap."""
    t_value, t_spread, t_n = vd.summarise(tight)
    g_value, g_spread, g_n = vd.summarise(rank_gap)
    return [
        vd.description_row(
            "A3",
            audit.name,
            "tightness: bound / squared L2 error where the bound is above 0 (median over seeds)",
            t_value,
            spread=t_spread,
            n=t_n,
            runs=audit.paths,
        ),
        vd.description_row(
            "A3",
            audit.name,
            "rank of the training loss's own bound minus the eps-rank (median over checkpoints; on PDE "
            "tasks it counts directions of the operator's images, not of the features)",
            g_value,
            spread=g_spread,
            n=g_n,
            runs=audit.paths,
        ),
    ]
