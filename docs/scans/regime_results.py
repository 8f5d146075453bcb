"""The regime map's cells as docs/regime.md reports them: ``python docs/scans/regime_results.py
RUN_DIR ... > table.md`` (run folders of regime cells, e.g. results/small/runs/regime_fit1d/*). It
computes the map's table with the config's analysis settings and audit thresholds (the code the
audit and the regime_table notebook use: staircase.claims.judges.cells.regime_table) and prints,
per cell, the steps it trained, whether it reached the budget's factor, its final loss ratio and
relative L2 error and A1's decision; then the binomial count over the trained cells."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

from staircase.claims import audit, registry
from staircase.claims.judges import cells as cells_judge
from staircase.records.runs import load_runs

REPO = Path(__file__).resolve().parents[2]


def loss_ratio(run) -> float:
    """Median over healthy seeds of the last / first measured loss."""
    m = run.metrics.sort_values("step")
    ratios = [g["loss"].iloc[-1] / g["loss"].iloc[0] for s, g in m.groupby("seed") if s in run.healthy_seeds]
    return float(np.median(ratios)) if ratios else float("nan")


def main() -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    runs = load_runs(sys.argv[1:])
    table = audit.regime_table(runs, audit.analysis_settings(config), registry.thresholds(config))
    table["loss_ratio"] = [loss_ratio(r) for r in runs]
    keep = ["variant", "steps_run", "trained", "loss_ratio", "final_rel_l2", "rank_rise", "a1_stall_ratio", "a1_p"]
    shown = table[keep + ["a1_pass"]].sort_values("variant")
    print(shown.to_markdown(index=False, floatfmt=".3g"))
    passing, n, p = cells_judge.count_passing(table, registry.thresholds(config)["alpha"])
    untrained = int((~table["trained"].astype(bool)).sum())
    print(f"\n{passing} of {n} trained cells pass A1 (binomial p {p:.2g}); not trained: {untrained}")


if __name__ == "__main__":
    main()
