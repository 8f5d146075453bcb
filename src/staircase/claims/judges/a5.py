"""A5 - later hidden layers have a higher eps-rank: the strict layer order share per seed on every
variant with >= 2 hidden layers, ties and reversals apart, counterexamples named."""

from __future__ import annotations

import numpy as np

from staircase.claims import verdicts as vd
from staircase.claims.judges.context import ExperimentAudit
from staircase.records.runs import layer_order_shares


def judge(audit: ExperimentAudit) -> list[vd.Row]:
    strict, ties, reversals, saturated, counter, shallow = [], [], [], [], [], []
    for r in audit.runs:
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
            audit.record("A5", r.variant, seed, "strict layer order share", strict[-1], np.nan, f"{null:.3g}")
            for row in g[g["reversals"] > g["strict"]].itertuples():
                counter.append(f"{r.variant}/seed{seed} layers {row.pair} ({row.reversals:.0%} reversed)")
    value, spread, n = vd.summarise(strict)
    parts = [
        f"ties {np.median(ties):.3g}, reversals {np.median(reversals):.3g} (medians)" if ties else "",
        f"checkpoints with both layers at full rank left out: {np.median(saturated):.0%} (median)" if saturated else "",
        f"counterexamples (more reversals than strict orders): {len(counter)}"
        + (f": {'; '.join(counter[:8])}" + (" ..." if len(counter) > 8 else "") if counter else ""),
        f"not tested (1 hidden layer): {', '.join(shallow)}" if shallow else "",
    ]
    if not strict:
        return [
            vd.guard_row(
                "A5",
                audit.name,
                "seeds with >= 2 hidden layers not all at full rank",
                0.0,
                ">=",
                1.0,
                detail="; ".join(filter(None, parts)),
                runs=audit.paths,
            )
        ]
    return [
        vd.threshold_row(
            "A5",
            audit.name,
            "share of (checkpoint, adjacent layer pair) with r(l+1) > r(l) strictly (median over seeds)",
            value,
            ">=",
            audit.t["a5_min_fraction"],
            null=f"exchangeable layers: strict share (1 - ties) / 2, median {(1 - np.median(ties)) / 2:.3g}",
            spread=spread,
            **audit.common(n, parts),
        )
    ]
