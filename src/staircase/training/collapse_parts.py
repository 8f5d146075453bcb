"""A rank_collapse study trained as separate jobs, one per lambda x noise cell, then merged.

At full scale one study stacks every cell and seed in one process (``digits_lambda``: 11 lambda
values x 5 seeds, about 20 h on one core), which no number of cores shortens. With ``split: cells``
(config.yaml, ``staircase.workflow.lowrank_settings.parts``) each cell's seeds train in a job of their
own (``staircase collapse --part K``), and :func:`merge` writes the study's files from the parts'.

Why the merged files equal the one-process run's, number for number: every cell's model draws its
initial weights from its own seed, the total loss is a sum of the cells' objectives (each cell's
gradient is its own), the optimiser and every measurement act on each cell's slice alone, and the
data of a cell do not depend on the other cells (the noise levels share one draw). So a part
computes its cells' rows exactly, and the merge only concatenates: tables sorted as the one process
sorts them (``collapse.TABLE_ORDER``), spectra stacked along the cell axis, run.json with the study's
cells, statuses and config. What differs is the timing: ``wall_time_s`` is the parts' sum (the CPU
time of the study, what the cost projection scales) and ``parts`` lists each part's wall time, host
and commit. tests/test_collapse_parts.py checks the equality on the tiny lowrank config.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from staircase.errors import ConfigError, UnreadableResult
from staircase.records import manifest
from staircase.records.provenance import write_json
from staircase.training.collapse import TABLE_ORDER, grid_cells, in_table_order
from staircase.training.weights_run import seal_study, write_tables_and_spectra

MEMBER_ARRAYS = ("weight_decay", "noise", "seed")  # spectra.npz's labels of the cell axis
# what must agree between the parts for them to be one study's (the run record's result keys)
SAME_IN_EVERY_PART = ("config", "classes", "train_points", "seeds", "package_version", "torch_version", "numpy_version")


def read_parts(cfg: dict, part_dirs) -> tuple[list[Path], list[dict]]:
    """The parts' folders and run.json records in part order, checked to be every part of this
    study once, whole (each verified against its manifest.json, as every reader of a finished
    result is), trained with its config and the same versions."""
    runs = {}
    for folder in map(Path, part_dirs):
        path = folder / "run.json"
        if not path.is_file():
            raise ConfigError(f"--parts: {path}: missing (the part has not finished)")
        try:
            manifest.verify(folder)
        except UnreadableResult as err:
            raise ConfigError(f"--parts: {err}") from None
        run = json.loads(path.read_text())
        if run.get("part") in runs:
            raise ConfigError(f"--parts: {path}: part {run.get('part')!r} is given twice")
        runs[run.get("part")] = (folder, run)
    expected = list(range(grid_cells(cfg)))
    if sorted(runs, key=str) != sorted(expected, key=str):
        raise ConfigError(f"--parts: parts {sorted(runs, key=str)} given; study {cfg['study']} has parts {expected}")
    ordered = [runs[k] for k in expected]
    reference = {**ordered[0][1], "config": cfg}
    for folder, run in ordered:
        for key in SAME_IN_EVERY_PART:
            if run.get(key) != reference.get(key):
                raise ConfigError(f"--parts: {folder}/run.json: {key} differs from the study's (re-run the part)")
    return [f for f, _ in ordered], [r for _, r in ordered]


def merged_tables(part_dirs) -> dict[str, pd.DataFrame]:
    return {
        name: in_table_order(name, pd.concat([pd.read_parquet(Path(d) / f"{name}.parquet") for d in part_dirs]))
        for name in TABLE_ORDER
    }


def merged_spectra(part_dirs) -> dict[str, np.ndarray]:
    """spectra.npz's arrays: the checkpoint steps (the same in every part), the cells' labels and
    every layer's singular values, stacked along the cell axis in part order (= cell order)."""
    parts = []
    for folder in part_dirs:
        with np.load(Path(folder) / "spectra.npz") as arrays:
            parts.append({key: arrays[key] for key in arrays.files})
    layers = sorted((k for k in parts[0] if k.startswith("layer")), key=lambda k: int(k[len("layer") :]))
    for folder, arrays in zip(part_dirs, parts):
        if not np.array_equal(arrays["steps"], parts[0]["steps"]):
            raise ConfigError(f"--parts: {folder}/spectra.npz: its checkpoint steps differ from part 0's")
    stacked = {key: np.concatenate([p[key] for p in parts]) for key in (*MEMBER_ARRAYS, *layers)}
    return {"steps": parts[0]["steps"], **stacked}


def merged_record(runs: list[dict]) -> dict:
    """The study's run.json from its parts'."""
    first = runs[0]
    cells = {key: [v for run in runs for v in run["cells"][key]] for key in first["cells"]}
    status = {cell: state for run in runs for cell, state in run["status"].items()}
    wall = round(sum(run["wall_time_s"] for run in runs), 3)
    steps = first["config"]["train"]["steps"]
    timing = ("wall_time_s", "steps_per_s", "host", "git_commit", "git_dirty")
    return {
        **{k: v for k, v in first.items() if k not in ("part", "cells", "status", "diverged", *timing)},
        "cells": cells,
        "status": status,
        "diverged": any(run["diverged"] for run in runs),
        "wall_time_s": wall,  # the parts' sum: the study's CPU time on one core
        "steps_per_s": round(steps / wall, 2) if wall > 0 else None,
        "host": first["host"],
        "git_commit": first["git_commit"],
        "git_dirty": any(run["git_dirty"] for run in runs),
        "parts": [{"part": run["part"], **{k: run.get(k) for k in timing}} for run in runs],
    }


def merge(cfg: dict, part_dirs, out_dir) -> Path:
    """Write the study's tables, spectra.npz and run.json in ``out_dir`` from its parts' folders (any
    order), each file atomically, then run.json, then manifest.json (last: the folder is whole)."""
    part_dirs, runs = read_parts(cfg, part_dirs)
    out = Path(out_dir)
    tables = merged_tables(part_dirs)
    write_tables_and_spectra(out, tables, merged_spectra(part_dirs))
    write_json(out / "run.json", merged_record(runs))
    seal_study(out, tables)
    return out
