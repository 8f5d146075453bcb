"""The scan behind the regime map's budget by progress (docs/regime.md, "The budget"). Run from the
repository root: ``python docs/scans/regime_budget_scan.py [max_steps [variant ...]]`` (variants: the
cells whose name starts with one of them; default all); it writes docs/scans/regime_budget_scan.csv.

For every cell of the map at the default initialisation (init_gain 1) whose optimiser is plain
gradient descent or mini-batch SGD (and, for reference, Adam), its seeds are trained (the trainer's
own model, optimiser and mini-batches) for up to ``max_steps`` steps (default 10^5), and the full-batch
training loss of every seed is read every ``EVERY`` steps. The table gives, per cell and factor F,
the first step at which every seed's loss was at most its initial loss / F (empty: not within
``max_steps``), and the CPU seconds per step of the cell (one thread, this machine). The factor and
the cap of the map's rule were fixed from this table before any cell's A1 was computed; nothing
here looks at the eps-rank or at A1.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from staircase.training import trainer as train
from staircase.workflow import config as cfgmod

REPO = Path(__file__).resolve().parents[2]
FACTORS = (3, 10, 30, 100, 1000)
EVERY = 100  # steps between loss readings


def cells(config: dict, prefixes: list[str]) -> list[tuple[str, str, dict]]:
    """(experiment, variant, resolved config) of the map's default-initialisation cells whose variant
    starts with one of ``prefixes`` (all without)."""
    found = []
    for name, entry in config["experiments"].items():
        if "A1-regime" not in entry.get("claims", []):
            continue
        for variant, cfg in cfgmod.variants(config, name).items():
            wanted = not prefixes or variant.startswith(tuple(prefixes))
            if wanted and float(cfg["model"].get("init_gain", 1.0)) == 1.0:
                found.append((name, variant, cfg))
    return found


@torch.no_grad()
def full_loss(trainer: train.Trainer) -> np.ndarray:
    return trainer.task.loss(trainer.model, trainer.data).to(torch.float64).cpu().numpy()


def steps_to_factors(cfg: dict, max_steps: int) -> dict:
    """The first reading at which every seed's loss fell by each factor, and the CPU per step."""
    trainer = train.Trainer(cfg, Path("unused"), progress=False)
    start = full_loss(trainer)
    reached = {f: None for f in FACTORS}
    t0, step, ratio = time.process_time(), 0, np.ones_like(start)
    while step < max_steps and reached[FACTORS[-1]] is None:
        for _ in range(EVERY):
            trainer.train_step()
        step += EVERY
        ratio = full_loss(trainer) / start
        if not np.isfinite(ratio).all():
            break
        for f in FACTORS:
            if reached[f] is None and (ratio <= 1.0 / f).all():
                reached[f] = step
    cpu_per_step = (time.process_time() - t0) / max(step, 1)
    row = {f"steps_to_x{f}": reached[f] for f in FACTORS}
    return row | dict(steps_run=step, final_ratio_max=float(np.max(ratio)), cpu_ms_per_step=1e3 * cpu_per_step)


def main() -> None:
    torch.set_num_threads(1)
    max_steps = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    out = REPO / "docs" / "scans" / "regime_budget_scan.csv"
    rows = []
    for experiment, variant, cfg in cells(config, sys.argv[2:]):
        row = dict(experiment=experiment, variant=variant, seeds=len(cfg["seeds"]))
        rows.append(row | steps_to_factors(cfg, max_steps))
        print(rows[-1], file=sys.stderr, flush=True)
        pd.DataFrame(rows).to_csv(out, index=False)  # each cell as it finishes
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
