"""The learning-rate scan behind the regime map's learning rates (README, "Where the staircase
appears: the regime map"). Run from the repository root: ``python docs/scans/regime_lr_scan.py``.

For each optimiser of the map and each of its two tasks, at the default initialisation (init_gain
1) and the task's first target, two seeds are trained on the map's budget for every learning rate
of a half-decade grid; the table lists the final training loss (full batch, median over seeds) and
diverged seeds. The rule, fixed before any A1 statistic of the map was computed: lr* = the grid
value with the lowest median final loss among those where no seed diverged; the map trains at lr*
and lr*/10. Nothing here looks at the ε-rank or at A1.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[2]
GRIDS = {
    "gd": [1.0, 0.3, 0.1, 0.03, 0.01, 3.0e-3, 1.0e-3, 3.0e-4, 1.0e-4],
    "sgd": [1.0, 0.3, 0.1, 0.03, 0.01, 3.0e-3, 1.0e-3, 3.0e-4, 1.0e-4],
    "adam": [0.1, 0.03, 0.01, 3.0e-3, 1.0e-3, 3.0e-4, 1.0e-4],
}


def scan(experiment: str, optimiser: str, config: dict) -> list[dict]:
    # the optimiser's first variant: its first target (the experiment's own task), batch and the like
    variant = next(v for v in cfgmod.variants(config, experiment) if v.startswith(optimiser + "_lr"))
    base = cfgmod.variants(config, experiment)[variant]
    rows = []
    for lr in GRIDS[optimiser]:
        cfg = copy.deepcopy(base)
        cfg["train"]["lr"] = lr
        cfg["model"]["init_gain"] = 1.0
        with tempfile.TemporaryDirectory() as out:
            t0 = time.process_time()
            train.run(cfg, out, progress=False)
            m = pd.read_parquet(Path(out) / "metrics.parquet")
            status = json.loads((Path(out) / "run.json").read_text())["status"]
        last = m[m["step"] == m["step"].max()]
        diverged = [s for s, st in status.items() if st != "ok"]
        rows.append(
            dict(experiment=experiment, optimiser=optimiser, lr=lr, final_loss=float(np.median(last["loss"])))
            | dict(diverged=len(diverged), cpu_s=round(time.process_time() - t0, 1))
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    names = sys.argv[1:] or [n for n, e in config["experiments"].items() if "A1-regime" in e.get("claims", [])]
    rows = [r for name in names for opt in GRIDS for r in scan(name, opt, config)]
    table = pd.DataFrame(rows)
    chosen = []
    for (experiment, optimiser), g in table.groupby(["experiment", "optimiser"], sort=False):
        ok = g[(g["diverged"] == 0) & np.isfinite(g["final_loss"])]
        best = ok.loc[ok["final_loss"].idxmin(), "lr"] if len(ok) else float("nan")
        chosen.append(dict(experiment=experiment, optimiser=optimiser, lr_star=best, lr_star_over_10=best / 10))
    print(table.to_markdown(index=False))
    print()
    print(pd.DataFrame(chosen).to_markdown(index=False))


if __name__ == "__main__":
    main()
